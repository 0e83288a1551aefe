"""fused_linear_cross_entropy (JAX): loss and gradients of hidden, weight and bias against
float64 autodiff of the unfused ``cross_entropy(hidden @ weight.T + bias)`` (through
torch), in float32 and bfloat16, under jit; no array of the traced computation is as
large as the ``[T, V]`` logits."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
import jax.numpy as jnp  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import xpuruntime.jax as xj  # noqa: E402
from conftest import assert_close  # noqa: E402
from helpers import fused_linear_ce_bad_calls  # noqa: E402

T, H, V = 45, 24, 97
JDT = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def case(dtype, t=T, seed=0):
    rng = np.random.default_rng(seed)
    make = lambda *s: jnp.asarray(rng.standard_normal(s) * 0.5, jnp.float32).astype(JDT[dtype])  # noqa: E731
    labels = rng.integers(0, V, t)
    labels[::5] = -100
    return make(t, H), make(V, H), make(V), jnp.asarray(labels, jnp.int32)


def reference(hidden, weight, bias, labels, dloss, **kw):
    """float64 loss and gradients of sum(loss * dloss) for (hidden, weight, bias)."""
    leaves = [None if a is None else torch.tensor(np.asarray(a.astype(jnp.float32)), dtype=torch.float64,
                                                  requires_grad=True) for a in (hidden, weight, bias)]
    h, w, b = leaves
    logits = h @ w.t() + (0 if b is None else b)
    loss = F.cross_entropy(logits, torch.tensor(np.asarray(labels), dtype=torch.long), **kw)
    (loss * torch.tensor(np.asarray(dloss), dtype=torch.float64)).sum().backward()
    return loss.detach().numpy(), [None if t is None else t.grad.numpy() for t in leaves]


def f64(a):
    return np.asarray(a.astype(jnp.float32), dtype=np.float64)


@pytest.mark.parametrize("dtype", list(JDT))
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("bias,chunk_size", [(False, 1), (True, 8), (True, None), (False, 1000)])
def test_matches_unfused(dtype, reduction, bias, chunk_size):
    hidden, weight, b, labels = case(dtype)
    b = b if bias else None
    kw = dict(ignore_index=-100, label_smoothing=0.1, reduction=reduction)
    dloss = jnp.asarray(np.random.default_rng(1).standard_normal(T if reduction == "none" else ()) + 1.5,
                        jnp.float32)

    def loss_fn(h, w, bb):
        return xj.fused_linear_cross_entropy(h, w, labels, bias=bb, chunk_size=chunk_size, **kw)

    loss = jax.jit(loss_fn)(hidden, weight, b)
    grads = jax.jit(jax.grad(lambda *a: jnp.sum(loss_fn(*a) * dloss), argnums=(0, 1, 2)))(hidden, weight, b)
    ref, ref_grads = reference(hidden, weight, b, labels, dloss, **kw)
    assert loss.dtype == jnp.float32 and loss.shape == ref.shape
    assert_close(f64(loss), ref, dtype, "loss")
    for name, got, want, arg in zip(("hidden", "weight", "bias"), grads, ref_grads, (hidden, weight, b)):
        if arg is not None:
            assert got.dtype == arg.dtype
            assert_close(f64(got), want, dtype, f"grad {name}")


def _shapes(jaxpr):
    """Every array shape a (closed) jaxpr and its sub-jaxprs (scan bodies) produce."""
    out = []
    for eqn in jaxpr.eqns:
        out += [tuple(v.aval.shape) for v in eqn.outvars if hasattr(v.aval, "shape")]
        for p in eqn.params.values():
            for sub in (p if isinstance(p, (list, tuple)) else [p]):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    out += _shapes(inner)
    return out


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_logits_never_materialised(reduction):
    t = 256
    hidden, weight, b, labels = case("float32", t=t)
    fn = lambda h, w: jnp.sum(xj.fused_linear_cross_entropy(h, w, labels, reduction=reduction,  # noqa: E731
                                                             chunk_size=32))
    shapes = _shapes(jax.make_jaxpr(jax.grad(fn, argnums=(0, 1)))(hidden, weight).jaxpr)
    vocab_shaped = [s for s in shapes if V in s]
    assert vocab_shaped and all(int(np.prod(s)) <= 32 * V or s == (V, H) for s in vocab_shaped), \
        sorted(set(vocab_shaped))


def test_leading_axes_and_no_counted_rows():
    hidden, weight, b, labels = case("float32", t=24)
    h3, lab3 = hidden.reshape(4, 6, H), labels.reshape(4, 6)
    loss = xj.fused_linear_cross_entropy(h3, weight, lab3, reduction="none", chunk_size=5)
    ref, _ = reference(hidden, weight, None, labels, np.ones(24), reduction="none")
    assert loss.shape == (4, 6)
    assert_close(f64(loss.reshape(-1)), ref, "float32")
    ignored = jnp.full_like(labels, -100)
    fn = lambda h, w: xj.fused_linear_cross_entropy(h, w, ignored, chunk_size=4)  # noqa: E731
    assert bool(jnp.isnan(fn(hidden, weight)))
    gh, gw = jax.grad(fn, argnums=(0, 1))(hidden, weight)
    assert float(jnp.abs(gh).max()) == 0 and float(jnp.abs(gw).max()) == 0


def test_bad_arguments():
    hidden, weight, b, labels = case("float32")
    f = xj.fused_linear_cross_entropy
    for args, kwargs, match in fused_linear_ce_bad_calls(hidden, weight, b, labels):
        with pytest.raises(ValueError, match=match):
            f(*args, **kwargs)
    with pytest.raises(TypeError, match="'weight' must be float32"):
        f(hidden, weight.astype(jnp.bfloat16), labels)
    with pytest.raises(TypeError, match="'labels' must be int32 or int64"):
        f(hidden, weight, labels.astype(jnp.float32))
