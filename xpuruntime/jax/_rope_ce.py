"""rope and cross_entropy for JAX: FFI calls under custom_vjp, with batching
rules that fold vmapped axes into the kernels' leading axes and sharding rules
that keep rows (tokens, batch) sharded."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from .. import _spec
from .._policy import resolve_policy
from ._common import batch_front, check_float, out_like
from ._sharding import row_partitioned

# ---- rope -------------------------------------------------------------------------------------


def _rope_jnp(x, cos, sin, interleaved: bool, inverse: bool):
    """The rotation in jnp (used only for per-example cos/sin under vmap)."""
    c = cos.astype(jnp.float32)[:, None, :]
    s = sin.astype(jnp.float32)[:, None, :] * (-1.0 if inverse else 1.0)
    xf = x.astype(jnp.float32)
    if interleaved:
        x1, x2 = xf[..., 0::2], xf[..., 1::2]
        y = jnp.stack([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1).reshape(xf.shape)
    else:
        h = xf.shape[-1] // 2
        x1, x2 = xf[..., :h], xf[..., h:]
        y = jnp.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)
    return y.astype(x.dtype)


@functools.lru_cache(maxsize=None)
def _rope_call(direction: str, interleaved: bool, policy: str):
    """x[B, S, H, D], cos/sin[S, D/2] -> rotated x (backward: by the negative angle)."""

    def ffi(x, cos, sin):
        return (jax.ffi.ffi_call(f"xpuruntime_rope_{direction}", out_like(x))(
            x, cos, sin, interleaved=interleaved, policy=policy),)

    # Sharding along B or H stays; S indexes the whole cos/sin tables, so it is gathered.
    call = row_partitioned(ffi, "rope", ("row", "other:p q", "other:p q"), ("row",),
                           whole_lead_axes=(1,))

    @custom_vmap
    def batched(x, cos, sin):
        return call(x, cos, sin)[0]

    @batched.def_vmap
    def rule(size, in_batched, x, cos, sin):
        x = batch_front(x, in_batched[0], size)
        if in_batched[1] or in_batched[2]:
            cos, sin = batch_front(cos, in_batched[1], size), batch_front(sin, in_batched[2], size)
            y = jax.vmap(functools.partial(_rope_jnp, interleaved=interleaved,
                                           inverse=direction == "bwd"))(x, cos, sin)
            return y, True
        # Extra batch axes fold into B: cos/sin broadcast over it anyway.
        y = batched(x.reshape((-1,) + x.shape[-3:]), cos, sin)
        return y.reshape(x.shape), True

    return batched


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _rope(x, cos, sin, interleaved, policy):
    return _rope_call("fwd", interleaved, policy)(x, cos, sin)


def _rope_fwd(x, cos, sin, interleaved, policy):
    return _rope(x, cos, sin, interleaved, policy), (cos, sin)


def _rope_bwd(interleaved, policy, saved, dy):
    cos, sin = saved
    # OPS.md: gradient for x only; cos and sin are treated as constants.
    return _rope_call("bwd", interleaved, policy)(dy, cos, sin), jnp.zeros_like(cos), jnp.zeros_like(sin)


_rope.defvjp(_rope_fwd, _rope_bwd)


def rope(x, cos, sin, *, interleaved: bool = False, policy: str | None = None):
    """Rotary position embedding, as an XLA FFI call.

    Args:
      x: ``[B, S, H, D]`` float32, float16 or bfloat16; D even.
      cos, sin: ``[S, D/2]``, float32 or x's dtype; broadcast over B and H.
      interleaved: False rotates halves (NeoX/Llama); True rotates pairs (GPT-J).
      policy: kernel policy; default: the policy in effect at trace time.

    Returns:
      ``y``, x's shape and dtype. Differentiable in x (cos and sin get zero gradients).
    """
    x, cos, sin = jnp.asarray(x), jnp.asarray(cos), jnp.asarray(sin)
    check_float("rope", "x", x)
    if x.ndim != 4:
        raise ValueError(f"rope: 'x' must be 4-d [B, S, H, D], got shape {list(x.shape)}")
    if x.shape[-1] % 2:
        raise ValueError(f"rope: the head dimension D must be even, got {x.shape[-1]}")
    want = [x.shape[1], x.shape[3] // 2]
    for name, t in (("cos", cos), ("sin", sin)):
        if list(t.shape) != want:
            raise ValueError(f"rope: '{name}' must have shape {want}, got {list(t.shape)}")
        if t.dtype not in (jnp.float32, x.dtype):
            raise TypeError(f"rope: '{name}' must be float32 or {x.dtype}, got {t.dtype}")
    return _rope(x, cos, sin, bool(interleaved), resolve_policy(policy))


# ---- cross_entropy ------------------------------------------------------------------------------

REDUCTIONS = ("mean", "sum", "none")


@functools.lru_cache(maxsize=None)
def _ce_rows(ignore_index: int, ls: float, policy: str):
    """(logits[..., V], labels[...]) -> (per-row loss, lse), both f32 labels' shape.

    Reductions happen in jnp on these per-row values, so vmap reduces per example
    and XLA reduces across devices when the rows are sharded.
    """

    def ffi(logits, labels):
        ws = _spec.workspace_bytes(_spec.get("cross_entropy"), [logits.shape, labels.shape],
                                   {"reduction": "none"})
        outs = (jax.ShapeDtypeStruct(labels.shape, jnp.float32),
                jax.ShapeDtypeStruct(labels.shape, jnp.float32), jax.ShapeDtypeStruct((ws,), jnp.uint8))
        loss, lse, _ = jax.ffi.ffi_call("xpuruntime_cross_entropy_fwd", outs)(
            logits, labels, ignore_index=np.int64(ignore_index), label_smoothing=np.float32(ls),
            reduction="none", policy=policy)
        return loss, lse

    call = row_partitioned(ffi, "cross_entropy", ("row", "lead"), ("lead", "lead"))

    @custom_vmap
    def batched(logits, labels):
        return call(logits, labels)

    @batched.def_vmap
    def rule(size, in_batched, logits, labels):
        return batched(batch_front(logits, in_batched[0], size),
                       batch_front(labels, in_batched[1], size)), (True, True)

    return batched


@functools.lru_cache(maxsize=None)
def _ce_rows_backward(ignore_index: int, ls: float, policy: str):
    """(per-row dloss, logits, labels, lse) -> dlogits."""

    def ffi(drows, logits, labels, lse):
        ws = _spec.workspace_bytes(_spec.get("cross_entropy", "backward"),
                                   [drows.shape, logits.shape, labels.shape, lse.shape],
                                   {"reduction": "none"})
        outs = (out_like(logits), jax.ShapeDtypeStruct((ws,), jnp.uint8))
        dlogits, _ = jax.ffi.ffi_call("xpuruntime_cross_entropy_bwd", outs)(
            drows, logits, labels, lse, ignore_index=np.int64(ignore_index),
            label_smoothing=np.float32(ls), reduction="none", policy=policy)
        return (dlogits,)

    call = row_partitioned(ffi, "cross_entropy", ("lead", "row", "lead", "lead"), ("row",))

    @custom_vmap
    def batched(drows, logits, labels, lse):
        return call(drows, logits, labels, lse)[0]

    @batched.def_vmap
    def rule(size, in_batched, *args):
        return batched(*(batch_front(a, b, size) for a, b in zip(args, in_batched))), True

    return batched


def _counted(labels, ignore_index):
    return jnp.sum(labels != ignore_index).astype(jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _cross_entropy(logits, labels, ignore_index, ls, reduction, policy):
    return _cross_entropy_fwd(logits, labels, ignore_index, ls, reduction, policy)[0]


def _cross_entropy_fwd(logits, labels, ignore_index, ls, reduction, policy):
    rows, lse = _ce_rows(ignore_index, ls, policy)(logits, labels)
    if reduction == "none":
        loss = rows
    elif reduction == "sum":
        loss = jnp.sum(rows)
    else:  # mean over counted rows; no counted row gives NaN (0/0), as torch does
        loss = jnp.sum(rows) / _counted(labels, ignore_index)
    return loss, (logits, labels, lse)


def _cross_entropy_bwd(ignore_index, ls, reduction, policy, saved, dloss):
    logits, labels, lse = saved
    dloss = dloss.astype(jnp.float32)
    if reduction == "none":
        drows = dloss
    elif reduction == "sum":
        drows = jnp.broadcast_to(dloss, labels.shape)
    else:
        drows = jnp.broadcast_to(dloss / _counted(labels, ignore_index), labels.shape)
    dlogits = _ce_rows_backward(ignore_index, ls, policy)(drows, logits, labels, lse)
    return dlogits, np.zeros(labels.shape, dtype=jax.dtypes.float0)  # labels: integer, no gradient


_cross_entropy.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)


def cross_entropy(logits, labels, *, ignore_index: int = -100, label_smoothing: float = 0.0,
                  reduction: str = "mean", policy: str | None = None):
    """Cross entropy of ``logits`` against integer ``labels``, as an XLA FFI call.

    Args:
      logits: ``[T, V]`` (or ``[..., V]``) float32, float16 or bfloat16.
      labels: ``[T]`` (logits' leading shape) int32 or int64; ``ignore_index`` rows count for nothing.
      label_smoothing: in [0, 1].
      reduction: ``"mean"`` over counted rows, ``"sum"``, or ``"none"``.

    Returns:
      f32 scalar (mean, sum) or f32 ``[T]`` (none). Differentiable in logits.
    """
    logits, labels = jnp.asarray(logits), jnp.asarray(labels)
    check_float("cross_entropy", "logits", logits)
    if labels.dtype not in (jnp.int32, jnp.int64):
        raise TypeError(f"cross_entropy: 'labels' must be int32 or int64, got {labels.dtype}")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(f"cross_entropy: 'labels' must have shape {list(logits.shape[:-1])}, "
                         f"got {list(labels.shape)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: unknown reduction '{reduction}'; expected mean, sum or none")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: 'label_smoothing' must be in [0, 1], got {label_smoothing}")
    return _cross_entropy(logits, labels, int(ignore_index), float(label_smoothing), reduction,
                          resolve_policy(policy))
