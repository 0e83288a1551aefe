"""rope and cross_entropy for JAX: FFI calls under custom_vjp, with batching
rules that fold vmapped axes into the kernels' leading axes."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from .._native import core
from .._policy import resolve_policy
from ._common import batch_front, check_float, out_like

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

    @custom_vmap
    def batched(x, cos, sin):
        return jax.ffi.ffi_call(f"xpuruntime_rope_{direction}", out_like(x))(
            x, cos, sin, interleaved=interleaved, policy=policy)

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
def _ce_forward_call(ignore_index: int, ls: float, reduction: str, policy: str):
    """(logits[..., V], labels[...]) -> (loss, lse[...])."""

    def call(logits, labels):
        rows = labels.size
        loss_shape = labels.shape if reduction == "none" else ()
        ws = core.cross_entropy_forward_workspace_bytes(rows, reduction)
        outs = (jax.ShapeDtypeStruct(loss_shape, jnp.float32),
                jax.ShapeDtypeStruct(labels.shape, jnp.float32), jax.ShapeDtypeStruct((ws,), jnp.uint8))
        loss, lse, _ = jax.ffi.ffi_call("xpuruntime_cross_entropy_fwd", outs)(
            logits, labels, ignore_index=np.int64(ignore_index), label_smoothing=np.float32(ls),
            reduction=reduction, policy=policy)
        return loss, lse

    @custom_vmap
    def batched(logits, labels):
        return call(logits, labels)

    @batched.def_vmap
    def rule(size, in_batched, logits, labels):
        logits, labels = batch_front(logits, in_batched[0], size), batch_front(labels, in_batched[1], size)
        # One kernel over every example's rows; the reduction is then per example.
        loss, lse = _ce_forward_call(ignore_index, ls, "none", policy)(logits, labels)
        return (_reduce_per_example(loss, labels, ignore_index, reduction), lse), (True, True)

    return batched


def _reduce_per_example(loss, labels, ignore_index, reduction):
    if reduction == "none":
        return loss
    axes = tuple(range(1, loss.ndim))
    total = jnp.sum(loss, axis=axes)
    if reduction == "sum":
        return total
    return total / jnp.sum(labels != ignore_index, axis=axes).astype(jnp.float32)


@functools.lru_cache(maxsize=None)
def _ce_backward_call(ignore_index: int, ls: float, reduction: str, policy: str):
    """(dloss, logits, labels, lse) -> dlogits."""

    def call(dloss, logits, labels, lse):
        ws = core.cross_entropy_backward_workspace_bytes(labels.size, reduction)
        outs = (out_like(logits), jax.ShapeDtypeStruct((ws,), jnp.uint8))
        dlogits, _ = jax.ffi.ffi_call("xpuruntime_cross_entropy_bwd", outs)(
            dloss, logits, labels, lse, ignore_index=np.int64(ignore_index),
            label_smoothing=np.float32(ls), reduction=reduction, policy=policy)
        return dlogits

    @custom_vmap
    def batched(dloss, logits, labels, lse):
        return call(dloss, logits, labels, lse)

    @batched.def_vmap
    def rule(size, in_batched, dloss, logits, labels, lse):
        dloss, logits, labels, lse = (batch_front(a, b, size) for a, b in
                                      zip((dloss, logits, labels, lse), in_batched))
        # Per-example scalar gradients become per-row ones for a "none" kernel.
        keep = (labels != ignore_index).astype(jnp.float32)
        bshape = (size,) + (1,) * (labels.ndim - 1)
        if reduction == "sum":
            drows = jnp.broadcast_to(dloss.reshape(bshape), labels.shape)
        elif reduction == "mean":
            count = jnp.sum(keep, axis=tuple(range(1, keep.ndim))).reshape(bshape)
            drows = dloss.reshape(bshape) / count * jnp.ones(labels.shape, jnp.float32)
        else:
            drows = dloss
        return _ce_backward_call(ignore_index, ls, "none", policy)(drows, logits, labels, lse), True

    return batched


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def _cross_entropy(logits, labels, ignore_index, ls, reduction, policy):
    return _ce_forward_call(ignore_index, ls, reduction, policy)(logits, labels)[0]


def _cross_entropy_fwd(logits, labels, ignore_index, ls, reduction, policy):
    loss, lse = _ce_forward_call(ignore_index, ls, reduction, policy)(logits, labels)
    return loss, (logits, labels, lse)


def _cross_entropy_bwd(ignore_index, ls, reduction, policy, saved, dloss):
    logits, labels, lse = saved
    dlogits = _ce_backward_call(ignore_index, ls, reduction, policy)(
        dloss.astype(jnp.float32), logits, labels, lse)
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
