"""layer_norm, softmax, swiglu and geglu through JAX: jit, grad (backward
kernels) against float64 torch autodiff, vmap, policies, trace-time errors."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("torch")
import jax.numpy as jnp  # noqa: E402

import xpuruntime.jax as xj  # noqa: E402
from conftest import (DTYPES, JAX_PLATFORMS, assert_close, random_inputs, to_numpy,  # noqa: E402
                      torch_f64_vjp, torch_reference_ops)

OPS = {  # op -> (xpuruntime.jax function, number of [..., N] inputs, number of [N] params)
    "layer_norm": (lambda x, w, b, **k: xj.layer_norm(x, w, b, **k), 1, 2),
    "softmax": (lambda x, **k: xj.softmax(x, **k), 1, 0),
    "swiglu": (lambda g, u, **k: xj.swiglu(g, u, **k), 2, 0),
    "geglu": (lambda g, u, **k: xj.geglu(g, u, **k), 2, 0),
}


def make_inputs(rng, op, shape, dtype):
    _, n_full, n_param = OPS[op]
    return ([random_inputs(rng, shape, dtype) for _ in range(n_full)]
            + [random_inputs(rng, shape[-1:], dtype) for _ in range(n_param)])


def put(a, dtype, platform):
    return jax.device_put(jnp.asarray(a, dtype=dtype), jax.devices(platform)[0])


@pytest.mark.parametrize("platform", JAX_PLATFORMS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 7), (5, 4097), (2, 3, 64)])
@pytest.mark.parametrize("op", list(OPS))
def test_jit_and_grad(rng, platform, dtype, shape, op):
    fn = OPS[op][0]
    inputs = make_inputs(rng, op, shape, dtype)
    dy = random_inputs(rng, shape, dtype)
    args = [put(a, dtype, platform) for a in inputs]
    dys = put(dy, dtype, platform)
    y = jax.jit(fn)(*args)
    ref_y, ref_g = torch_f64_vjp(torch_reference_ops()[op], inputs, dy)
    assert y.dtype == jnp.dtype(dtype)
    assert_close(to_numpy(y), ref_y, dtype)
    loss = lambda *a: jnp.sum(fn(*a).astype(jnp.float32) * dys.astype(jnp.float32))  # noqa: E731
    grads = jax.jit(jax.grad(loss, argnums=tuple(range(len(args)))))(*args)
    for i, (g, r) in enumerate(zip(grads, ref_g)):
        assert_close(to_numpy(g), r, dtype, f"grad {i}")


@pytest.mark.parametrize("op", list(OPS))
@pytest.mark.parametrize("in_axis", [0, 1])
def test_vmap_and_vmap_of_grad(rng, op, in_axis):
    fn, n_full, n_param = OPS[op]
    shape = (3, 4, 16)
    inputs = make_inputs(rng, op, shape, "float32")
    axes = (in_axis,) * n_full + (None,) * n_param
    got = jax.vmap(fn, in_axes=axes)(*map(jnp.asarray, inputs))
    ref = torch_reference_ops()[op]
    want = torch_f64_vjp(ref, inputs)[0]
    assert_close(to_numpy(got), np.moveaxis(want, in_axis, 0), "float32")
    dy = random_inputs(rng, shape, "float32")
    loss = lambda *a: jnp.sum(fn(*a[:-1]) * a[-1])  # noqa: E731
    grads = jax.vmap(jax.grad(loss, argnums=tuple(range(len(inputs)))), in_axes=axes + (in_axis,))(
        *map(jnp.asarray, inputs), jnp.asarray(dy))
    for i in range(shape[in_axis]):
        sl = [np.take(a, i, axis=in_axis) for a in inputs[:n_full]] + inputs[n_full:]
        _, ref_g = torch_f64_vjp(ref, sl, np.take(dy, i, axis=in_axis))
        for g, r in zip(grads, ref_g):
            assert_close(to_numpy(g[i]), r, "float32")


def test_layer_norm_batched_parameters(rng):
    x, dy = random_inputs(rng, (3, 4, 32)), random_inputs(rng, (3, 4, 32))
    w, b = random_inputs(rng, (3, 32)), random_inputs(rng, (3, 32))
    loss = lambda a, c, d, g: jnp.sum(xj.layer_norm(a, c, d) * g)  # noqa: E731
    grads = jax.vmap(jax.grad(loss, argnums=(0, 1, 2)))(*map(jnp.asarray, (x, w, b, dy)))
    ys = jax.vmap(xj.layer_norm)(*map(jnp.asarray, (x, w, b)))
    for i in range(3):
        ref_y, ref_g = torch_f64_vjp(torch_reference_ops()["layer_norm"], [x[i], w[i], b[i]], dy[i])
        assert_close(to_numpy(ys[i]), ref_y, "float32")
        for g, r in zip(grads, ref_g):
            assert_close(to_numpy(g[i]), r, "float32")


def test_softmax_scale_and_policies(rng):
    x = jnp.asarray(random_inputs(rng, (5, 300)))
    ref = torch_f64_vjp(lambda t: __import__("torch").softmax(0.25 * t, -1), [np.asarray(x)])[0]
    for policy in ("fast", "deterministic", "reference"):
        assert_close(to_numpy(xj.softmax(x, scale=0.25, policy=policy)), ref, "float32", policy)
    text = jax.jit(lambda a: xj.softmax(a, policy="deterministic")).lower(x).compile().as_text()
    assert "xpuruntime_softmax_fwd" in text and "deterministic" in text


def test_trace_time_errors(rng):
    x = jnp.asarray(random_inputs(rng, (4, 8)))
    with pytest.raises(ValueError, match=r"layer_norm: 'bias' must have shape \[8\], got \[7\]"):
        xj.layer_norm(x, x[0], x[0, :7])
    with pytest.raises(TypeError, match="swiglu: 'up' must be float32, got bfloat16"):
        xj.swiglu(x, x.astype(jnp.bfloat16))
    with pytest.raises(ValueError, match="geglu: 'up' must have the shape of 'gate'"):
        xj.geglu(x, x[:2])
    with pytest.raises(TypeError, match="softmax: 'x' must be float32, float16 or bfloat16, got int32"):
        xj.softmax(x.astype(jnp.int32))
