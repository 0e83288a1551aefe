"""torch -> ONNX: a module using every op exports with xpuruntime-domain nodes
(``export_onnx`` / ``onnx_translation_table``) and runs in ONNX Runtime with
xpuruntime's custom-op library, matching torch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

import xpuruntime  # noqa: E402
import xpuruntime.interop.torch as xt  # noqa: E402
from xpuruntime import _spec  # noqa: E402
from xpuruntime.interop import onnxruntime as xort  # noqa: E402
from conftest import assert_close  # noqa: E402

if xort.library_path(missing_ok=True) is None:
    pytest.skip("built without the ONNX Runtime library", allow_module_level=True)


class Block(torch.nn.Module):
    """Norms, swiglu / geglu between linears, rope, softmax, cross_entropy(none)."""

    def __init__(self, n=16):
        super().__init__()
        self.w, self.b = torch.nn.Parameter(torch.randn(n)), torch.nn.Parameter(torch.randn(n))
        self.up, self.down = torch.nn.Linear(n, 2 * n), torch.nn.Linear(n, n)

    def forward(self, x, residual, cos, sin, labels):
        y, h = xt.rms_norm(x, self.w, residual=residual)
        y = xt.layer_norm(xt.rms_norm(y, self.w, 1e-5), self.w, self.b)
        gate, up = self.up(y).chunk(2, -1)
        z = self.down(xt.swiglu(gate, up)) + self.down(xt.geglu(gate, up))
        q = xt.rope(z.view(2, 3, 2, 8), cos, sin, interleaved=True).reshape(6, 16)
        return xt.softmax(q, scale=0.5), xt.cross_entropy(q, labels, reduction="none"), h


def example_inputs():
    g = torch.Generator().manual_seed(0)
    angles = torch.rand(3, 4, generator=g) * 6.3
    return (torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g), angles.cos(),
            angles.sin(), torch.tensor([1, 2, 3, -100, 5, 6]))


def run_in_ort(proto, args):
    session = xort.inference_session(proto)
    names = [i.name for i in session.get_inputs()]
    return session.run(None, {n: a.numpy() for n, a in zip(names, args)})


def test_translation_table_covers_every_forward_op():
    table = xt.onnx_translation_table()
    forward = {getattr(torch.ops.xpuruntime, s.op).default for s in _spec.all_specs()
               if s.direction == _spec.FORWARD}
    assert set(table) == forward


def test_block_exports_and_runs_in_onnxruntime():
    torch.manual_seed(0)
    model, args = Block().eval(), example_inputs()
    proto = xt.export_onnx(model, args)
    nodes = [n for n in proto.graph.node if n.domain == "xpuruntime"]
    assert [n.op_type for n in nodes] == ["RMSNorm", "RMSNorm", "LayerNorm", "SwiGLU", "GeGLU",
                                          "RoPE", "Softmax", "CrossEntropy"]
    assert [len(n.output) for n in nodes[:2]] == [2, 1]  # (y, h) with a residual, else y
    onnx_names = {a.onnx_name for s in _spec.all_specs() for a in s.attrs}
    attrs = {n.op_type: {a.name: a for a in n.attribute} for n in nodes}
    assert all(set(a) <= onnx_names for a in attrs.values())
    assert attrs["RoPE"]["interleaved"].i == 1 and attrs["Softmax"]["scale"].f == 0.5
    assert attrs["CrossEntropy"]["reduction"].s == b"none"
    assert "xpuruntime" not in {n.domain for n in proto.graph.node if n.op_type == "Constant"}
    outs = run_in_ort(proto, args)
    for got, want, name in zip(outs, model(*args), ("softmax", "loss", "h")):
        assert_close(got, want.detach().numpy(), "float32", name)


def test_policy_is_exported_unless_default():
    model, args = Block().eval(), example_inputs()
    plain = xt.export_onnx(model, args)
    assert all(a.name != "policy" for n in plain.graph.node for a in n.attribute)
    with xpuruntime.policy("deterministic"):
        proto = xt.export_onnx(model, args)
    policies = {a.s for n in proto.graph.node if n.domain == "xpuruntime" for a in n.attribute
                if a.name == "policy"}
    assert policies == {b"deterministic"}
    np.testing.assert_allclose(run_in_ort(proto, args)[0], run_in_ort(plain, args)[0], rtol=1e-6)


def test_scalar_loss_and_export_kwargs():
    class Loss(torch.nn.Module):
        def forward(self, logits, labels):
            return xt.cross_entropy(logits, labels, label_smoothing=0.2)

    args = (torch.randn(5, 11), torch.tensor([0, 3, -100, 10, 2]))
    proto = xt.export_onnx(Loss().eval(), args, input_names=["logits", "labels"])
    assert [i.name for i in proto.graph.input] == ["logits", "labels"]
    (loss,) = run_in_ort(proto, args)
    assert loss.shape == () and abs(float(loss) - float(Loss()(*args))) < 1e-5
