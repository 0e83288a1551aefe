"""layer_norm for JAX: FFI calls under custom_vjp (backward kernel) and
custom_vmap (batch axes become rows; per-example weights handled in jnp)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from .. import _spec
from .._policy import resolve_policy
from ._common import batch_front, check_float, check_param, out_like, per_example, sum_per_example
from ._sharding import row_partitioned


@functools.lru_cache(maxsize=None)
def _forward_call(eps: float, policy: str):
    """(x, w, b) -> (y, mean, rstd); mean and rstd have x.shape[:-1], f32."""

    def ffi(x, w, b):
        stat = out_like(x, jnp.float32, x.shape[:-1])
        return tuple(jax.ffi.ffi_call("xpuruntime_layer_norm_fwd", (out_like(x), stat, stat))(
            x, w, b, eps=np.float32(eps), policy=policy))

    call = row_partitioned(ffi, "layer_norm", ("row", "param", "param"), ("row", "lead", "lead"))

    @custom_vmap
    def batched(x, w, b):
        return call(x, w, b)

    @batched.def_vmap
    def rule(size, in_batched, x, w, b):
        x = batch_front(x, in_batched[0], size)
        if not (in_batched[1] or in_batched[2]):
            outs = batched(x, w, b)
        else:
            # Per-example parameters: normalize with (1, 0), then scale and shift.
            y, mean, rstd = batched(x, jnp.ones(x.shape[-1:], x.dtype), jnp.zeros(x.shape[-1:], x.dtype))
            w = per_example(batch_front(w, in_batched[1], size), x).astype(jnp.float32)
            b = per_example(batch_front(b, in_batched[2], size), x).astype(jnp.float32)
            xhat = (x.astype(jnp.float32) - mean[..., None]) * rstd[..., None]
            outs = ((xhat * w + b).astype(x.dtype), mean, rstd)
        return outs, (True, True, True)

    return batched


@functools.lru_cache(maxsize=None)
def _backward_call(policy: str):
    """(dy, x, w, mean, rstd) -> (dx, dw, db)."""

    def ffi(dy, x, w, mean, rstd):
        shapes = [t.shape for t in (dy, x, w, mean, rstd)]
        ws = _spec.workspace_bytes(_spec.get("layer_norm", "backward"), shapes)
        outs = (out_like(x), out_like(w), out_like(w), jax.ShapeDtypeStruct((ws,), jnp.uint8))
        dx, dw, db, _ = jax.ffi.ffi_call("xpuruntime_layer_norm_bwd", outs)(dy, x, w, mean, rstd,
                                                                            policy=policy)
        return dx, dw, db

    call = row_partitioned(ffi, "layer_norm", ("row", "row", "param", "lead", "lead"),
                           ("row", "param_sum", "param_sum"))

    @custom_vmap
    def batched(dy, x, w, mean, rstd):
        return call(dy, x, w, mean, rstd)

    @batched.def_vmap
    def rule(size, in_batched, dy, x, w, mean, rstd):
        dy, x, mean, rstd = (batch_front(a, b, size) for a, b in
                             zip((dy, x, mean, rstd), (in_batched[0], in_batched[1], in_batched[3], in_batched[4])))
        # Parameter gradients are per example (JAX sums them where the weight was shared).
        xhat = (x.astype(jnp.float32) - mean[..., None]) * rstd[..., None]
        dw = sum_per_example(dy.astype(jnp.float32) * xhat).astype(w.dtype)
        db = sum_per_example(dy).astype(w.dtype)
        if in_batched[2]:
            dy_w = (dy.astype(jnp.float32) * per_example(w, x).astype(jnp.float32)).astype(dy.dtype)
            dx, _, _ = batched(dy_w, x, jnp.ones(x.shape[-1:], w.dtype), mean, rstd)
        else:
            dx, _, _ = batched(dy, x, w, mean, rstd)
        return (dx, dw, db), (True, True, True)

    return batched


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _layer_norm(x, weight, bias, eps, policy):
    return _forward_call(eps, policy)(x, weight, bias)[0]


def _layer_norm_fwd(x, weight, bias, eps, policy):
    y, mean, rstd = _forward_call(eps, policy)(x, weight, bias)
    return y, (x, weight, mean, rstd)


def _layer_norm_bwd(eps, policy, saved, dy):
    x, weight, mean, rstd = saved
    return _backward_call(policy)(dy.astype(x.dtype), x, weight, mean, rstd)


_layer_norm.defvjp(_layer_norm_fwd, _layer_norm_bwd)


def layer_norm(x, weight, bias, eps: float = 1e-5, *, policy: str | None = None):
    """Layer normalization over the last axis, as an XLA FFI call.

    ``y = (x - mean) * rsqrt(var + eps) * weight + bias`` (population variance).

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16.
      weight, bias: ``[N]``, x's dtype.
      eps: added to the variance.
      policy: kernel policy; default: the policy in effect at trace time.

    Returns:
      ``y``, x's shape and dtype. Differentiable in x, weight and bias.
    """
    x, weight, bias = jnp.asarray(x), jnp.asarray(weight), jnp.asarray(bias)
    check_float("layer_norm", "x", x)
    check_param("layer_norm", "weight", weight, x)
    check_param("layer_norm", "bias", bias, x)
    return _layer_norm(x, weight, bias, float(eps), resolve_policy(policy))
