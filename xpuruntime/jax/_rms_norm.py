"""rms_norm's autodiff glue: with a residual, the forward returns ``(y, h)`` with
``h = x + residual``; the backward reads ``h`` where the generic glue would pass
``x``, and ``x`` and ``residual`` get the same gradient. Without a residual the
generic custom_vjp serves."""

from __future__ import annotations

import functools

import jax

from .._spec import BACKWARD, FORWARD
from ._call import call
from ._vjp import differentiable as generic

OP = "rms_norm"


def differentiable():
    """``fn(attrs, present, x, weight, residual) -> y or (y, h)`` under custom_vjp."""
    plain = generic(OP)

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def with_residual(attrs, x, weight, residual):
        y, h, _ = call(OP, FORWARD, dict(attrs), x, weight, residual)
        return y, h

    def fwd(attrs, x, weight, residual):
        y, h, rstd = call(OP, FORWARD, dict(attrs), x, weight, residual)
        return (y, h), (h, weight, rstd)

    def bwd(attrs, saved, cotangents):
        h, weight, rstd = saved
        dy, dh = cotangents
        dx, dweight = call(OP, BACKWARD, dict(attrs), dy, h, weight, rstd, dh)
        return dx, dweight, dx

    with_residual.defvjp(fwd, bwd)

    def apply(attrs, present, x, weight, residual):
        if residual is None:
            return plain(attrs, present, x, weight, None)
        return with_residual(attrs, x, weight, residual)

    return apply
