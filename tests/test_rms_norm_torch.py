"""rms_norm through torch.library: dtypes, autograd vs float64 autodiff,
opcheck, torch.compile, errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xpuruntime.interop.torch as xt  # noqa: E402
from conftest import DTYPES, TORCH_DEVICES, assert_close, random_inputs, rms_norm_reference, to_numpy  # noqa: E402


def tensor(a, dtype, device, grad=False):
    return torch.from_numpy(a).to(device=device, dtype=getattr(torch, dtype)).requires_grad_(grad)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 4097), (2, 65536), (64, 128)])
def test_forward_and_autograd(rng, device, dtype, shape):
    x, w, dy = (random_inputs(rng, s, dtype) for s in (shape, shape[-1:], shape))
    xt_, wt = tensor(x, dtype, device, True), tensor(w, dtype, device, True)
    y = xt.rms_norm(xt_, wt)
    y.backward(tensor(dy, dtype, device))
    ref = rms_norm_reference(x, w, dy=dy, dtype=dtype)
    assert y.dtype == getattr(torch, dtype) and y.device.type == device
    assert_close(to_numpy(y), ref["y"], dtype)
    if shape[-1] > 1:  # N = 1: dx is a cancellation to O(eps), see the native test
        assert_close(to_numpy(xt_.grad), ref["dx"], dtype, "dx")
    assert_close(to_numpy(wt.grad), ref["dw"], dtype, "dweight")


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_residual_autograd(rng, device):
    shape = (6, 96)
    x, r, dy, dh = (random_inputs(rng, shape) for _ in range(4))
    w = random_inputs(rng, shape[-1:])
    xs, ws, rs = (tensor(a, "float32", device, True) for a in (x, w, r))
    y, h = xt.rms_norm(xs, ws, residual=rs)
    torch.autograd.backward([y, h], [tensor(dy, "float32", device), tensor(dh, "float32", device)])
    ref = rms_norm_reference(x, w, residual=r, dy=dy, dh=dh)
    for got, key in ((y, "y"), (h, "h"), (xs.grad, "dx"), (ws.grad, "dw"), (rs.grad, "dres")):
        assert_close(to_numpy(got), ref[key], "float32", key)


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_opcheck(device):
    x = torch.randn(3, 5, device=device, requires_grad=True)
    w = torch.randn(5, device=device, requires_grad=True)
    r = torch.randn(3, 5, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.xpuruntime.rms_norm.default, (x, w, None, 1e-6, "fast"))
    torch.library.opcheck(torch.ops.xpuruntime.rms_norm.default, (x, w, r, 1e-6, "fast"))
    rstd = torch.rand(3, device=device) + 0.5
    torch.library.opcheck(torch.ops.xpuruntime.rms_norm_backward.default,
                          (torch.randn(3, 5, device=device), x.detach(), w.detach(), rstd, None, 1e-6,
                           "fast"))


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_compile_fullgraph(rng, device):
    x = tensor(random_inputs(rng, (8, 64)), "float32", device, True)
    w = tensor(random_inputs(rng, (64,)), "float32", device)
    fn = torch.compile(lambda a, b: xt.rms_norm(a, b).square().sum(), fullgraph=True)
    loss = fn(x, w)
    loss.backward()
    x2 = x.detach().clone().requires_grad_()
    torch.nn.functional.rms_norm(x2, (64,), w, 1e-6).square().sum().backward()
    assert_close(to_numpy(x.grad), to_numpy(x2.grad), "float32", "dx", factor=10)


def test_non_contiguous_input(rng):
    base = tensor(random_inputs(rng, (16, 8)), "float32", "cpu")
    x = base.t()  # last dim not contiguous: the adapter copies
    w = tensor(random_inputs(rng, (16,)), "float32", "cpu")
    assert_close(to_numpy(xt.rms_norm(x, w)), rms_norm_reference(to_numpy(x), to_numpy(w))["y"], "float32")


def test_errors(rng):
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match=r"rms_norm: 'weight' must have shape \[8\], got \[7\]"):
        xt.rms_norm(x, torch.randn(7))
    with pytest.raises(ValueError, match="rms_norm: 'weight' must be float32, got bfloat16"):
        xt.rms_norm(x, torch.randn(8, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="got int64"):
        xt.rms_norm(torch.ones(4, 8, dtype=torch.int64), torch.ones(8, dtype=torch.int64))
    with pytest.raises(ValueError, match="unknown policy"):
        xt.rms_norm(x, torch.randn(8), policy="nope")
