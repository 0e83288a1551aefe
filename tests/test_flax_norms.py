"""xpuruntime.flax: RMSNorm and LayerNorm of flax.linen and flax.nnx against flax's own
classes: the same parameter trees (names, shapes, dtypes, initial values), values and
gradients within OPS.md tolerances (16-bit cases against flax's float32 computation),
the xpuruntime kernel in the jaxpr, and flax's computation for what the kernel does not
cover."""

from __future__ import annotations

import pytest

jax = pytest.importorskip("jax")
flax = pytest.importorskip("flax")
import flax.linen as nn  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

import xpuruntime.flax as xf  # noqa: E402
from conftest import assert_close, to_numpy  # noqa: E402

N = 24
KINDS = {"RMSNorm": "xpuruntime_rms_norm_fwd", "LayerNorm": "xpuruntime_layer_norm_fwd"}
RANDOM = dict(scale_init=nn.initializers.normal(1.0))
# (constructor arguments, input dtype, tolerance dtype)
CASES = [
    ({}, jnp.float32, "float32"),
    (RANDOM, jnp.float32, "float32"),
    (dict(RANDOM, use_scale=False, epsilon=1e-3), jnp.float32, "float32"),
    (RANDOM, jnp.bfloat16, "bfloat16"),                                   # f32 params: f32 result
    (dict(RANDOM, dtype=jnp.bfloat16), jnp.bfloat16, "bfloat16"),         # mixed precision
    (dict(RANDOM, param_dtype=jnp.bfloat16), jnp.bfloat16, "bfloat16"),
    (dict(RANDOM, dtype=jnp.bfloat16), jnp.float32, "bfloat16"),
]
LAYER_NORM_EXTRA = [dict(bias_init=nn.initializers.normal(1.0)), dict(use_bias=False)]


def cases(kind):
    out = [(kw, dt, tol) for kw, dt, tol in CASES]
    if kind == "LayerNorm":
        out += [(dict(RANDOM, **extra), jnp.float32, "float32") for extra in LAYER_NORM_EXTRA]
    return [pytest.param(kind, *c, id=f"{kind}-{i}") for i, c in enumerate(out)]


ALL = cases("RMSNorm") + cases("LayerNorm")


def data(dtype, shape=(3, 5, N)):
    x = jax.random.normal(jax.random.key(7), shape, jnp.float32) * 2 + 0.5
    return x.astype(dtype)


def as_f32(tree):
    return jax.tree.map(lambda a: a.astype(jnp.float32), tree)


def f32_twin(kw):
    """The same layer in float32 throughout: the reference of 16-bit cases."""
    return dict(kw, dtype=jnp.float32, param_dtype=jnp.float32)


def jaxpr_text(fn, *args):
    return str(jax.make_jaxpr(fn)(*args))


def compare_with_flax(ours_fn, flax_fn, ref_fn, params, x, tol):
    """ours vs flax's output dtype, and vs the reference in value and gradient."""
    y, y_flax, y_ref = ours_fn(params, x), flax_fn(params, x), ref_fn(as_f32(params), x.astype(jnp.float32))
    assert y.dtype == y_flax.dtype and y.shape == y_flax.shape
    assert_close(to_numpy(y), to_numpy(y_ref), tol, "value")
    dy = jax.random.normal(jax.random.key(3), y.shape, jnp.float32)
    loss = lambda fn: lambda p, x: jnp.sum(fn(p, x).astype(jnp.float32) * dy)  # noqa: E731
    g = jax.jit(jax.grad(loss(ours_fn), argnums=(0, 1)))(params, x)
    g_ref = jax.grad(loss(ref_fn), argnums=(0, 1))(as_f32(params), x.astype(jnp.float32))
    for got, want in zip(jax.tree.leaves(g), jax.tree.leaves(g_ref)):
        assert_close(to_numpy(got), to_numpy(want), tol, "gradient")


@pytest.mark.parametrize("kind,kw,dtype,tol", ALL)
def test_linen_matches_flax(kind, kw, dtype, tol):
    ours, theirs = getattr(xf.linen, kind)(**kw), getattr(nn, kind)(**kw)
    x = data(dtype)
    params = theirs.init(jax.random.key(1), x)
    mine = ours.init(jax.random.key(1), x)
    # Same tree, shapes, dtypes and initial values: a flax checkpoint loads unchanged.
    assert jax.tree.structure(mine) == jax.tree.structure(params)
    for a, b in zip(jax.tree.leaves(mine), jax.tree.leaves(params)):
        assert a.dtype == b.dtype and a.shape == b.shape and bool(jnp.all(a == b))
    ref = getattr(nn, kind)(**f32_twin(kw))
    compare_with_flax(ours.apply, theirs.apply, ref.apply, params, x, tol)
    assert KINDS[kind] in jaxpr_text(ours.apply, params, x)


@pytest.mark.parametrize("kind,kw,dtype,tol", ALL)
def test_nnx_matches_flax(kind, kw, dtype, tol):
    ours = getattr(xf.nnx, kind)(N, rngs=nnx.Rngs(1), **kw)
    theirs = getattr(nnx, kind)(N, rngs=nnx.Rngs(1), **kw)
    state, flax_state = nnx.state(ours), nnx.state(theirs)
    assert jax.tree.structure(state) == jax.tree.structure(flax_state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(flax_state)):
        assert a.dtype == b.dtype and bool(jnp.all(a == b))
    graphdef, _ = nnx.split(ours)
    flax_graphdef, _ = nnx.split(theirs)
    ref_graphdef, _ = nnx.split(getattr(nnx, kind)(N, rngs=nnx.Rngs(1), **f32_twin(kw)))

    def run(gd):
        return lambda s, x: nnx.merge(gd, s)(x)

    x = data(dtype)
    compare_with_flax(run(graphdef), run(flax_graphdef), run(ref_graphdef), flax_state, x, tol)
    assert KINDS[kind] in jaxpr_text(run(graphdef), flax_state, x)


class Block(nn.Module):
    """A model that takes its norm class as a field, as flax models do."""
    norm: type = nn.RMSNorm

    @nn.compact
    def __call__(self, x):
        h = self.norm()(x)
        h = nn.Dense(N)(h)
        return self.norm()(x + h)


@pytest.mark.parametrize("kind", list(KINDS))
def test_swapping_the_norm_class_keeps_the_checkpoint(kind):
    x = data(jnp.float32)
    theirs, ours = Block(norm=getattr(nn, kind)), Block(norm=getattr(xf.linen, kind))
    params = theirs.init(jax.random.key(0), x)
    assert jax.tree.structure(ours.init(jax.random.key(0), x)) == jax.tree.structure(params)
    assert f"{kind}_0" in params["params"] and f"{kind}_1" in params["params"]
    assert_close(to_numpy(ours.apply(params, x)), to_numpy(theirs.apply(params, x)), "float32")


@pytest.mark.parametrize("kind", list(KINDS))
def test_unsupported_arguments_fall_back_to_flax(kind):
    x = data(jnp.float32)
    for kw in (dict(reduction_axes=(-2, -1)), dict(feature_axes=-2, reduction_axes=-1)):
        theirs, ours = getattr(nn, kind)(**kw), getattr(xf.linen, kind)(**kw)
        params = theirs.init(jax.random.key(1), x)
        with pytest.warns(UserWarning, match="not supported by the xpuruntime kernel"):
            y = ours.apply(params, x)
        assert_close(to_numpy(y), to_numpy(theirs.apply(params, x)), "float32")
    mask = jnp.arange(N) < N - 3
    layer, flax_layer = getattr(xf.nnx, kind)(N, rngs=nnx.Rngs(0)), getattr(nnx, kind)(N, rngs=nnx.Rngs(0))
    with pytest.warns(UserWarning, match="mask"):
        y = layer(x, mask=mask)
    assert_close(to_numpy(y), to_numpy(flax_layer(x, mask=mask)), "float32")


def test_package_names():
    assert xf.RMSNorm is xf.linen.RMSNorm and xf.LayerNorm is xf.linen.LayerNorm
    assert issubclass(xf.nnx.RMSNorm, nnx.RMSNorm) and issubclass(xf.linen.LayerNorm, nn.LayerNorm)
    assert xf.linen.RMSNorm.__name__ == "RMSNorm"  # linen names submodules by class name
