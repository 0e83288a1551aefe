"""cross_entropy's autodiff glue: the kernels compute per-row losses (reduction
"none") and the reduction runs in jnp, so that vmap reduces per example and XLA
reduces across devices when the rows are sharded. The mean is over counted rows
(labels other than ignore_index); none counted gives NaN (0/0), as torch does."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from .._spec import BACKWARD, FORWARD
from ._call import call
from ._vjp import zero_cotangent

OP = "cross_entropy"


def fits_labels(labels, ignore_index: int) -> bool:
    """Whether ``ignore_index`` (any Python int) is a value of the labels' dtype; one
    outside it matches no label."""
    info = jnp.iinfo(labels.dtype)
    return info.min <= ignore_index <= info.max


def counted(labels, ignore_index: int):
    """The number of rows whose label is not ``ignore_index``, as an f32 scalar."""
    if not fits_labels(labels, ignore_index):
        return jnp.sum(jnp.ones(labels.shape, jnp.float32))
    return jnp.sum(labels != jnp.asarray(ignore_index, labels.dtype)).astype(jnp.float32)


def differentiable():
    """``fn(attrs, present, logits, labels) -> loss`` under custom_vjp."""

    def per_row(attrs):
        return {**dict(attrs), "reduction": "none"}

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def loss_of(attrs, logits, labels):
        return fwd(attrs, logits, labels)[0]

    def fwd(attrs, logits, labels):
        a = dict(attrs)
        rows, lse = call(OP, FORWARD, per_row(attrs), logits, labels)
        if a["reduction"] == "none":
            loss = rows
        elif a["reduction"] == "sum":
            loss = jnp.sum(rows)
        else:
            loss = jnp.sum(rows) / counted(labels, a["ignore_index"])
        return loss, (logits, labels, lse)

    def bwd(attrs, saved, dloss):
        a = dict(attrs)
        logits, labels, lse = saved
        dloss = dloss.astype(jnp.float32)
        if a["reduction"] == "mean":
            dloss = dloss / counted(labels, a["ignore_index"])
        drows = jnp.broadcast_to(dloss, labels.shape)
        (dlogits,) = call(OP, BACKWARD, per_row(attrs), drows, logits, labels, lse)
        return dlogits, zero_cotangent(labels)

    loss_of.defvjp(fwd, bwd)
    return lambda attrs, present, logits, labels: loss_of(attrs, logits, labels)
