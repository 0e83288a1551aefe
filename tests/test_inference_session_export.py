"""torch -> ONNX -> InferenceSession: the torch module of test_torch_onnx_export.py (all
seven ops: rms_norm with a residual, layer_norm, swiglu and geglu between linears, rope,
softmax, cross_entropy with reduction="none") exported with
``xpuruntime.interop.torch.export_onnx`` and run in InferenceSession on the CPU and on CUDA
(marked gpu), matching the module run by torch within OPS.md's tolerances."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

import xpuruntime  # noqa: E402
import xpuruntime.interop.torch as xt  # noqa: E402
from xpuruntime import InferenceSession  # noqa: E402
from xpuruntime.interop import onnxruntime as xo  # noqa: E402
from conftest import assert_close, torch_cuda_available  # noqa: E402
from test_torch_onnx_export import Block, example_inputs  # noqa: E402

if xo.library_path(missing_ok=True) is None:
    pytest.skip("libxpuruntime_ort.so is not built", allow_module_level=True)

INPUTS = ("x", "residual", "cos", "sin", "labels")


@pytest.fixture(scope="module")
def exported():
    torch.manual_seed(0)
    model, args = Block().eval(), example_inputs()
    proto = xt.export_onnx(model, args, input_names=list(INPUTS))
    with torch.no_grad():
        want = [t.detach() for t in model(*args)]
    return proto, args, want


def check(outs, want, device):
    for got, w, name in zip(outs, want, ("softmax", "loss", "h")):
        assert isinstance(got, torch.Tensor) and got.device.type == device, name
        assert got.shape == w.shape and got.dtype == w.dtype, name
        assert_close(got.cpu().numpy(), w.numpy(), "float32", name)


def test_exported_block_has_every_op_as_a_node(exported):
    types = {n.op_type for n in exported[0].graph.node if n.domain == xo.DOMAIN}
    assert types == {"RMSNorm", "LayerNorm", "SwiGLU", "GeGLU", "RoPE", "Softmax", "CrossEntropy"}


@pytest.mark.parametrize("as_list", [False, True])
def test_exported_block_on_the_cpu(exported, as_list):
    proto, args, want = exported
    sess = InferenceSession(proto)
    assert sess.input_names == INPUTS
    check(sess.run(list(args) if as_list else dict(zip(INPUTS, args)), like="input"), want, "cpu")


@pytest.mark.gpu
@pytest.mark.skipif(not torch_cuda_available() or not any(
    d.kind == "cuda" for d in xpuruntime.devices()), reason="no CUDA device")
def test_exported_block_on_cuda(exported):
    import onnxruntime
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
    proto, args, want = exported
    sess = InferenceSession(proto, device="cuda", strict=False)
    check(sess.run([a.cuda() for a in args], like="input"), want, "cuda")
    xpu_nodes = {n.name for n in proto.graph.node if n.domain == xo.DOMAIN}
    on_cpu = {n: p for n, p in sess.placement.items() if p != "CUDAExecutionProvider"}
    assert not xpu_nodes & set(on_cpu), on_cpu
