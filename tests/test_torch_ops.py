"""layer_norm, softmax, swiglu and geglu through torch.library: forward and
autograd against float64 autodiff, opcheck, torch.compile, errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import xpuruntime.interop.torch as xt  # noqa: E402
from conftest import (DTYPES, TORCH_DEVICES, assert_close, random_inputs, to_numpy,  # noqa: E402
                      torch_f64_vjp, torch_reference_ops)

OPS = {  # op -> (function, number of [..., N] inputs, number of [N] params)
    "layer_norm": (xt.layer_norm, 1, 2),
    "softmax": (xt.softmax, 1, 0),
    "swiglu": (xt.swiglu, 2, 0),
    "geglu": (xt.geglu, 2, 0),
}


def make(rng, op, shape, dtype, device):
    _, n_full, n_param = OPS[op]
    arrays = ([random_inputs(rng, shape, dtype) for _ in range(n_full)]
              + [random_inputs(rng, shape[-1:], dtype) for _ in range(n_param)])
    tensors = [torch.from_numpy(a).to(device=device, dtype=getattr(torch, dtype)).requires_grad_()
               for a in arrays]
    return arrays, tensors


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 7), (5, 4097), (2, 65536), (2, 3, 64)])
@pytest.mark.parametrize("op", list(OPS))
def test_forward_and_autograd(rng, device, dtype, shape, op):
    fn = OPS[op][0]
    arrays, tensors = make(rng, op, shape, dtype, device)
    dy = random_inputs(rng, shape, dtype)
    y = fn(*tensors)
    y.backward(torch.from_numpy(dy).to(device=device, dtype=y.dtype))
    ref_y, ref_g = torch_f64_vjp(torch_reference_ops()[op], arrays, dy)
    assert y.dtype == getattr(torch, dtype) and y.device.type == device
    assert_close(to_numpy(y), ref_y, dtype)
    for i, (t, r) in enumerate(zip(tensors, ref_g)):
        assert_close(to_numpy(t.grad), r, dtype, f"grad {i}")


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("op", list(OPS))
def test_opcheck(rng, device, op):
    _, tensors = make(rng, op, (3, 5), "float32", device)
    extra = {"layer_norm": (1e-5, "fast"), "softmax": (0.5, "fast")}.get(op, ("fast",))
    torch.library.opcheck(getattr(torch.ops.xpuruntime, op).default, (*tensors, *extra))


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_compile_fullgraph_chain(rng, device):
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


def test_errors():
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match=r"layer_norm: 'bias' must have shape \[8\]"):
        xt.layer_norm(x, torch.randn(8), torch.randn(7))
    with pytest.raises(ValueError, match="swiglu"):
        xt.swiglu(x, torch.randn(4, 7))
    with pytest.raises(ValueError, match="softmax"):
        xt.softmax(torch.ones(4, 8, dtype=torch.int32))
