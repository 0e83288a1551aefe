"""A pre-norm decoder block (RMSNorm, QKV projection, RoPE, softmax attention, output
projection, residual RMSNorm, SwiGLU MLP) as two ONNX models with the same weights: one
with xpuruntime nodes, one with standard ONNX ops only. Exported from torch when
``xpuruntime.interop.torch.export_onnx`` and onnxscript are importable, else written
with ``onnx.helper`` (the same graph, op for op)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Dims:
    batch: int = 4
    seq: int = 512
    model: int = 1024
    heads: int = 16
    ffn: int = 2816

    @property
    def head(self) -> int:
        return self.model // self.heads


def weights(d: Dims, seed: int = 0) -> dict:
    """float32 weights, scaled so activations stay O(1) through the block."""
    rng = np.random.default_rng(seed)
    w = lambda *s: (rng.standard_normal(s) / math.sqrt(s[0])).astype(np.float32)  # noqa: E731
    return {"norm1": (1 + 0.1 * rng.standard_normal(d.model)).astype(np.float32),
            "norm2": (1 + 0.1 * rng.standard_normal(d.model)).astype(np.float32),
            "wqkv": w(d.model, 3 * d.model), "wo": w(d.model, d.model),
            "wgu": w(d.model, 2 * d.ffn), "wdown": w(d.ffn, d.model)}


def inputs(d: Dims, dtype: str, seed: int = 1) -> dict:
    """x [B, S, D] and the rotary tables cos/sin [S, Dh/2], as numpy of ``dtype``."""
    rng = np.random.default_rng(seed)
    angles = np.arange(d.seq)[:, None] / 10000 ** (np.arange(d.head // 2) / (d.head // 2))
    return {"x": rng.standard_normal((d.batch, d.seq, d.model)).astype(dtype),
            "cos": np.cos(angles).astype(dtype), "sin": np.sin(angles).astype(dtype)}


# ---- written with onnx.helper ------------------------------------------------------------------

def onnx_block(d: Dims, dtype: str, fused: bool, w: dict):
    """The block as an ONNX model: ``fused`` with xpuruntime's RMSNorm (also with the
    residual), RoPE, Softmax(scale) and SwiGLU nodes; else their standard-op equivalents."""
    from onnx import TensorProto, helper, numpy_helper

    from xpuruntime.interop import onnxruntime as xo

    elem = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}[dtype]
    nodes, inits = [], [numpy_helper.from_array(v.astype(dtype), k) for k, v in w.items()]
    count = [0]

    def const(value, kind=np.int64):
        name = f"c{len(inits)}"
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=kind), name))
        return name

    def op(kind, ins, n_out=1, domain="", **attrs):
        count[0] += 1
        outs = [f"{kind.lower()}{count[0]}_{i}" for i in range(n_out)]
        nodes.append(helper.make_node(kind, ins, outs, name=f"{kind}_{count[0]}", domain=domain,
                                      **attrs))
        return outs if n_out > 1 else outs[0]

    def rms_norm(x, weight):
        if fused:
            return op("RMSNorm", [x, weight], domain=xo.DOMAIN)
        eps = const(1e-6, dtype)
        ms = op("ReduceMean", [op("Mul", [x, x]), const([-1])], keepdims=1)
        return op("Mul", [op("Mul", [x, op("Reciprocal", [op("Sqrt", [op("Add", [ms, eps])])])]),
                          weight])

    half = d.head // 2
    if not fused:  # the tables as [1, S, 1, Dh/2], broadcast over batch and heads
        cos4, sin4 = (op("Unsqueeze", [t, const([0, 2])]) for t in ("cos", "sin"))

    def rope(x):  # x [B, S, H, Dh], rotate-half
        if fused:
            return op("RoPE", [x, "cos", "sin"], domain=xo.DOMAIN)
        x1 = op("Slice", [x, const([0]), const([half]), const([-1])])
        x2 = op("Slice", [x, const([half]), const([d.head]), const([-1])])
        y1 = op("Sub", [op("Mul", [x1, cos4]), op("Mul", [x2, sin4])])
        y2 = op("Add", [op("Mul", [x2, cos4]), op("Mul", [x1, sin4])])
        return op("Concat", [y1, y2], axis=-1)

    scale = 1 / math.sqrt(d.head)
    n1 = rms_norm("x", "norm1")
    q, k, v = op("Split", [op("MatMul", [n1, "wqkv"]), const([d.model] * 3)], 3, axis=-1)
    heads = const([d.batch, d.seq, d.heads, d.head])
    q, k = (rope(op("Reshape", [t, heads])) for t in (q, k))
    v = op("Reshape", [v, heads])
    scores = op("MatMul", [op("Transpose", [q], perm=[0, 2, 1, 3]),
                           op("Transpose", [k], perm=[0, 2, 3, 1])])
    probs = (op("Softmax", [scores], domain=xo.DOMAIN, scale=scale) if fused else
             op("Softmax", [op("Mul", [scores, const(scale, dtype)])], axis=-1))
    att = op("MatMul", [probs, op("Transpose", [v], perm=[0, 2, 1, 3])])
    att = op("Reshape", [op("Transpose", [att], perm=[0, 2, 1, 3]),
                         const([d.batch, d.seq, d.model])])
    o = op("MatMul", [att, "wo"])
    if fused:
        y, h = op("RMSNorm", [o, "norm2", "x"], 2, domain=xo.DOMAIN)
    else:
        h = op("Add", [o, "x"])
        y = rms_norm(h, "norm2")
    gate, up = op("Split", [op("MatMul", [y, "wgu"]), const([d.ffn] * 2)], 2, axis=-1)
    act = (op("SwiGLU", [gate, up], domain=xo.DOMAIN) if fused else
           op("Mul", [op("Mul", [gate, op("Sigmoid", [gate])]), up]))
    nodes.append(helper.make_node("Add", [op("MatMul", [act, "wdown"]), h], ["out"], name="out"))
    graph = helper.make_graph(
        nodes, "decoder_block",
        [helper.make_tensor_value_info("x", elem, [d.batch, d.seq, d.model]),
         helper.make_tensor_value_info("cos", elem, [d.seq, half]),
         helper.make_tensor_value_info("sin", elem, [d.seq, half])],
        [helper.make_tensor_value_info("out", elem, [d.batch, d.seq, d.model])], inits)
    return xo.make_model(graph, opset=18)


# ---- exported from torch ------------------------------------------------------------------------

def torch_export_available() -> bool:
    import importlib.util
    try:
        import xpuruntime.interop.torch as xt
    except ImportError:
        return False
    return hasattr(xt, "export_onnx") and importlib.util.find_spec("onnxscript") is not None


def torch_block(d: Dims, dtype: str, fused: bool, w: dict):
    """The same block as a torch module exported to ONNX: with xpuruntime's torch ops
    through ``export_onnx``, or with torch's own ops through ``torch.onnx.export``."""
    import torch
    import torch.nn.functional as F

    import xpuruntime.interop.torch as xt

    tw = {k: torch.from_numpy(v).to(getattr(torch, dtype)) for k, v in w.items()}
    half, scale = d.head // 2, 1 / math.sqrt(d.head)

    def rope(x, cos, sin):
        if fused:
            return xt.rope(x, cos, sin)
        c, s = cos[None, :, None, :], sin[None, :, None, :]
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)

    def rms(x, weight):
        if fused:
            return xt.rms_norm(x, weight)
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-6) * weight

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            for k, v in tw.items():
                self.register_buffer(k, v)

        def forward(self, x, cos, sin):
            n1 = rms(x, self.norm1)
            q, k, v = (n1 @ self.wqkv).view(d.batch, d.seq, 3, d.heads, d.head).unbind(2)
            q, k = rope(q, cos, sin), rope(k, cos, sin)
            s = q.transpose(1, 2) @ k.permute(0, 2, 3, 1)
            p = xt.softmax(s, scale=scale) if fused else torch.softmax(s * scale, -1)
            a = (p @ v.transpose(1, 2)).transpose(1, 2).reshape(d.batch, d.seq, d.model)
            o = a @ self.wo
            if fused:
                y, h = xt.rms_norm(o, self.norm2, residual=x)
            else:
                h = o + x
                y = rms(h, self.norm2)
            gate, up = (y @ self.wgu).chunk(2, -1)
            act = xt.swiglu(gate, up) if fused else F.silu(gate) * up
            return act @ self.wdown + h

    feed = {k: torch.from_numpy(v) for k, v in inputs(d, dtype).items()}
    args = (feed["x"], feed["cos"], feed["sin"])
    names = {"input_names": ["x", "cos", "sin"], "output_names": ["out"]}
    if fused:
        return xt.export_onnx(Block().eval(), args, **names)
    from xpuruntime.interop.onnxruntime import IR_VERSION
    proto = torch.onnx.export(Block().eval(), args, dynamo=True, **names).model_proto
    proto.ir_version = min(proto.ir_version, IR_VERSION)
    return proto
