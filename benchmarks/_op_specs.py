"""What the benchmark runs for each op: shapes, inputs, minimal bytes and the
implementations compared (xpuruntime's frontends and the peers a user would pick)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import jax
import jax.numpy as jnp
import torch
import torch.nn.functional as F

import xpuruntime.interop.torch as xt
import xpuruntime.jax as xj

from _liger import liger_apply  # noqa: E402  (benchmarks/ on sys.path: the scripts put it there)

# The row shapes in bf16; f32 at one shape only (2x the bytes, the same kernels).
ROW_SHAPES = [((32768, 4096), "bfloat16"), ((8192, 8192), "bfloat16"), ((4096, 65536), "bfloat16"),
              ((16384, 4096), "float32")]
# swiglu/geglu walk dense inputs as one flat row, so the row length does not change the
# kernel; 4096x65536 would only be 2x the elements of 32768x4096. f32 kept.
GLU_SHAPES = ROW_SHAPES[:2] + ROW_SHAPES[3:]


_liger = liger_apply


@dataclass
class Spec:
    shapes: list
    n_full: int                  # inputs of the full [..., N] shape
    n_param: int                 # [N] parameters
    fwd_tensors: int             # full-size tensors moved by the forward (reads + writes)
    bwd_tensors: int             # ... by the backward
    xpu_torch: Callable
    xpu_jax: Callable
    torch_eager: Callable
    jnp_ref: Callable
    liger: Callable | None = None
    quack: Callable | None = None
    n_diff: int = field(init=False)
    compiled: Callable = field(init=False)

    def __post_init__(self):
        self.n_diff = self.n_full + self.n_param
        # Static shapes: without dynamic=False the second shape seen would recompile into a
        # dynamic-shape kernel, measuring something else. Default mode (no "reduce-overhead"):
        # torch.compile's own CUDA graphs would clash with the benchmark's capture.
        self.compiled = torch.compile(self.torch_eager, dynamic=False)

    def make_inputs(self, shape, dtype, gen):
        """Random inputs from ``gen``, a CUDA generator of the benchmark's own: a failed
        CUDA-graph capture can leave torch's default generator unusable."""
        dt = getattr(torch, dtype)
        return ([torch.randn(shape, device="cuda", dtype=dt, generator=gen) for _ in range(self.n_full)]
                + [torch.randn(shape[-1:], device="cuda", dtype=dt, generator=gen)
                   for _ in range(self.n_param)])

    def out_shape(self, shape):
        return shape

    def out_dtype(self, dtype):
        return dtype

    def min_bytes(self, shape, dtype, backward):
        per = math.prod(shape) * (4 if dtype == "float32" else 2)
        return per * (self.fwd_tensors + (self.bwd_tensors if backward else 0))

    def jax_inputs(self, inputs):
        """The torch inputs as JAX arrays (integers as int32: JAX runs without x64)."""
        def conv(t):
            if t.dtype == torch.bfloat16:
                # numpy has no bf16: move the bits and reinterpret them (exact, and no host-side
                # f32 round trip, which took ~45 s for the 2.1 G-element cross_entropy logits).
                return jnp.asarray(t.view(torch.int16).cpu().numpy().view(jnp.bfloat16))
            if t.is_floating_point():
                return jnp.asarray(t.cpu().numpy())
            return jnp.asarray(t.cpu().numpy().astype("int32"))
        return [conv(t) for t in inputs]

    def torch_impls(self):
        out = {"xpuruntime (torch)": self.xpu_torch, "torch eager": self.torch_eager,
               "torch.compile": self.compiled}
        if self.liger is not None:
            out["liger"] = self.liger
        if self.quack is not None:
            out["quack"] = self.quack
        return out

    def jax_impls(self):
        return {"xpuruntime (jax)": self.xpu_jax, "jnp + jax.jit": self.jnp_ref}


def _f32(x):
    return x.astype(jnp.float32)


def _jnp_rms_norm(x, w):
    y = _f32(x) * jax.lax.rsqrt(jnp.mean(jnp.square(_f32(x)), -1, keepdims=True) + 1e-6)
    return (y * _f32(w)).astype(x.dtype)


def _jnp_layer_norm(x, w, b):
    xf = _f32(x)
    mu = jnp.mean(xf, -1, keepdims=True)
    var = jnp.mean(jnp.square(xf - mu), -1, keepdims=True)
    return ((xf - mu) * jax.lax.rsqrt(var + 1e-5) * _f32(w) + _f32(b)).astype(x.dtype)


def _quack(name: str):
    """QuACK's autograd entry point ``quack.<name>`` (CuTe-DSL kernels), or None where
    quack-kernels and its CUTLASS DSL are not installed or do not load."""
    try:
        import quack
        return getattr(quack, name)
    except Exception:  # ImportError, or the DSL's own failures to load its libraries
        return None


def _quack_rms_norm():
    fn = _quack("rmsnorm")
    return None if fn is None else (lambda x, w: fn(x, w, eps=1e-6))


def _quack_cross_entropy():
    fn = _quack("cross_entropy")
    return None if fn is None else (lambda lg, lb: fn(lg, lb, reduction="mean"))


def _liger_rms_norm():
    fn = _liger("rms_norm", "LigerRMSNormFunction")
    return None if fn is None else (lambda x, w: fn(x, w, 1e-6))


def _liger_layer_norm():
    fn = _liger("layer_norm", "LigerLayerNormFunction")
    return None if fn is None else (lambda x, w, b: fn(x, w, b, 1e-5))


SPECS = {
    "rms_norm": Spec(
        ROW_SHAPES, 1, 1, 2, 3,
        xpu_torch=lambda x, w: xt.rms_norm(x, w, 1e-6),
        xpu_jax=lambda x, w: xj.rms_norm(x, w, 1e-6),
        torch_eager=lambda x, w: F.rms_norm(x, x.shape[-1:], w, 1e-6),
        jnp_ref=_jnp_rms_norm, liger=_liger_rms_norm(), quack=_quack_rms_norm()),
    "layer_norm": Spec(
        ROW_SHAPES, 1, 2, 2, 3,
        xpu_torch=lambda x, w, b: xt.layer_norm(x, w, b, 1e-5),
        xpu_jax=lambda x, w, b: xj.layer_norm(x, w, b, 1e-5),
        torch_eager=lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b, 1e-5),
        jnp_ref=_jnp_layer_norm, liger=_liger_layer_norm()),
    "softmax": Spec(
        ROW_SHAPES, 1, 0, 2, 3,
        xpu_torch=lambda x: xt.softmax(x),
        xpu_jax=lambda x: xj.softmax(x),
        torch_eager=lambda x: torch.softmax(x, -1),
        jnp_ref=lambda x: jax.nn.softmax(_f32(x), -1).astype(x.dtype),
        liger=_liger("softmax", "LigerSoftmaxFunction"), quack=_quack("softmax")),
    "swiglu": Spec(
        GLU_SHAPES, 2, 0, 3, 5,
        xpu_torch=xt.swiglu, xpu_jax=xj.swiglu,
        torch_eager=lambda g, u: F.silu(g) * u,
        jnp_ref=lambda g, u: (jax.nn.silu(_f32(g)) * _f32(u)).astype(g.dtype),
        liger=_liger("swiglu", "LigerSiLUMulFunction")),
    "geglu": Spec(
        GLU_SHAPES, 2, 0, 3, 5,
        xpu_torch=xt.geglu, xpu_jax=xj.geglu,
        torch_eager=lambda g, u: F.gelu(g, approximate="tanh") * u,
        jnp_ref=lambda g, u: (jax.nn.gelu(_f32(g), approximate=True) * _f32(u)).astype(g.dtype),
        liger=_liger("geglu", "LigerGELUMulFunction")),
}


class RopeSpec(Spec):
    """x [B, S, H, D] in the given dtype, cos/sin [S, D/2] f32; gradient for x only."""

    def make_inputs(self, shape, dtype, gen):
        x = torch.randn(shape, device="cuda", dtype=getattr(torch, dtype), generator=gen)
        angles = torch.rand(shape[1], shape[3] // 2, device="cuda", generator=gen) * 6.3
        return [x, torch.cos(angles), torch.sin(angles)]

    def __post_init__(self):
        super().__post_init__()
        self.n_diff = 1


class CrossEntropySpec(Spec):
    """logits [T, V], labels [T]; scalar mean loss; gradient for logits only."""

    def make_inputs(self, shape, dtype, gen):
        logits = torch.randn(shape, device="cuda", dtype=getattr(torch, dtype), generator=gen)
        return [logits, torch.randint(0, shape[1], shape[:1], device="cuda", generator=gen)]

    def out_shape(self, shape):
        return ()

    def out_dtype(self, dtype):
        return "float32"  # the loss is f32 whatever the logits' dtype

    def __post_init__(self):
        super().__post_init__()
        self.n_diff = 1


def _torch_rope(x, cos, sin):
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    x1, x2 = x.float().chunk(2, -1)
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1).to(x.dtype)


def _jnp_rope(x, cos, sin):
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    x1, x2 = jnp.split(_f32(x), 2, axis=-1)
    return jnp.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], -1).astype(x.dtype)


def _jnp_cross_entropy(logits, labels):
    lf = _f32(logits)
    lse = jax.nn.logsumexp(lf, axis=-1)
    picked = jnp.take_along_axis(lf, labels[:, None], axis=-1)[:, 0]
    return jnp.mean(lse - picked)


def _liger_cross_entropy():
    fn = _liger("cross_entropy", "LigerCrossEntropyFunction")
    if fn is None:
        return None

    def run(logits, labels):
        out = fn(logits, labels, None)
        return out[0] if isinstance(out, tuple) else out
    return run


SPECS["rope"] = RopeSpec(
    [((8, 4096, 32, 128), "bfloat16"), ((8, 4096, 32, 128), "float32")], 1, 0, 2, 2,
    xpu_torch=lambda x, c, s: xt.rope(x, c, s), xpu_jax=lambda x, c, s: xj.rope(x, c, s),
    torch_eager=_torch_rope, jnp_ref=_jnp_rope)
# Memory at 8192x256000 bf16 (2.1 G elements; int32 indexing still fits): logits 4.2 GB here and
# 4.2 GB as the JAX copy. Torch eager's f32 path peaks in backward at ~29 GB (logits, saved f32
# log-softmax 8.4 GB, nll grad 8.4 GB, log-softmax grad 8.4 GB); with JAX's allocator holding up
# to ~17 GB from its own runs the total stays near 55 GB of the H100's 80.
SPECS["cross_entropy"] = CrossEntropySpec(
    [((4096, 128256), "bfloat16"), ((8192, 256000), "bfloat16")], 1, 0, 1, 2,
    xpu_torch=lambda lg, lb: xt.cross_entropy(lg, lb), xpu_jax=lambda lg, lb: xj.cross_entropy(lg, lb),
    torch_eager=lambda lg, lb: F.cross_entropy(lg.float(), lb), jnp_ref=_jnp_cross_entropy,
    liger=_liger_cross_entropy(), quack=_quack_cross_entropy())


class TopKSoftmaxSpec(Spec):
    """MoE routing at shape ``(T, E, k)``: logits ``[T, E]`` in the given dtype; the timed
    output is the renormalized weights ``[T, k]`` (f32; the indices come with them), the
    gradient is for logits through the weights. ``make_inputs`` starts a group and sets its
    ``k``, which the implementations read when they run."""

    k = 0

    def make_inputs(self, shape, dtype, gen):
        self.k = shape[2]
        return [torch.randn(shape[:2], device="cuda", dtype=getattr(torch, dtype), generator=gen)]

    def out_shape(self, shape):
        return (shape[0], shape[2])

    def out_dtype(self, dtype):
        return "float32"

    def min_bytes(self, shape, dtype, backward):
        """Read logits, write weights and indices (T·k·8); the backward (renormalize) reads
        dweights, weights and indices (T·k·12) and writes dlogits."""
        t, e, k = shape
        s = 4 if dtype == "float32" else 2
        return t * e * s + t * k * 8 + ((t * k * 12 + t * e * s) if backward else 0)

    def __post_init__(self):
        super().__post_init__()
        self.n_diff = 1


def _torch_topk_softmax(logits, k):
    """softmax + topk + renormalize, as MoE routers write it."""
    w, _ = torch.topk(torch.softmax(logits.float(), -1), k, dim=-1)
    return w / w.sum(-1, keepdim=True)


def _jnp_topk_softmax(logits, k):
    w, _ = jax.lax.top_k(jax.nn.softmax(_f32(logits), -1), k)
    return w / w.sum(-1, keepdims=True)


# The shapes: T = 32768 tokens, E in {64, 128, 256} experts, k in {2, 8}; bf16
# router logits (f32 at one shape).
SPECS["topk_softmax"] = _TOPK = TopKSoftmaxSpec(
    [((32768, e, k), "bfloat16") for k in (2, 8) for e in (64, 128, 256)]
    + [((32768, 256, 8), "float32")], 1, 0, 0, 0,
    xpu_torch=lambda lg: xt.topk_softmax(lg, _TOPK.k)[0],
    xpu_jax=lambda lg: xj.topk_softmax(lg, _TOPK.k)[0],
    torch_eager=lambda lg: _torch_topk_softmax(lg, _TOPK.k),
    jnp_ref=lambda lg: _jnp_topk_softmax(lg, _TOPK.k))
