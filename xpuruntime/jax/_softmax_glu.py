"""softmax, swiglu and geglu for JAX. Every operand has the same shape, so the
batch axes of vmap are just more rows, and sharded rows stay sharded."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap

from .._policy import resolve_policy
from ._common import batch_front, check_float, check_like, out_like
from ._sharding import row_partitioned


@functools.lru_cache(maxsize=None)
def _rows_call(target: str, n_in: int, n_out: int, attrs: tuple):
    """``target`` over operands and results that all share one [..., N] shape."""

    def ffi(*args):
        outs = tuple(out_like(args[-1]) for _ in range(n_out))  # the last operand: y or up
        return tuple(jax.ffi.ffi_call(target, outs)(*args, **dict(attrs)))

    call = row_partitioned(ffi, target, ("row",) * n_in, ("row",) * n_out)

    @custom_vmap
    def batched(*args):
        return call(*args)

    @batched.def_vmap
    def rule(size, in_batched, *args):
        args = [batch_front(a, b, size) for a, b in zip(args, in_batched)]
        return batched(*args), (True,) * n_out

    return batched


def _call(target: str, n_in: int, n_out: int, **attrs):
    """Calls ``target``; returns its only result or the tuple of results."""
    fn = _rows_call(target, n_in, n_out, tuple(sorted(attrs.items())))
    return lambda *args: (lambda r: r[0] if n_out == 1 else r)(fn(*args))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _softmax(x, scale, policy):
    return _call("xpuruntime_softmax_fwd", 1, 1, scale=np.float32(scale), policy=policy)(x)


def _softmax_fwd(x, scale, policy):
    y = _softmax(x, scale, policy)
    return y, y


def _softmax_bwd(scale, policy, y, dy):
    dx = _call("xpuruntime_softmax_bwd", 2, 1, scale=np.float32(scale), policy=policy)(
        dy.astype(y.dtype), y)
    return (dx,)


_softmax.defvjp(_softmax_fwd, _softmax_bwd)


def softmax(x, *, scale: float = 1.0, policy: str | None = None):
    """Softmax over the last axis of ``s = scale * x``, as an XLA FFI call.

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16.
      scale: multiplies x first.
      policy: kernel policy; default: the policy in effect at trace time.

    Returns:
      ``y``, x's shape and dtype.
    """
    x = jnp.asarray(x)
    check_float("softmax", "x", x)
    return _softmax(x, float(scale), resolve_policy(policy))


def _make_glu(name: str):
    @functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
    def op(gate, up, policy):
        return _call(f"xpuruntime_{name}_fwd", 2, 1, policy=policy)(gate, up)

    def fwd(gate, up, policy):
        return op(gate, up, policy), (gate, up)

    def bwd(policy, saved, dy):
        gate, up = saved
        return _call(f"xpuruntime_{name}_bwd", 3, 2, policy=policy)(dy.astype(gate.dtype), gate, up)

    op.defvjp(fwd, bwd)

    def public(gate, up, *, policy: str | None = None):
        gate, up = jnp.asarray(gate), jnp.asarray(up)
        check_float(name, "gate", gate)
        check_like(name, "up", up, "gate", gate)
        return op(gate, up, resolve_policy(policy))

    return public


_swiglu = _make_glu("swiglu")
_geglu = _make_glu("geglu")


def swiglu(gate, up, *, policy: str | None = None):
    """``silu(gate) * up`` elementwise, as an XLA FFI call.

    Args:
      gate: ``[..., N]`` float32, float16 or bfloat16.
      up: gate's shape and dtype.

    Returns:
      ``y``, gate's shape and dtype. Differentiable in gate and up.
    """
    return _swiglu(gate, up, policy=policy)


def geglu(gate, up, *, policy: str | None = None):
    """``gelu_tanh(gate) * up`` elementwise, as an XLA FFI call.

    Args:
      gate: ``[..., N]`` float32, float16 or bfloat16.
      up: gate's shape and dtype.

    Returns:
      ``y``, gate's shape and dtype. Differentiable in gate and up.
    """
    return _geglu(gate, up, policy=policy)
