"""The torch ops generated from the op specs: every op and direction passes
``torch.library.opcheck`` (schema, fake kernel, autograd registration, AOT
dispatch with dynamic shapes), and every public op compiles with
``torch.compile(fullgraph=True)`` forward and backward, matching eager."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

import xpuruntime.interop.torch as xt  # noqa: E402
from xpuruntime import _spec  # noqa: E402
from xpuruntime.interop.torch import _autograd, _registration  # noqa: E402
from conftest import TORCH_DEVICES, assert_close, to_numpy  # noqa: E402


def _tables(s, d, device):
    angles = torch.rand(s, d // 2, device=device) * 6.3
    return angles.cos(), angles.sin()


# op -> device -> (tensor inputs in spec order, attributes as keywords). A new op of
# ffi/ops.def needs an entry here (test_every_op_has_samples says so).
SAMPLES = {
    "rms_norm": lambda dev: ([torch.randn(3, 5, device=dev), torch.randn(5, device=dev),
                              torch.randn(3, 5, device=dev)], {"eps": 1e-6}),
    "layer_norm": lambda dev: ([torch.randn(3, 5, device=dev), torch.randn(5, device=dev),
                                torch.randn(5, device=dev)], {"eps": 1e-5}),
    "softmax": lambda dev: ([torch.randn(3, 5, device=dev)], {"scale": 0.5}),
    "swiglu": lambda dev: ([torch.randn(3, 5, device=dev), torch.randn(3, 5, device=dev)], {}),
    "geglu": lambda dev: ([torch.randn(3, 5, device=dev), torch.randn(3, 5, device=dev)], {}),
    "rope": lambda dev: ([torch.randn(2, 3, 2, 8, device=dev), *_tables(3, 8, dev)],
                         {"interleaved": True}),
    "cross_entropy": lambda dev: ([torch.randn(4, 7, device=dev),
                                   torch.tensor([1, -100, 6, 0], device=dev)],
                                  {"ignore_index": -100, "label_smoothing": 0.1,
                                   "reduction": "mean"}),
    "topk_softmax": lambda dev: ([torch.randn(4, 16, device=dev)], {"k": 3, "renormalize": True}),
}
# Public-function keywords that differ from the positional inputs of the spec.
KEYWORD_INPUTS = {"rms_norm": {2: "residual"}}


def spec_args(spec, tensors, attrs):
    return (*tensors, *[attrs[a.name] for a in spec.attrs], "fast")


def test_every_op_has_samples():
    missing = set(_spec.op_names()) - set(SAMPLES)
    assert not missing, f"add sample inputs for {sorted(missing)}"


def backward_args(op, device):
    """Arguments of <op>_backward from a forward call, by the spec conventions."""
    fwd, bwd = _spec.get(op), _spec.get(op, _spec.BACKWARD)
    tensors, attrs = SAMPLES[op](device)
    outs = _registration.registered(fwd)(*spec_args(fwd, tensors, attrs))
    outs = outs if isinstance(outs, tuple) else (outs,)
    args = []
    for kind, i in _autograd._plan(fwd, bwd):
        if kind == "input":
            args.append(tensors[i])
        elif kind == "output":
            args.append(outs[i])
        else:  # a random incoming gradient of that output
            args.append(torch.randn_like(outs[i], dtype=outs[i].dtype)
                        if outs[i].dtype.is_floating_point else None)
    return spec_args(bwd, args, attrs)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("op", _spec.op_names())
def test_opcheck_forward(device, op):
    spec = _spec.get(op)
    tensors, attrs = SAMPLES[op](device)
    tensors = [t.requires_grad_() if t.dtype.is_floating_point else t for t in tensors]
    torch.library.opcheck(_registration.registered(spec).default, spec_args(spec, tensors, attrs))
    if any(i.optional for i in spec.inputs):  # and with the optional inputs absent
        absent = [None if i.optional else t for t, i in zip(tensors, spec.inputs)]
        torch.library.opcheck(_registration.registered(spec).default,
                              spec_args(spec, absent, attrs))


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("op", _spec.op_names())
def test_opcheck_backward(device, op):
    spec = _spec.get(op, _spec.BACKWARD)
    torch.library.opcheck(_registration.registered(spec).default, backward_args(op, device))


def public_call(op, tensors, attrs):
    keywords = KEYWORD_INPUTS.get(op, {})
    positional = [t for i, t in enumerate(tensors) if i not in keywords]
    named = {name: tensors[i] for i, name in keywords.items()}
    return getattr(xt, op)(*positional, **named, **attrs)


def weighted_sum(out, weights):
    outs = out if isinstance(out, tuple) else (out,)
    return sum((o * w).sum() for o, w in zip(outs, weights) if o.dtype.is_floating_point)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("op", _spec.op_names())
def test_compile_fullgraph_matches_eager(device, op):
    torch._dynamo.reset()
    tensors, attrs = SAMPLES[op](device)
    eager = [t.clone().requires_grad_() if t.dtype.is_floating_point else t for t in tensors]
    compiled_in = [t.clone().requires_grad_() if t.dtype.is_floating_point else t for t in tensors]
    out = public_call(op, eager, attrs)
    weights = [torch.randn_like(o) if o.dtype.is_floating_point else None
               for o in (out if isinstance(out, tuple) else (out,))]
    weighted_sum(out, weights).backward()

    fn = torch.compile(lambda *ts: weighted_sum(public_call(op, list(ts), attrs), weights),
                       fullgraph=True)
    fn(*compiled_in).backward()
    for i, (a, b) in enumerate(zip(eager, compiled_in)):
        if a.dtype.is_floating_point and a.grad is not None:
            assert_close(to_numpy(b.grad), to_numpy(a.grad), "float32", f"grad {i}", factor=10)


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_compile_fullgraph_chain(device):
    # layer_norm -> swiglu -> softmax in one graph, forward and backward, against eager torch.
    x = torch.randn(8, 64, device=device, requires_grad=True)
    w, b = torch.randn(64, device=device), torch.randn(64, device=device)
    u, g = torch.randn(8, 64, device=device), torch.randn(8, 64, device=device)

    def block(a):  # a weighted sum: the plain sum of a softmax has a zero gradient
        return (xt.softmax(xt.swiglu(xt.layer_norm(a, w, b), u), scale=0.5) * g).sum()

    compiled = torch.compile(block, fullgraph=True)
    compiled(x).backward()
    x2 = x.detach().clone().requires_grad_()
    F = torch.nn.functional
    (torch.softmax(0.5 * (F.silu(F.layer_norm(x2, (64,), w, b)) * u), -1) * g).sum().backward()
    assert_close(to_numpy(x.grad), to_numpy(x2.grad), "float32", "dx", factor=100)


def test_backward_op_names_carry_the_spec_revision():
    # rms_norm's backward reads no rstd since revision 2: a graph torch.compile cached
    # against the op that did names an op that no longer exists, so it is never replayed.
    assert hasattr(torch.ops.xpuruntime, "rms_norm_backward_v2")
    assert not hasattr(torch.ops.xpuruntime, "rms_norm_backward")
    assert hasattr(torch.ops.xpuruntime, "rms_norm")  # forward names: fixed by OPS.md
    for spec in _spec.all_specs():
        backward_rev = spec.direction == _spec.BACKWARD and spec.revision > 1
        assert _registration.op_name(spec).endswith(f"_v{spec.revision}" if backward_rev else "")


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_memoized_call_rules_follow_each_call(device):
    """The attribute rule and the real kernel's allocation are memoized; a memo must not
    answer for another call: 1 and True are one dict key but not one attribute, and each
    shape and dtype gets its own outputs."""
    x, w = torch.randn(3, 8, device=device), torch.randn(8, device=device)
    xt.rms_norm(x, w, 1)  # an int eps is a float
    with pytest.raises(Exception, match="eps.*bool"):
        xt.rms_norm(x, w, True)
    with pytest.raises(Exception, match="eps"):
        xt.rms_norm(x, w, [1e-6])  # unhashable: parsed afresh, still refused
    for shape, dtype in (((3, 8), "float32"), ((5, 8), "float32"), ((5, 8), "bfloat16")):
        xs = torch.randn(shape, device=device).to(getattr(torch, dtype))
        y = xt.rms_norm(xs, w.to(xs.dtype))
        assert y.shape == shape and y.dtype == xs.dtype
        xd, wd = xs.double(), w.to(xs.dtype).double()
        assert_close(to_numpy(y), to_numpy(xd * torch.rsqrt(xd.pow(2).mean(-1, keepdim=True) + 1e-6) * wd),
                     dtype)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible to torch")
def test_kernels_run_on_torchs_current_stream():
    """An eager call launches on the stream current on its tensors' device (the raw getter
    of stream_of), a side stream's work ordered after what that stream waited for."""
    from xpuruntime.interop.torch._common import stream_of

    x = torch.randn(64, 256, device="cuda")
    w = torch.randn(256, device="cuda")
    assert stream_of(x) == torch.cuda.current_stream().cuda_stream
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        assert stream_of(x) == side.cuda_stream
        side.wait_stream(torch.cuda.default_stream())
        y = xt.rms_norm(x, w)
        ref = F.rms_norm(x, (256,), w, 1e-6)
    side.synchronize()
    assert torch.allclose(y, ref, rtol=1e-5, atol=1e-5)
    assert stream_of(x.cpu()) == 0
