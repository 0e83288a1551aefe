"""rms_norm's autodiff and batching glue. With a residual the forward returns
``(y, h)`` with ``h = x + residual``; the backward reads ``h`` where the generic
custom_vjp would pass ``x``, and ``x`` and ``residual`` get the same gradient
(without a residual the generic one serves). No statistics are saved: the backward
recomputes rstd from its inputs, so under jit a forward whose outputs are all dead
(gradients only) is dropped. Under vmap, the weight gradient of each example comes
from jnp while the kernel runs once over all rows."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .._spec import BACKWARD, FORWARD
from ._batching import sum_per_example
from ._call import call
from ._vjp import differentiable as generic

OP = "rms_norm"


def differentiable():
    """``fn(attrs, present, x, weight, residual) -> y or (y, h)`` under custom_vjp."""
    plain = generic(OP)

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def with_residual(attrs, x, weight, residual):
        y, h = call(OP, FORWARD, dict(attrs), x, weight, residual)
        return y, h

    def fwd(attrs, x, weight, residual):
        y, h = call(OP, FORWARD, dict(attrs), x, weight, residual)
        return (y, h), (h, weight)

    def bwd(attrs, saved, cotangents):
        h, weight = saved
        dy, dh = cotangents
        dx, dweight = call(OP, BACKWARD, dict(attrs), dy, h, weight, dh)
        return dx, dweight, dx

    with_residual.defvjp(fwd, bwd)

    def apply(attrs, present, x, weight, residual):
        if residual is None:
            return plain(attrs, present, x, weight, None)
        return with_residual(attrs, x, weight, residual)

    return apply


def _dweight(a, attrs):
    """sum_rows dy * x * rstd per example, rstd = rsqrt(mean(x^2) + eps) recomputed in f32
    as the kernel does."""
    x = a["x"].astype(jnp.float32)
    rstd = jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + attrs["eps"])
    return sum_per_example(a["dy"].astype(jnp.float32) * x * rstd).astype(a["weight"].dtype)


# Batching glue: the weight gradient of each example of a vmapped backward (the
# kernel's dweight sums over every row).
PER_EXAMPLE = {"dweight": _dweight}
