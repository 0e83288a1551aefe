"""rms_norm for JAX: FFI calls wrapped in custom_vjp (backward kernel) and
custom_vmap (batch axes become rows: no loop, no weight broadcast)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from .. import _spec
from .._policy import resolve_policy
from ._common import (batch_front, check_float, check_like, check_param, per_example,
                      sum_per_example)
from ._sharding import row_partitioned


@functools.lru_cache(maxsize=None)
def _forward_call(eps: float, policy: str, with_residual: bool):
    """FFI forward: (x, w[, r]) -> (y, rstd[, h]); rstd has x.shape[:-1], f32."""

    def ffi(x, w, *res):
        out = [jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct(x.shape[:-1], jnp.float32)]
        if with_residual:
            out.append(jax.ShapeDtypeStruct(x.shape, x.dtype))
        return tuple(jax.ffi.ffi_call("xpuruntime_rms_norm_fwd", out)(
            x, w, *res, eps=np.float32(eps), policy=policy))

    extra = ("row",) if with_residual else ()
    call = row_partitioned(ffi, "rms_norm", ("row", "param") + extra, ("row", "lead") + extra)

    @custom_vmap
    def batched(x, w, *res):
        return tuple(call(x, w, *res))

    @batched.def_vmap
    def rule(size, in_batched, x, w, *res):
        xb, wb = in_batched[0], in_batched[1]
        x = batch_front(x, xb, size)
        res = tuple(batch_front(r, b, size) for r, b in zip(res, in_batched[2:]))
        if not wb:
            # The batch axis is one more leading axis: more rows, one kernel.
            outs = batched(x, w, *res)
        else:
            # Per-example weights: normalize with unit weight, then scale.
            ones = jnp.ones(w.shape[-1:], w.dtype)
            y, *rest = batched(x, ones, *res)
            scale = per_example(w, x).astype(jnp.float32)
            outs = ((y.astype(jnp.float32) * scale).astype(x.dtype), *rest)
        return tuple(outs), (True,) * len(outs)

    return batched


@functools.lru_cache(maxsize=None)
def _backward_call(policy: str, with_dh: bool):
    """FFI backward: (dy, x, w, rstd[, dh]) -> (dx, dw)."""

    def ffi(dy, x, w, rstd, *dh):
        shapes = [dy.shape, x.shape, w.shape, rstd.shape, dh[0].shape if dh else None]
        ws = _spec.workspace_bytes(_spec.get("rms_norm", "backward"), shapes)
        out = [jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct(w.shape, w.dtype),
               jax.ShapeDtypeStruct((ws,), jnp.uint8)]
        dx, dw, _ = jax.ffi.ffi_call("xpuruntime_rms_norm_bwd", out)(dy, x, w, rstd, *dh,
                                                                     policy=policy)
        return dx, dw

    call = row_partitioned(ffi, "rms_norm", ("row", "row", "param", "lead") + (("row",) if with_dh else ()),
                           ("row", "param_sum"))

    @custom_vmap
    def batched(dy, x, w, rstd, *dh):
        return call(dy, x, w, rstd, *dh)

    @batched.def_vmap
    def rule(size, in_batched, dy, x, w, rstd, *dh):
        dy, x, rstd = (batch_front(a, b, size)
                       for a, b in zip((dy, x, rstd), (in_batched[0], in_batched[1], in_batched[3])))
        dh = tuple(batch_front(a, b, size) for a, b in zip(dh, in_batched[4:]))
        # dweight is per example (JAX sums it over the batch itself where the primal
        # weight was shared), so it is reduced here over each example's rows.
        xhat = x.astype(jnp.float32) * rstd[..., None]
        dw = sum_per_example(dy.astype(jnp.float32) * xhat).astype(w.dtype)
        if not in_batched[2]:
            dx, _ = batched(dy, x, w, rstd, *dh)
        else:
            # Per-example weights: the kernel's dx with dy*w and unit weight.
            dy_w = (dy.astype(jnp.float32) * per_example(w, x).astype(jnp.float32)).astype(dy.dtype)
            dx, _ = batched(dy_w, x, jnp.ones(w.shape[-1:], w.dtype), rstd, *dh)
        return (dx, dw), (True, True)

    return batched


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _rms_norm(x, weight, eps, policy):
    y, _ = _forward_call(eps, policy, False)(x, weight)
    return y


def _rms_norm_fwd(x, weight, eps, policy):
    y, rstd = _forward_call(eps, policy, False)(x, weight)
    return y, (x, weight, rstd)


def _rms_norm_bwd(eps, policy, saved, dy):
    x, weight, rstd = saved
    return _backward_call(policy, False)(dy, x, weight, rstd)


_rms_norm.defvjp(_rms_norm_fwd, _rms_norm_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _rms_norm_residual(x, weight, residual, eps, policy):
    y, _, h = _forward_call(eps, policy, True)(x, weight, residual)
    return y, h


def _rms_norm_residual_fwd(x, weight, residual, eps, policy):
    y, rstd, h = _forward_call(eps, policy, True)(x, weight, residual)
    return (y, h), (h, weight, rstd)


def _rms_norm_residual_bwd(eps, policy, saved, cotangents):
    h, weight, rstd = saved
    dy, dh = cotangents
    dx, dw = _backward_call(policy, True)(dy, h, weight, rstd, dh.astype(h.dtype))
    return dx, dw, dx


_rms_norm_residual.defvjp(_rms_norm_residual_fwd, _rms_norm_residual_bwd)


def _check(x, weight, residual):
    # Trace-time errors, named by op and argument (the kernel re-checks at run time).
    check_float("rms_norm", "x", x)
    check_param("rms_norm", "weight", weight, x)
    if residual is not None:
        check_like("rms_norm", "residual", residual, "x", x)


def rms_norm(x, weight, eps: float = 1e-6, *, residual=None, policy: str | None = None):
    """RMS normalization over the last axis, as an XLA FFI call.

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16.
      weight: ``[N]``, x's dtype.
      eps: added to the mean square.
      residual: optional, x's shape and dtype: normalizes ``h = x + residual``.
      policy: kernel policy; default: the policy in effect at trace time.

    Returns:
      ``y`` (x's shape and dtype), or ``(y, h)`` with ``residual``.
    """
    x, weight = jnp.asarray(x), jnp.asarray(weight)
    residual = None if residual is None else jnp.asarray(residual)
    _check(x, weight, residual)
    pol = resolve_policy(policy)
    if residual is None:
        return _rms_norm(x, weight, float(eps), pol)
    return _rms_norm_residual(x, weight, residual, float(eps), pol)
