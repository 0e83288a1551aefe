"""rope and cross_entropy through the JAX and torch frontends, against float64
torch autodiff; vmap (JAX), opcheck and torch.compile (torch)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from conftest import (DTYPES, HAS_JAX, JAX_PLATFORMS, TORCH_DEVICES, assert_close,  # noqa: E402
                      random_inputs, to_numpy)

needs_jax = pytest.mark.skipif(not HAS_JAX, reason="jax not installed")


def rope_ref(x, cos, sin, interleaved):
    """float64 rotary embedding (torch), x [B, S, H, D], cos/sin [S, D/2]."""
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    if interleaved:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * c - x2 * s, x2 * c + x1 * s], -1).flatten(-2)
    x1, x2 = x.chunk(2, -1)
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], -1)


def rope_case(rng, shape, dtype):
    x = random_inputs(rng, shape, dtype)
    angles = rng.uniform(0, 6.3, (shape[1], shape[3] // 2))
    return x, np.cos(angles).astype(np.float32), np.sin(angles).astype(np.float32)


def rope_expected(x, cos, sin, dy, interleaved):
    xt_ = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = rope_ref(xt_, torch.tensor(cos, dtype=torch.float64), torch.tensor(sin, dtype=torch.float64),
                 interleaved)
    (y * torch.tensor(dy, dtype=torch.float64)).sum().backward()
    return y.detach().numpy(), xt_.grad.numpy()


def ce_case(rng, t, v, dtype):
    logits = random_inputs(rng, (t, v), dtype)
    labels = rng.integers(0, v, t).astype(np.int64)
    labels[:: 3] = -100
    return logits, labels


def ce_expected(logits, labels, ls, reduction, dloss):
    lt = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = F.cross_entropy(lt, torch.tensor(labels), label_smoothing=ls, reduction=reduction)
    (loss * torch.tensor(dloss, dtype=torch.float64)).sum().backward()
    return loss.detach().numpy(), lt.grad.numpy()


# ---- torch ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("shape", [(2, 5, 3, 8), (2, 7, 4, 128)])
def test_torch_rope(rng, device, dtype, interleaved, shape):
    import xpuruntime.interop.torch as xt
    x, cos, sin = rope_case(rng, shape, dtype)
    dy = random_inputs(rng, shape, dtype)
    tdt = getattr(torch, dtype)
    xs = torch.from_numpy(x).to(device, tdt).requires_grad_()
    y = xt.rope(xs, torch.from_numpy(cos).to(device), torch.from_numpy(sin).to(device),
                interleaved=interleaved)
    y.backward(torch.from_numpy(dy).to(device, tdt))
    ref_y, ref_dx = rope_expected(x, cos, sin, dy, interleaved)
    assert_close(to_numpy(y), ref_y, dtype)
    assert_close(to_numpy(xs.grad), ref_dx, dtype, "dx")


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("tv", [(7, 33), (5, 4097), (3, 70000)])
def test_torch_cross_entropy(rng, device, dtype, reduction, tv):
    import xpuruntime.interop.torch as xt
    logits, labels = ce_case(rng, *tv, dtype)
    dloss = rng.standard_normal(tv[0] if reduction == "none" else ()).astype(np.float32)
    lt = torch.from_numpy(logits).to(device, getattr(torch, dtype)).requires_grad_()
    loss = xt.cross_entropy(lt, torch.from_numpy(labels).to(device), label_smoothing=0.1,
                            reduction=reduction)
    loss.backward(torch.from_numpy(np.asarray(dloss)).to(device))
    ref_loss, ref_grad = ce_expected(logits, labels, 0.1, reduction, dloss)
    assert loss.dtype == torch.float32
    assert_close(to_numpy(loss), ref_loss, dtype)
    assert_close(to_numpy(lt.grad), ref_grad, dtype, "dlogits")


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_opcheck_and_compile(rng, device):
    import xpuruntime.interop.torch as xt
    x = torch.randn(2, 5, 3, 8, device=device, requires_grad=True)
    cos, sin = torch.randn(5, 4, device=device), torch.randn(5, 4, device=device)
    torch.library.opcheck(torch.ops.xpuruntime.rope.default, (x, cos, sin, True, "fast"))
    logits = torch.randn(6, 40, device=device, requires_grad=True)
    labels = torch.randint(0, 40, (6,), device=device)
    torch.library.opcheck(torch.ops.xpuruntime.cross_entropy.default,
                          (logits, labels, -100, 0.0, "mean", "fast"))
    fn = torch.compile(lambda a, b: xt.cross_entropy(a, b), fullgraph=True)
    fn(logits, labels).backward()
    ref = logits.detach().clone().requires_grad_()
    F.cross_entropy(ref, labels).backward()
    assert_close(to_numpy(logits.grad), to_numpy(ref.grad), "float32", "dlogits", factor=10)


def test_torch_errors():
    import xpuruntime.interop.torch as xt
    with pytest.raises(ValueError, match="rope"):
        xt.rope(torch.randn(1, 2, 1, 3), torch.randn(2, 1), torch.randn(2, 1))
    with pytest.raises(ValueError, match="cross_entropy"):
        xt.cross_entropy(torch.randn(3, 5), torch.tensor([0, 7, 1]))
    with pytest.raises(ValueError, match="cross_entropy"):
        xt.cross_entropy(torch.randn(3, 5), torch.tensor([0, 1, 1]), reduction="max")


# ---- JAX -----------------------------------------------------------------------------------------

@needs_jax
@pytest.mark.parametrize("platform", JAX_PLATFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("interleaved", [False, True])
def test_jax_rope(rng, platform, dtype, interleaved):
    import jax
    import jax.numpy as jnp
    import xpuruntime.jax as xj
    shape = (2, 7, 4, 128)
    x, cos, sin = rope_case(rng, shape, dtype)
    dy = random_inputs(rng, shape, dtype)
    dev = jax.devices(platform)[0]
    xs, cs, ss, dys = (jax.device_put(jnp.asarray(a, dtype=d), dev)
                       for a, d in ((x, dtype), (cos, "float32"), (sin, "float32"), (dy, dtype)))
    y = jax.jit(lambda a: xj.rope(a, cs, ss, interleaved=interleaved))(xs)
    dx = jax.grad(lambda a: jnp.sum(xj.rope(a, cs, ss, interleaved=interleaved).astype(jnp.float32)
                                    * dys.astype(jnp.float32)))(xs)
    ref_y, ref_dx = rope_expected(x, cos, sin, dy, interleaved)
    assert_close(to_numpy(y), ref_y, dtype)
    assert_close(to_numpy(dx), ref_dx, dtype, "dx")
    batched = jax.vmap(lambda a: xj.rope(a, cs, ss, interleaved=interleaved))(jnp.stack([xs, xs]))
    assert_close(to_numpy(batched[1]), ref_y, dtype, "vmap")


@needs_jax
@pytest.mark.parametrize("platform", JAX_PLATFORMS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_jax_cross_entropy(rng, platform, reduction):
    import jax
    import jax.numpy as jnp
    import xpuruntime.jax as xj
    logits, labels = ce_case(rng, 9, 4097, "float32")
    labels32 = labels.astype(np.int32)
    dev = jax.devices(platform)[0]
    lg, lb = jax.device_put(jnp.asarray(logits), dev), jax.device_put(jnp.asarray(labels32), dev)
    dloss = rng.standard_normal(9 if reduction == "none" else ()).astype(np.float32)
    loss, vjp = jax.vjp(lambda a: xj.cross_entropy(a, lb, label_smoothing=0.1, reduction=reduction), lg)
    (grad,) = vjp(jnp.asarray(dloss))
    ref_loss, ref_grad = ce_expected(logits, labels, 0.1, reduction, dloss)
    assert_close(to_numpy(loss), ref_loss, "float32")
    assert_close(to_numpy(grad), ref_grad, "float32", "dlogits")


@needs_jax
def test_jax_cross_entropy_vmap(rng):
    import jax
    import jax.numpy as jnp
    import xpuruntime.jax as xj
    cases = [ce_case(rng, 6, 50, "float32") for _ in range(3)]
    lg = jnp.stack([jnp.asarray(c[0]) for c in cases])
    lb = jnp.stack([jnp.asarray(c[1].astype(np.int32)) for c in cases])
    for reduction in ("mean", "sum", "none"):
        f = lambda a, b: xj.cross_entropy(a, b, reduction=reduction)  # noqa: E731
        losses = jax.vmap(f)(lg, lb)
        grads = jax.vmap(jax.grad(lambda a, b: jnp.sum(f(a, b))))(lg, lb)
        for i, (logits, labels) in enumerate(cases):
            dl = np.ones(6, np.float32) if reduction == "none" else np.float32(1)
            ref_loss, ref_grad = ce_expected(logits, labels, 0.0, reduction, dl)
            assert_close(to_numpy(losses[i]), ref_loss, "float32", reduction)
            assert_close(to_numpy(grads[i]), ref_grad, "float32", f"grad {reduction}")


@needs_jax
def test_jax_errors():
    import jax.numpy as jnp
    import xpuruntime.jax as xj
    with pytest.raises(ValueError, match="rope: the head dimension D must be even"):
        xj.rope(jnp.ones((1, 2, 1, 3)), jnp.ones((2, 1)), jnp.ones((2, 1)))
    with pytest.raises(TypeError, match="cross_entropy: 'labels' must be int32 or int64"):
        xj.cross_entropy(jnp.ones((3, 5)), jnp.ones(3))
    with pytest.raises(ValueError, match="unknown reduction"):
        xj.cross_entropy(jnp.ones((3, 5)), jnp.zeros(3, jnp.int32), reduction="max")
