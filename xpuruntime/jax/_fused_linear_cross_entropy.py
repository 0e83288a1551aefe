"""Cross entropy of a vocabulary projection without the ``[T, V]`` logits, for JAX:
``cross_entropy(hidden @ weight.T + bias, labels)`` a chunk of tokens at a time under
``lax.scan``, each chunk's logits fed to xpuruntime's cross_entropy kernels and dropped.

A ``custom_vjp`` keeps the backward chunked too. For ``"mean"`` / ``"sum"`` the forward
that autodiff runs computes the gradients chunk by chunk (as the torch frontend and
Liger-Kernel do) and the backward only scales them by the incoming scalar; the plain
forward (no autodiff) computes the loss alone. ``"none"`` needs a gradient per row, so
its backward recomputes each chunk's logits. Parameter gradients are summed over
chunks in float32 (OPS.md) and returned in the parameter's dtype.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._fused_linear_ce import check_args, check_dtypes, default_chunk_size
from .._policy import requested_policy
from ._cross_entropy import counted, fits_labels



class _Options(NamedTuple):
    ignore_index: int
    label_smoothing: float
    reduction: str
    chunk: int
    policy: str
    dtypes: tuple  # of hidden, weight, bias (None without bias): the gradients' dtypes


def _logits(h, weight, bias):
    """One chunk's ``[C, V]`` logits in h's dtype, accumulated in float32."""
    out = jnp.dot(h, weight.T, preferred_element_type=jnp.float32)
    if bias is not None:
        out = out + bias.astype(jnp.float32)
    return out.astype(h.dtype)


def _chunked(hidden, labels, opts: _Options):
    """hidden ``[T, H]`` and labels ``[T]`` as ``[n, C, ...]`` chunks. Padded rows are
    dropped from the losses and get a zero gradient; their label is ``ignore_index``
    (or, where the labels' dtype cannot hold it, class 0), so the kernel reads them
    as valid rows."""
    tokens = hidden.shape[0]
    n = max(1, -(-tokens // opts.chunk))
    pad = n * opts.chunk - tokens
    h = jnp.pad(hidden, ((0, pad), (0, 0))).reshape(n, opts.chunk, hidden.shape[1])
    fill = opts.ignore_index if fits_labels(labels, opts.ignore_index) else 0
    lab = jnp.pad(labels, (0, pad), constant_values=fill).reshape(n, opts.chunk)
    return h, lab


def _row_losses(opts: _Options):
    """The public cross_entropy with reduction "none" (imported at call time: the
    package's public op, whichever module defines it)."""
    from . import cross_entropy
    return functools.partial(cross_entropy, ignore_index=opts.ignore_index,
                             label_smoothing=opts.label_smoothing, reduction="none",
                             policy=opts.policy)


def _reduce(rows, labels, opts: _Options):
    if opts.reduction == "none":
        return rows
    total = jnp.sum(rows)
    if opts.reduction == "sum":
        return total
    return total / counted(labels, opts.ignore_index)  # 0/0: NaN, as torch


def _loss_and_grads(hidden, weight, bias, labels, drows, opts: _Options, with_grads: bool):
    """Per-row losses ``[T]`` and, with ``with_grads``, the gradients of
    ``sum(rows * drows)`` (drows: ``[T]`` f32) for hidden, weight and bias, chunk by chunk."""
    tokens = hidden.shape[0]
    h, lab = _chunked(hidden, labels, opts)
    ce = _row_losses(opts)

    if not with_grads:
        def loss_only(_, xs):
            hc, lc = xs
            return None, ce(_logits(hc, weight, bias), lc)
        _, rows = jax.lax.scan(loss_only, None, (h, lab))
        return rows.reshape(-1)[:tokens], None

    d = jnp.pad(drows, (0, h.shape[0] * opts.chunk - tokens)).reshape(lab.shape)

    def step(acc, xs):
        dw, db = acc
        hc, lc, dc = xs
        rows, vjp = jax.vjp(lambda lg: ce(lg, lc), _logits(hc, weight, bias))
        (dlogits,) = vjp(dc)
        dh = jnp.dot(dlogits, weight, preferred_element_type=jnp.float32).astype(hidden.dtype)
        dw = dw + jnp.dot(dlogits.T, hc, preferred_element_type=jnp.float32)
        if db is not None:
            db = db + jnp.sum(dlogits.astype(jnp.float32), axis=0)
        return (dw, db), (rows, dh)

    init = (jnp.zeros(weight.shape, jnp.float32),
            None if bias is None else jnp.zeros(bias.shape, jnp.float32))
    (dw, db), (rows, dh) = jax.lax.scan(step, init, (h, lab, d))
    return rows.reshape(-1)[:tokens], (dh.reshape(-1, hidden.shape[1])[:tokens], dw, db)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _flce(hidden, weight, bias, labels, opts: _Options):
    rows, _ = _loss_and_grads(hidden, weight, bias, labels, None, opts, with_grads=False)
    return _reduce(rows, labels, opts)


def _flce_fwd(hidden, weight, bias, labels, opts: _Options):
    if opts.reduction == "none":  # gradients need the incoming per-row cotangent
        rows, _ = _loss_and_grads(hidden, weight, bias, labels, None, opts, with_grads=False)
        return rows, (hidden, weight, bias, labels)
    if opts.reduction == "mean":
        count = counted(labels, opts.ignore_index)
        scale = jnp.where(count > 0, 1.0 / jnp.maximum(count, 1.0), 0.0)
    else:
        scale = jnp.float32(1.0)
    drows = jnp.broadcast_to(scale, labels.shape).astype(jnp.float32)
    rows, grads = _loss_and_grads(hidden, weight, bias, labels, drows, opts, with_grads=True)
    return _reduce(rows, labels, opts), (grads, labels)


def _flce_bwd(opts: _Options, saved, g):
    if opts.reduction == "none":
        hidden, weight, bias, labels = saved
        _, grads = _loss_and_grads(hidden, weight, bias, labels, g.astype(jnp.float32), opts,
                                   with_grads=True)
        scale = None
    else:
        grads, labels = saved
        scale = g.astype(jnp.float32)

    def finish(t, dtype):
        if t is None:
            return None
        return (t if scale is None else t.astype(jnp.float32) * scale).astype(dtype)

    return (*(finish(t, dt) for t, dt in zip(grads, opts.dtypes)),
            np.zeros(labels.shape, dtype=jax.dtypes.float0))


_flce.defvjp(_flce_fwd, _flce_bwd)


def fused_linear_cross_entropy(hidden, weight, labels, *, bias=None, ignore_index: int = -100,
                               label_smoothing: float = 0.0, reduction: str = "mean",
                               chunk_size: int | None = None, policy: str | None = None):
    """``cross_entropy(hidden @ weight.T + bias, labels)`` without materialising the logits.

    The vocabulary projection runs ``chunk_size`` tokens at a time (``lax.scan``) and
    each chunk's ``[chunk, V]`` logits go through xpuruntime's cross_entropy kernels,
    forward and backward: memory is O(chunk * V), not O(T * V). Same numbers as the
    unfused ``cross_entropy(hidden @ weight.T + bias, labels)`` within OPS.md tolerances.
    Usable under ``jit`` and ``grad``.

    Args:
      hidden: ``[T, H]`` (or ``[..., H]``) float32, float16 or bfloat16.
      weight: ``[V, H]``, hidden's dtype (the LM head's weight).
      labels: ``[T]`` (hidden's leading shape), int32 or int64; ``ignore_index`` rows
        count for nothing.
      bias: optional ``[V]``, hidden's dtype.
      ignore_index, label_smoothing, reduction: as ``cross_entropy``.
      chunk_size: tokens a chunk (default: logits of a chunk about the size of ``hidden``).
      policy: kernel policy of the cross_entropy kernels (default: the policy at trace time).

    Returns:
      f32 scalar (mean, sum) or f32 of labels' shape (none). Differentiable in hidden,
      weight and bias; parameter gradients are summed over chunks in float32.
    """
    hidden, weight, labels = jnp.asarray(hidden), jnp.asarray(weight), jnp.asarray(labels)
    bias = None if bias is None else jnp.asarray(bias)
    check_dtypes(*(None if a is None else str(jnp.dtype(a.dtype)) for a in (hidden, weight, labels, bias)))
    check_args(hidden.shape, weight.shape, labels.shape, None if bias is None else bias.shape,
               reduction, label_smoothing, chunk_size)
    h2, lab = hidden.reshape(-1, hidden.shape[-1]), labels.reshape(-1)
    chunk = chunk_size or default_chunk_size(h2.shape[0], h2.shape[1], weight.shape[0])
    opts = _Options(int(ignore_index), float(label_smoothing), reduction,
                    max(1, min(chunk, h2.shape[0])), requested_policy() if policy is None else policy,
                    (hidden.dtype, weight.dtype, None if bias is None else bias.dtype))
    loss = _flce(h2, weight, bias, lab, opts)
    return loss.reshape(labels.shape) if reduction == "none" else loss
