"""The tests of the two gated units, swiglu and geglu, written once: test_swiglu.py and
test_geglu.py import them and define the ``op`` fixture. Every frontend (forward,
gradients, shape errors) against the float64 reference; then the native frontend's
layouts, extremes, empty shapes, policies and errors, the raw XLA FFI targets and
JAX trace-time errors, torch opcheck and errors."""

from __future__ import annotations

import numpy as np
import pytest

import references
from helpers import (DEVICES, DTYPES, POLICIES, TORCH_DEVICES, assert_close, assert_policies_agree,
                     cases, jax_with_targets, make, raises, random_inputs, rel_err, same_bits,
                     shape_id, to_numpy)
from xpuruntime import ops
from xpuruntime._native import core

__all__ = ["test_forward", "test_backward", "test_shape_error_names_the_argument",
           "test_native_layouts_and_extremes", "test_native_empty",
           "test_native_policies_agree_and_are_deterministic", "test_native_unknown_policy",
           "test_native_bad_inputs", "test_jax_ffi", "test_jax_trace_time_errors",
           "test_torch_opcheck", "test_torch_errors"]

SHAPES = [(1, 1), (3, 7), (5, 4097), (2, 65536), (64, 128), (2, 3, 64)]
# Every case of the forward and backward tests (through every frontend).
EVERY_CASE = cases(shape=(SHAPES, shape_id), dtype=DTYPES, policy=POLICIES, device=DEVICES)


def gate_up_dy(rng, shape, dtype):
    return (random_inputs(rng, shape, dtype, scale=2.0), random_inputs(rng, shape, dtype),
            random_inputs(rng, shape, dtype))


# ---- every frontend -----------------------------------------------------------------------------

@EVERY_CASE
def test_forward(op, frontend, shape, dtype, policy, device, rng):
    g, u, _ = gate_up_dy(rng, shape, dtype)
    (y,) = frontend.call(op, g, u, dtype=dtype, device=device, policy=policy)
    assert_close(y, references.forward(op, g, u)["y"], dtype)


@EVERY_CASE
def test_backward(op, grad_frontend, shape, dtype, policy, device, rng):
    g, u, dy = gate_up_dy(rng, shape, dtype)
    (y,), grads = grad_frontend.grad(op, g, u, cotangents=[dy], dtype=dtype, device=device,
                                     policy=policy)
    assert_close(y, references.forward(op, g, u)["y"], dtype, "y")
    ref = references.vjp(op, g, u, cotangents={"dy": dy})
    for key in ("dgate", "dup"):
        assert_close(grads[key], ref[key], dtype, key)


def test_shape_error_names_the_argument(op, frontend, rng):
    g = random_inputs(rng, (4, 8))
    with pytest.raises(Exception, match=f"{op}: 'up' must have the shape of 'gate'"):
        frontend.call(op, g, g[:, :4].copy())


# ---- native -------------------------------------------------------------------------------------

def _fwd(op):
    return getattr(ops, op)


def _bwd(op):
    return getattr(ops, f"{op}_backward")


def _ref(op, g, u):
    return references.forward(op, to_numpy(g), to_numpy(u))["y"]


def _ref_grads(op, dy, g, u):
    r = references.vjp(op, to_numpy(g), to_numpy(u), cotangents={"dy": to_numpy(dy)})
    return r["dgate"], r["dup"]


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_native_layouts_and_extremes(op, device):
    # Strided rows, odd lengths (vector body + scalar tail), and an offset start.
    big = make((10, 37), "float32", device, seed=13, scale=3.0)
    g, u = big[::2, 1:], big[1::2, :-1]
    assert_close(_fwd(op)(g, u), _ref(op, g, u), "float32", f"{op} strided")
    dg, du = _bwd(op)(g, u, g)
    rdg, rdu = _ref_grads(op, g, u, g)
    assert_close(dg, rdg, "float32", f"{op} strided dgate")
    assert_close(du, rdu, "float32", f"{op} strided dup")
    # Large |gate| saturates without overflow; NaN propagates.
    gx = np.array([[-3e38, -200.0, -30.0, 0.0, 30.0, 200.0, 3e38, np.nan]], np.float32)
    ux = np.ones_like(gx)
    if device != "cpu":
        import torch
        gx, ux = torch.from_numpy(gx).to(device), torch.from_numpy(ux).to(device)
    y = to_numpy(_fwd(op)(gx, ux))
    with np.errstate(over="ignore", invalid="ignore"):
        ref = _ref(op, gx, ux)
    assert np.allclose(y[0, :7], ref[0, :7], rtol=1e-6, atol=1e-30)
    assert np.isnan(y[0, 7])
    dg, _ = _bwd(op)(ux, gx, ux)
    assert np.allclose(to_numpy(dg)[0, :7], [0, 0, 0, 0.5, 1, 1, 1], atol=1e-6)


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_native_empty(op, device):
    x = make((0, 8), "float32", device)
    assert tuple(_fwd(op)(x, x).shape) == (0, 8)
    assert all(tuple(t.shape) == (0, 8) for t in _bwd(op)(x, x, x))


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape", [(5, 4097), (2, 65536), (64, 128)], ids=shape_id)
def test_native_policies_agree_and_are_deterministic(op, shape, dtype, device):
    x = make(shape, dtype, device, seed=14)
    u = make(shape, dtype, device, seed=15)

    def run(p):
        return [_fwd(op)(x, u, policy=p), *_bwd(op)(u, x, u, policy=p)]
    out = {p: run(p) for p in POLICIES}
    assert_policies_agree(out, device, dtype, op)
    for p in ("fast", "deterministic"):
        assert all(same_bits(a, b) for a, b in zip(out[p], run(p))), f"{op}: {p} not bitwise stable"


def test_native_unknown_policy(op):
    x = make((3, 7), "float32")
    with pytest.raises(ValueError, match="policy"):
        _fwd(op)(x, x, policy="fastest")


def test_native_bad_inputs(op):
    torch = pytest.importorskip("torch")
    fwd, bwd = _fwd(op), _bwd(op)
    g = make((4, 8), "float32")
    with raises(op, "'up' must have the shape of 'gate'"):
        fwd(g, g[:, :4].copy())
    with raises(op, "'up' must be float32, got float16"):
        fwd(g, g.astype(np.float16))
    with raises(op, "'gate' must be float32, float16 or bfloat16"):
        fwd(g.astype(np.int64), g)
    with raises(op, "'up' .*contiguous"):
        fwd(g[:, :4], g[:, ::2])
    with raises(op, "'dy' must have the shape of 'gate'"):
        bwd(g[:2], g, g)
    with raises(op, "'dy' must be float32"):
        bwd(torch.from_numpy(g).bfloat16(), torch.from_numpy(g), torch.from_numpy(g))
    with raises(op, "output 'y' must be dense"):
        core.call_op(op, "forward", [g, g], [np.empty((8, 4), np.float32).T], None, {}, "fast", 0)
    with raises(op, "'dup' must have the shape of 'gate'"):
        core.call_op(op, "backward", [g, g, g], [np.empty_like(g), np.empty((4, 9), np.float32)],
                     None, {}, "fast", 0)


# ---- jax ----------------------------------------------------------------------------------------

def test_jax_ffi(op):
    """The XLA FFI targets called with jax.ffi directly."""
    jax = jax_with_targets(op)
    jnp = jax.numpy
    g = np.random.default_rng(5).standard_normal((5, 33)).astype(np.float32)
    u = np.random.default_rng(6).standard_normal((5, 33)).astype(np.float32)
    sds = jax.ShapeDtypeStruct(g.shape, g.dtype)
    y = jax.ffi.ffi_call(f"xpuruntime_{op}_fwd", sds)(jnp.asarray(g), jnp.asarray(u), policy="fast")
    assert rel_err(y, _ref(op, g, u)) <= 1e-5
    dg, du = jax.ffi.ffi_call(f"xpuruntime_{op}_bwd", (sds, sds))(
        jnp.asarray(u), jnp.asarray(g), jnp.asarray(u), policy="deterministic")
    rdg, rdu = _ref_grads(op, u, g, u)
    assert rel_err(dg, rdg) <= 1e-5 and rel_err(du, rdu) <= 1e-5
    with pytest.raises(Exception, match=f"{op}: 'up' must have the shape of 'gate'"):
        jax.ffi.ffi_call(f"xpuruntime_{op}_fwd", sds)(
            jnp.asarray(g), jnp.asarray(u[:2]), policy="fast").block_until_ready()


def test_jax_trace_time_errors(op, rng):
    jax = jax_with_targets(op)
    import xpuruntime.jax as xj
    x = jax.numpy.asarray(random_inputs(rng, (4, 8)))
    with pytest.raises(TypeError, match=f"{op}: 'up' must be float32, got bfloat16"):
        getattr(xj, op)(x, x.astype(jax.numpy.bfloat16))
    with pytest.raises(ValueError, match=f"{op}: 'up' must have the shape of 'gate'"):
        getattr(xj, op)(x, x[:2])


# ---- torch --------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_opcheck(op, device):
    torch = pytest.importorskip("torch")
    import xpuruntime.interop.torch  # noqa: F401  registers the ops
    g, u = (torch.randn(3, 5, device=device, requires_grad=True) for _ in range(2))
    torch.library.opcheck(getattr(torch.ops.xpuruntime, op).default, (g, u, "fast"))


def test_torch_errors(op):
    torch = pytest.importorskip("torch")
    import xpuruntime.interop.torch as xt
    with pytest.raises(ValueError, match=op):
        getattr(xt, op)(torch.randn(4, 8), torch.randn(4, 7))
