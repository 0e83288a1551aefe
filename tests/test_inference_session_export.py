"""torch -> ONNX -> InferenceSession: a torch module using all seven ops (rms_norm with a
residual, layer_norm, swiglu and geglu between linears, rope, softmax, cross_entropy with
reduction="none") exported with ``xpuruntime.interop.torch.export_onnx`` and run in
InferenceSession on the CPU (and on CUDA, marked gpu), against the module in torch and a
float64 reference in plain torch ops, within OPS.md's tolerances."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")
import torch.nn.functional as F  # noqa: E402

import xpuruntime  # noqa: E402
import xpuruntime.interop.torch as xt  # noqa: E402
from xpuruntime import InferenceSession  # noqa: E402
from xpuruntime.interop import onnxruntime as xo  # noqa: E402
from conftest import assert_close, torch_cuda_available  # noqa: E402

if not hasattr(xt, "export_onnx"):
    pytest.skip("xpuruntime.interop.torch.export_onnx is not in this build (branch torch)",
                allow_module_level=True)
if xo.library_path(missing_ok=True) is None:
    pytest.skip("libxpuruntime_ort.so is not built", allow_module_level=True)


class Reference:
    """The seven ops in plain torch (run in float64), as OPS.md defines them."""

    @staticmethod
    def rms_norm(x, w, eps=1e-6, *, residual=None):
        h = x if residual is None else x + residual
        y = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps) * w
        return y if residual is None else (y, h)

    @staticmethod
    def layer_norm(x, w, b, eps=1e-5):
        return F.layer_norm(x, x.shape[-1:], w, b, eps)

    swiglu = staticmethod(lambda g, u: F.silu(g) * u)
    geglu = staticmethod(lambda g, u: F.gelu(g, approximate="tanh") * u)

    @staticmethod
    def rope(x, cos, sin, *, interleaved=False):
        assert not interleaved
        c, s = cos[None, :, None, :], sin[None, :, None, :]
        x1, x2 = x.chunk(2, -1)
        return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)

    softmax = staticmethod(lambda x, *, scale=1.0: torch.softmax(x * scale, -1))

    @staticmethod
    def cross_entropy(logits, labels, *, reduction="mean"):
        return F.cross_entropy(logits, labels, reduction=reduction, ignore_index=-100)


class Block(torch.nn.Module):
    """Every op of OPS.md but topk_softmax: norms, GLUs between linears, rope, softmax, loss."""

    def __init__(self, ops, n=16):
        super().__init__()
        self.ops = ops
        g = torch.Generator().manual_seed(0)
        self.w = torch.nn.Parameter(1 + 0.1 * torch.randn(n, generator=g))
        self.b = torch.nn.Parameter(0.1 * torch.randn(n, generator=g))
        self.up, self.down = torch.nn.Linear(n, 2 * n), torch.nn.Linear(n, n)

    def forward(self, x, residual, cos, sin, labels):
        ops = self.ops
        y, h = ops.rms_norm(x, self.w, residual=residual)
        y = ops.layer_norm(y, self.w, self.b)
        gate, up = self.up(y).chunk(2, -1)
        z = self.down(ops.swiglu(gate, up)) + self.down(ops.geglu(gate, up))
        q = ops.rope(z.view(2, 3, 2, 8), cos, sin).reshape(6, 16)
        return ops.softmax(q, scale=0.5), ops.cross_entropy(q, labels, reduction="none"), h


def example_inputs():
    g = torch.Generator().manual_seed(1)
    angles = torch.rand(3, 4, generator=g) * 6.3
    return (torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g), angles.cos(),
            angles.sin(), torch.tensor([1, 2, 3, -100, 5, 6]))


@pytest.fixture(scope="module")
def exported():
    model = Block(xt).eval()
    reference = Block(Reference).double().eval()
    reference.load_state_dict(model.state_dict())
    args = example_inputs()
    proto = xt.export_onnx(model, args, input_names=["x", "residual", "cos", "sin", "labels"])
    with torch.no_grad():
        ours = [t.detach() for t in model(*args)]
        ref = [t.detach() for t in reference(*[a.double() if a.is_floating_point() else a
                                               for a in args])]
    return proto, args, ours, ref


def check(outs, ours, ref):
    for got, mine, want, name in zip(outs, ours, ref, ("softmax", "loss", "h")):
        got = got.cpu()
        assert got.shape == mine.shape and got.dtype == mine.dtype, name
        assert_close(got.numpy(), mine.numpy(), "float32", f"{name} vs the torch module")
        assert_close(got.numpy(), want.numpy(), "float32", f"{name} vs the float64 reference")


def test_exported_block_has_every_op_as_a_node(exported):
    proto = exported[0]
    types = {n.op_type for n in proto.graph.node if n.domain == xo.DOMAIN}
    assert types == {"RMSNorm", "LayerNorm", "SwiGLU", "GeGLU", "RoPE", "Softmax", "CrossEntropy"}


@pytest.mark.parametrize("as_list", [False, True])
def test_exported_block_on_the_cpu(exported, as_list):
    proto, args, ours, ref = exported
    sess = InferenceSession(proto)
    assert sess.input_names == ("x", "residual", "cos", "sin", "labels")
    outs = sess.run(list(args) if as_list else dict(zip(sess.input_names, args)), like="input")
    assert all(isinstance(o, torch.Tensor) for o in outs)
    check(outs, ours, ref)


@pytest.mark.gpu
@pytest.mark.skipif(not torch_cuda_available() or not any(
    d.kind == "cuda" for d in xpuruntime.devices()), reason="no CUDA device")
def test_exported_block_on_cuda(exported):
    import onnxruntime
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
    proto, args, ours, ref = exported
    sess = InferenceSession(proto, device="cuda", strict=False)
    outs = sess.run([a.cuda() for a in args], like="input")
    assert all(o.is_cuda for o in outs)
    check(outs, ours, ref)
    on_cpu = {n: p for n, p in sess.placement.items() if p != "CUDAExecutionProvider"}
    xpu_nodes = {n.name for n in proto.graph.node if n.domain == xo.DOMAIN}
    assert not xpu_nodes & set(on_cpu), on_cpu
