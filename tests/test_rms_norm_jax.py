"""rms_norm through JAX: jit, grad (backward kernel vs float64 autodiff), vmap,
policies in the traced program, trace-time errors."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import xpuruntime  # noqa: E402
import xpuruntime.jax as xj  # noqa: E402
from conftest import DTYPES, JAX_PLATFORMS, assert_close, random_inputs, rms_norm_reference, to_numpy  # noqa: E402


def put(a, dtype, platform):
    return jax.device_put(jnp.asarray(a, dtype=dtype), jax.devices(platform)[0])


@pytest.mark.parametrize("platform", JAX_PLATFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 4097), (2, 65536), (2, 3, 64)])
def test_jit_forward(rng, platform, dtype, shape):
    x, w = random_inputs(rng, shape, dtype), random_inputs(rng, shape[-1:], dtype)
    y = jax.jit(xj.rms_norm)(put(x, dtype, platform), put(w, dtype, platform))
    assert y.dtype == jnp.dtype(dtype) and y.shape == shape
    assert_close(to_numpy(y), rms_norm_reference(x, w, dtype=dtype)["y"], dtype)


@pytest.mark.parametrize("platform", JAX_PLATFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 7), (5, 4097), (64, 128)])
def test_grad_matches_float64_autodiff(rng, platform, dtype, shape):
    x, w, dy = (random_inputs(rng, s, dtype) for s in (shape, shape[-1:], shape))
    xs, ws, dys = (put(a, dtype, platform) for a in (x, w, dy))
    loss = lambda a, b: jnp.sum(xj.rms_norm(a, b).astype(jnp.float32) * dys.astype(jnp.float32))  # noqa: E731
    gx, gw = jax.jit(jax.grad(loss, argnums=(0, 1)))(xs, ws)
    ref = rms_norm_reference(x, w, dy=dy, dtype=dtype)
    assert_close(to_numpy(gx), ref["dx"], dtype, "dx")
    assert_close(to_numpy(gw), ref["dw"], dtype, "dweight")


@pytest.mark.parametrize("platform", JAX_PLATFORMS)
def test_residual_forward_and_grads(rng, platform):
    shape = (6, 96)
    x, r, dy, dh = (random_inputs(rng, shape) for _ in range(4))
    w = random_inputs(rng, shape[-1:])
    args = [put(a, "float32", platform) for a in (x, w, r)]
    dys, dhs = put(dy, "float32", platform), put(dh, "float32", platform)

    def loss(a, b, c):
        y, h = xj.rms_norm(a, b, residual=c)
        return jnp.sum(y * dys) + jnp.sum(h * dhs)

    gx, gw, gr = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(*args)
    ref = rms_norm_reference(x, w, residual=r, dy=dy, dh=dh)
    assert_close(to_numpy(gx), ref["dx"], "float32", "dx")
    assert_close(to_numpy(gw), ref["dw"], "float32", "dweight")
    assert_close(to_numpy(gr), ref["dres"], "float32", "dresidual")
    y, h = jax.jit(lambda a, b, c: xj.rms_norm(a, b, residual=c))(*args)
    assert_close(to_numpy(h), ref["h"], "float32", "h")
    assert_close(to_numpy(y), ref["y"], "float32", "y")


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_vmap_any_axis(rng, axis):
    x = random_inputs(rng, (4, 5, 6, 16))
    w = random_inputs(rng, (16,))
    # The mapped axis must not be the normalized one; -1 maps over axis 2 of a moved array.
    in_axis = axis if axis != -1 else 2
    got = jax.vmap(xj.rms_norm, in_axes=(in_axis, None))(jnp.asarray(x), jnp.asarray(w))
    want = np.moveaxis(rms_norm_reference(x, w)["y"], in_axis, 0)
    assert_close(to_numpy(got), want, "float32")


def test_vmap_of_grad_and_batched_weights(rng):
    x, dy = random_inputs(rng, (3, 4, 32)), random_inputs(rng, (3, 4, 32))
    w, wb = random_inputs(rng, (32,)), random_inputs(rng, (3, 32))
    loss = lambda a, b, g: jnp.sum(xj.rms_norm(a, b) * g)  # noqa: E731
    for weights, w_axis in ((w, None), (wb, 0)):
        gx, gw = jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(0, w_axis, 0))(
            jnp.asarray(x), jnp.asarray(weights), jnp.asarray(dy))
        for i in range(3):
            wi = weights if w_axis is None else weights[i]
            ref = rms_norm_reference(x[i], wi, dy=dy[i])
            assert_close(to_numpy(gx[i]), ref["dx"], "float32", "dx")
            assert_close(to_numpy(gw[i]), ref["dw"], "float32", "dweight")
    nested = jax.vmap(jax.vmap(xj.rms_norm, in_axes=(0, None)), in_axes=(0, None))(
        jnp.asarray(x), jnp.asarray(w))
    assert_close(to_numpy(nested), rms_norm_reference(x, w)["y"], "float32")


def test_policy_is_part_of_the_traced_program(rng):
    x, w = jnp.asarray(random_inputs(rng, (4, 8))), jnp.asarray(random_inputs(rng, (8,)))
    text = jax.jit(lambda a, b: xj.rms_norm(a, b, policy="reference")).lower(x, w).compile().as_text()
    assert "xpuruntime_rms_norm_fwd" in text and "reference" in text
    # The scope is read when the function is traced: a fresh function is traced here
    # (an already-traced jitted function keeps the policy it was traced with).
    with xpuruntime.policy("deterministic"):
        text = jax.jit(lambda a, b: xj.rms_norm(a, b)).lower(x, w).compile().as_text()
    assert "deterministic" in text


def test_trace_time_errors(rng):
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


def test_runtime_error_becomes_ffi_error(rng):
    # Bypass the trace-time checks: the kernel's own validation reports through XLA.
    x = jnp.asarray(random_inputs(rng, (4, 8)))
    out = [jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((4,), jnp.float32)]
    call = jax.ffi.ffi_call("xpuruntime_rms_norm_fwd", out)
    with pytest.raises(Exception, match=r"rms_norm: 'weight' must have shape \[8\], got \[3\]"):
        jax.block_until_ready(call(x, x[0, :3], eps=np.float32(1e-6), policy="fast"))
    with pytest.raises(Exception, match="unknown policy 'nope'"):
        jax.block_until_ready(call(x, x[0], eps=np.float32(1e-6), policy="nope"))
