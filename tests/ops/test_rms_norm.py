"""rms_norm through every frontend (forward, residual, gradients, errors) against the
float64 reference, then what only one frontend has: the native frontend's backward
(which recomputes rstd), layouts and CUDA paths; JAX vmap, the dead forward dropped
under jit, traced policies and FFI errors; torch opcheck, torch.compile and copies."""

from __future__ import annotations

import numpy as np
import pytest

import references
import xpuruntime
from helpers import (DEVICES, DTYPES, HAS_TORCH, POLICIES, TOLERANCE, TORCH_DEVICES, assert_close,
                     cases, random_inputs, shape_id, to_numpy)
from xpuruntime import ops

OP = "rms_norm"
SHAPES = [(1, 1), (3, 7), (5, 4097), (2, 65536), (64, 128), (2, 3, 33), (2, 3, 64), (4, 4096)]
GRAD_SHAPES = [(1, 1), (3, 7), (5, 4097), (2, 65536), (64, 128)]
RESIDUAL_SHAPES = [(3, 7), (7, 33), (6, 96), (5, 4097), (2, 65536), (64, 128)]


def check_dx(dx, ref_dx, x, w, dy, dtype, eps=1e-6):
    if x.shape[-1] == 1:
        # N = 1: dx is a cancellation of two terms of size |dy w rstd| down to O(eps);
        # f32 gets it right relative to the terms, not to the tiny result.
        scale = np.abs(dy * w / np.sqrt(x.astype(np.float64) ** 2 + eps)).max()
        assert np.abs(dx - ref_dx).max() <= TOLERANCE[dtype] * scale
    else:
        assert_close(dx, ref_dx, dtype, "dx")


# ---- every frontend -----------------------------------------------------------------------------

@cases(shape=(SHAPES, shape_id), dtype=DTYPES, policy=POLICIES, device=DEVICES)
def test_forward(frontend, shape, dtype, policy, device, rng):
    x, w = random_inputs(rng, shape, dtype), random_inputs(rng, shape[-1:], dtype)
    (y,) = frontend.call(OP, x, w, dtype=dtype, device=device, policy=policy)
    assert_close(y, references.rms_norm(x, w)["y"], dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("eps", [None, 1e-5], ids=["default_eps", "eps"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", RESIDUAL_SHAPES, ids=shape_id)
def test_residual_forward(frontend, shape, dtype, eps, device, rng):
    x, r = random_inputs(rng, shape, dtype), random_inputs(rng, shape, dtype)
    w = random_inputs(rng, shape[-1:], dtype)
    attrs = {} if eps is None else {"eps": eps}
    y, h = frontend.call(OP, x, w, r, dtype=dtype, device=device, **attrs)
    ref = references.rms_norm(x, w, r, dtype=dtype, **attrs)
    assert_close(h, ref["h"], dtype, "h")
    assert_close(y, ref["y"], dtype, "y")


@cases(shape=(GRAD_SHAPES, shape_id), dtype=DTYPES, policy=POLICIES, device=DEVICES)
def test_backward(grad_frontend, shape, dtype, policy, device, rng):
    x, w, dy = (random_inputs(rng, s, dtype) for s in (shape, shape[-1:], shape))
    (y,), grads = grad_frontend.grad(OP, x, w, cotangents=[dy], dtype=dtype, device=device,
                                     policy=policy)
    ref = references.rms_norm_vjp(x, w, dy=dy)
    assert_close(y, references.rms_norm(x, w)["y"], dtype, "y")
    check_dx(grads["dx"], ref["dx"], x, w, dy, dtype)
    assert_close(grads["dweight"], ref["dweight"], dtype, "dweight")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(6, 96), (5, 4097)], ids=shape_id)
def test_residual_backward(grad_frontend, shape, dtype, device, rng):
    x, r, dy, dh = (random_inputs(rng, shape, dtype) for _ in range(4))
    w = random_inputs(rng, shape[-1:], dtype)
    (y, h), grads = grad_frontend.grad(OP, x, w, r, cotangents=[dy, dh], dtype=dtype,
                                       device=device)
    ref = references.rms_norm(x, w, r, dtype=dtype)
    assert_close(h, ref["h"], dtype, "h")
    assert_close(y, ref["y"], dtype, "y")
    ref = references.rms_norm_vjp(x, w, r, dy=dy, dh=dh, dtype=dtype)
    for key in ("dx", "dweight", "dresidual"):
        assert_close(grads[key], ref[key], dtype, key)


def test_shape_error_names_the_argument(frontend, rng):
    # Shapes the frontend cannot see as wrong before the core does (an ONNX graph cannot
    # relate the weight's length to x's last axis) still give the core's message.
    with pytest.raises(Exception, match=r"rms_norm: 'weight' must have shape \[8\], got \[3\]"):
        frontend.call(OP, random_inputs(rng, (2, 8)), random_inputs(rng, (3,)))


# ---- native -------------------------------------------------------------------------------------

backward = ops.rms_norm_backward  # from the forward's inputs alone (rstd recomputed)


def test_native_zero_rows_and_strided_rows(rng):
    x = np.zeros((0, 16), np.float32)
    assert ops.rms_norm(x, np.ones(16, np.float32)).shape == (0, 16)
    big = random_inputs(rng, (6, 40))
    view = big[:, 3:35]  # rows with a stride of 40 elements
    w = random_inputs(rng, (32,))
    assert_close(ops.rms_norm(view, w), references.rms_norm(np.ascontiguousarray(view), w)["y"],
                 "float32")


def test_native_nan_propagates(rng):
    x = random_inputs(rng, (3, 8))
    x[1, 2] = np.nan
    y = ops.rms_norm(x, np.ones(8, np.float32))
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_native_policies_agree_and_deterministic_repeats(rng, device):
    import torch
    x = torch.from_numpy(random_inputs(rng, (257, 1000))).to(device, torch.bfloat16)
    w = torch.from_numpy(random_inputs(rng, (1000,))).to(device, torch.bfloat16)
    dy = torch.from_numpy(random_inputs(rng, (257, 1000))).to(device, torch.bfloat16)
    outs = {p: backward(dy, x, w, policy=p) for p in POLICIES}
    for p in POLICIES:
        for a, b in zip(outs[p], outs["reference"]):
            assert_close(to_numpy(a), to_numpy(b), "bfloat16", p)
    runs = [backward(dy, x, w, policy="deterministic") for _ in range(5)]
    for dx, dw in runs[1:]:
        assert torch.equal(dx, runs[0][0]) and torch.equal(dw, runs[0][1])


def test_native_bad_inputs_raise_clear_errors(rng):
    x = random_inputs(rng, (4, 8))
    w = random_inputs(rng, (8,))
    with pytest.raises(ValueError, match=r"rms_norm: 'weight' must have shape \[8\], got \[7\]"):
        ops.rms_norm(x, w[:7])
    with pytest.raises(ValueError, match="rms_norm: 'weight' must be float32, got float64"):
        ops.rms_norm(x, w.astype(np.float64))
    with pytest.raises(ValueError, match="must be float32, float16 or bfloat16, got int32"):
        ops.rms_norm(x.astype(np.int32), w)
    with pytest.raises(ValueError, match="0-d"):
        ops.rms_norm(np.float32(1.0), w)
    with pytest.raises(ValueError, match="'residual' must have the shape of 'x'"):
        ops.rms_norm(x, w, residual=x[:2])
    with pytest.raises(ValueError, match="contiguous in its last dimension"):
        ops.rms_norm(np.asfortranarray(random_inputs(rng, (4, 8))), w)
    with pytest.raises(ValueError, match="'eps' must be >= 0"):
        ops.rms_norm(x, w, -1.0)
    with pytest.raises(ValueError, match="unknown policy"):
        ops.rms_norm(x, w, policy="fastest")
    assert issubclass(xpuruntime.InvalidArgumentError, xpuruntime.Error)


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
def test_native_mixed_devices_rejected(device):
    import torch
    x = torch.randn(4, 8, device=device)
    with pytest.raises(ValueError, match="all tensors must be on one device"):
        ops.rms_norm(x, torch.randn(8))


# Shapes that land on the v2 CUDA paths (docs/kernels/rms_norm.md): one row split
# over a thread-block cluster (forward 2-8 CTAs, backward 2-8), persistent
# backward groups that walk several rows each (16-byte rows: the v2.1 shared-memory
# ring of 2-4 stages, wrapped several times by (2000, 4096) and (1500, 1000), the
# latter with idle tail threads; scalar rows: next-row prefetch in registers),
# 16-byte and scalar (odd N) vectors, and the fallback past 8 CTAs (N = 65537, 131080).
CLUSTER_SHAPES = [(300, 16384), (40, 32768), (33, 65536), (50, 20001), (3, 65537), (2, 131080),
                  (600, 8192), (2000, 4096), (1500, 1000)]


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", CLUSTER_SHAPES)
def test_native_cluster_paths_cuda(rng, device, dtype, shape):
    import torch
    tdt = getattr(torch, dtype)
    x, r, dy, dh = (random_inputs(rng, shape, dtype) for _ in range(4))
    w = random_inputs(rng, shape[-1:], dtype)
    t = lambda a: torch.from_numpy(a).to(device=device, dtype=tdt)  # noqa: E731
    y, h = ops.rms_norm(t(x), t(w), residual=t(r))
    ref = references.rms_norm(x, w, r, dtype=dtype)
    assert_close(to_numpy(h), ref["h"], dtype, "h")
    assert_close(to_numpy(y), ref["y"], dtype, "y")
    hn = to_numpy(h)
    for grad_h in (None, dh):
        runs = [backward(t(dy), h, t(w), dh=None if grad_h is None else t(grad_h),
                         policy=p) for p in ("fast", "fast", "reference")]
        # dh (the gradient of the h output) flows straight into dx.
        ref = references.rms_norm_vjp(hn, w, dy=dy, dh=grad_h)
        for dx, dw in runs:
            assert_close(to_numpy(dx), ref["dx"], dtype, "dx")
            assert_close(to_numpy(dw), ref["dweight"], dtype, "dweight")
        # `fast` is bitwise deterministic, dweight included.
        assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_native_backward_recomputes_rstd_with_the_forwards_eps(rng):
    # Small rows so that eps = 0.5 moves rstd well past the tolerance: a backward that
    # ignored eps (or took the default) would fail.
    x, r, dy = (random_inputs(rng, (2, 3, 40)) * 0.3 for _ in range(3))
    w = random_inputs(rng, (40,))
    y, h = ops.rms_norm(x, w, 0.5, residual=r)
    assert y.shape == h.shape == x.shape
    with pytest.raises(TypeError):
        ops.rms_norm(x, w, return_stats=True)  # nothing is saved any more
    dx, dw = ops.rms_norm_backward(dy, h, w, eps=0.5)
    want = references.rms_norm_vjp(h, w, dy=dy, eps=0.5)
    assert_close(dx, want["dx"], "float32", "dx")
    assert_close(dw, want["dweight"], "float32", "dweight")
    other = references.rms_norm_vjp(h, w, dy=dy)  # the default eps: far from the above
    assert np.abs(other["dweight"] - want["dweight"]).max() > 100 * np.abs(dw - want["dweight"]).max()
    with pytest.raises(ValueError, match=r"rms_norm: 'eps' must be >= 0"):
        ops.rms_norm_backward(dy, h, w, eps=-1.0)


# ---- jax ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def xj():
    pytest.importorskip("jax")
    import xpuruntime.jax
    return xpuruntime.jax


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_jax_vmap_any_axis(xj, rng, axis):
    import jax
    import jax.numpy as jnp
    x = random_inputs(rng, (4, 5, 6, 16))
    w = random_inputs(rng, (16,))
    # The mapped axis must not be the normalized one; -1 maps over axis 2 of a moved array.
    in_axis = axis if axis != -1 else 2
    got = jax.vmap(xj.rms_norm, in_axes=(in_axis, None))(jnp.asarray(x), jnp.asarray(w))
    want = np.moveaxis(references.rms_norm(x, w)["y"], in_axis, 0)
    assert_close(to_numpy(got), want, "float32")


def test_jax_vmap_of_grad_and_batched_weights(xj, rng):
    import jax
    import jax.numpy as jnp
    x, dy = random_inputs(rng, (3, 4, 32)), random_inputs(rng, (3, 4, 32))
    w, wb = random_inputs(rng, (32,)), random_inputs(rng, (3, 32))
    loss = lambda a, b, g: jnp.sum(xj.rms_norm(a, b) * g)  # noqa: E731
    for weights, w_axis in ((w, None), (wb, 0)):
        gx, gw = jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(0, w_axis, 0))(
            jnp.asarray(x), jnp.asarray(weights), jnp.asarray(dy))
        for i in range(3):
            wi = weights if w_axis is None else weights[i]
            ref = references.rms_norm_vjp(x[i], wi, dy=dy[i])
            assert_close(to_numpy(gx[i]), ref["dx"], "float32", "dx")
            assert_close(to_numpy(gw[i]), ref["dweight"], "float32", "dweight")
    nested = jax.vmap(jax.vmap(xj.rms_norm, in_axes=(0, None)), in_axes=(0, None))(
        jnp.asarray(x), jnp.asarray(w))
    assert_close(to_numpy(nested), references.rms_norm(x, w)["y"], "float32")


def test_jax_gradients_alone_drop_the_forward(xj, rng):
    # The backward reads only the forward's inputs (it recomputes rstd), so when only
    # gradients are used XLA removes the forward custom call (its outputs are dead):
    # the program reads x and dy and writes dx, as jnp's fused vjp does.
    import jax
    import jax.numpy as jnp
    x, w, g = (jnp.asarray(random_inputs(rng, s)) for s in ((6, 64), (64,), (6, 64)))

    def grads(a, b, ct):
        return jax.vjp(lambda u, v: xj.rms_norm(u, v), a, b)[1](ct)  # the primal is discarded

    text = jax.jit(grads).lower(x, w, g).compile().as_text()
    assert "xpuruntime_rms_norm_bwd" in text
    assert "xpuruntime_rms_norm_fwd" not in text
    dx, dw = jax.jit(grads)(x, w, g)
    ref = references.rms_norm_vjp(np.asarray(x), np.asarray(w), dy=np.asarray(g))
    assert_close(to_numpy(dx), ref["dx"], "float32", "dx")
    assert_close(to_numpy(dw), ref["dweight"], "float32", "dweight")
    # The forward still runs when its result is used.
    primal = jax.jit(lambda a, b, ct: jax.vjp(lambda u, v: xj.rms_norm(u, v), a, b)[0])
    assert "xpuruntime_rms_norm_fwd" in primal.lower(x, w, g).compile().as_text()


def test_jax_policy_is_part_of_the_traced_program(xj, rng):
    import jax
    import jax.numpy as jnp
    x, w = jnp.asarray(random_inputs(rng, (4, 8))), jnp.asarray(random_inputs(rng, (8,)))
    text = jax.jit(lambda a, b: xj.rms_norm(a, b, policy="reference")).lower(x, w).compile().as_text()
    assert "xpuruntime_rms_norm_fwd" in text and "reference" in text
    # The scope is read when the function is traced: a fresh function is traced here
    # (an already-traced jitted function keeps the policy it was traced with).
    with xpuruntime.policy("deterministic"):
        text = jax.jit(lambda a, b: xj.rms_norm(a, b)).lower(x, w).compile().as_text()
    assert "deterministic" in text


def test_jax_trace_time_errors(xj, rng):
    import jax
    import jax.numpy as jnp
    x, w = jnp.asarray(random_inputs(rng, (4, 8))), jnp.asarray(random_inputs(rng, (8,)))
    with pytest.raises(ValueError, match=r"rms_norm: 'weight' must have shape \[8\], got \[7\]"):
        jax.jit(xj.rms_norm)(x, w[:7])
    with pytest.raises(TypeError, match="rms_norm: 'weight' must be float32"):
        xj.rms_norm(x, w.astype(jnp.bfloat16))
    with pytest.raises(TypeError, match="float32, float16 or bfloat16, got int32"):
        xj.rms_norm(x.astype(jnp.int32), w)
    with pytest.raises(ValueError, match="0-d"):
        xj.rms_norm(jnp.float32(1.0), w)
    with pytest.raises(ValueError, match="unknown policy"):
        xj.rms_norm(x, w, policy="fastest")


def test_jax_runtime_error_becomes_ffi_error(xj, rng):
    import jax
    import jax.numpy as jnp
    # Bypass the trace-time checks: the kernel's own validation reports through XLA.
    x = jnp.asarray(random_inputs(rng, (4, 8)))
    call = jax.ffi.ffi_call("xpuruntime_rms_norm_fwd_v2", jax.ShapeDtypeStruct(x.shape, x.dtype))
    with pytest.raises(Exception, match=r"rms_norm: 'weight' must have shape \[8\], got \[3\]"):
        jax.block_until_ready(call(x, x[0, :3], eps=np.float32(1e-6), policy="fast"))
    with pytest.raises(Exception, match="unknown policy 'nope'"):
        jax.block_until_ready(call(x, x[0], eps=np.float32(1e-6), policy="nope"))


# ---- torch --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def xt():
    pytest.importorskip("torch")
    import xpuruntime.interop.torch
    return xpuruntime.interop.torch


def tensor(a, dtype, device, grad=False):
    import torch
    return torch.from_numpy(a).to(device=device, dtype=getattr(torch, dtype)).requires_grad_(grad)


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_opcheck(xt, device):
    import torch
    x = torch.randn(3, 5, device=device, requires_grad=True)
    w = torch.randn(5, device=device, requires_grad=True)
    r = torch.randn(3, 5, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.xpuruntime.rms_norm.default, (x, w, None, 1e-6, "fast"))
    torch.library.opcheck(torch.ops.xpuruntime.rms_norm.default, (x, w, r, 1e-6, "fast"))
    torch.library.opcheck(torch.ops.xpuruntime.rms_norm_backward_v2.default,
                          (torch.randn(3, 5, device=device), x.detach(), w.detach(), None, 1e-6,
                           "fast"))


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_compile_fullgraph(xt, rng, device):
    import torch
    x = tensor(random_inputs(rng, (8, 64)), "float32", device, True)
    w = tensor(random_inputs(rng, (64,)), "float32", device)
    fn = torch.compile(lambda a, b: xt.rms_norm(a, b).square().sum(), fullgraph=True)
    loss = fn(x, w)
    loss.backward()
    x2 = x.detach().clone().requires_grad_()
    torch.nn.functional.rms_norm(x2, (64,), w, 1e-6).square().sum().backward()
    assert_close(to_numpy(x.grad), to_numpy(x2.grad), "float32", "dx", factor=10)


def test_torch_non_contiguous_input(xt, rng):
    base = tensor(random_inputs(rng, (16, 8)), "float32", "cpu")
    x = base.t()  # last dim not contiguous: the adapter copies
    w = tensor(random_inputs(rng, (16,)), "float32", "cpu")
    assert_close(to_numpy(xt.rms_norm(x, w)),
                 references.rms_norm(to_numpy(x), to_numpy(w))["y"], "float32")


def test_torch_errors(xt):
    import torch
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match=r"rms_norm: 'weight' must have shape \[8\], got \[7\]"):
        xt.rms_norm(x, torch.randn(7))
    with pytest.raises(ValueError, match="rms_norm: 'weight' must be float32, got bfloat16"):
        xt.rms_norm(x, torch.randn(8, dtype=torch.bfloat16))
    with pytest.raises(ValueError, match="got int64"):
        xt.rms_norm(torch.ones(4, 8, dtype=torch.int64), torch.ones(8, dtype=torch.int64))
    with pytest.raises(ValueError, match="unknown policy"):
        xt.rms_norm(x, torch.randn(8), policy="nope")
