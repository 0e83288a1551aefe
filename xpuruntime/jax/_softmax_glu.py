"""softmax, swiglu and geglu for JAX. Every operand has the same shape, so the
batch axes of vmap are just more rows: ffi_call's broadcast_all rule applies."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .._policy import resolve_policy
from ._common import check_float, check_like, out_like


def _call(target: str, outs):
    return jax.ffi.ffi_call(target, outs, vmap_method="broadcast_all")


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _softmax(x, scale, policy):
    return _call("xpuruntime_softmax_fwd", out_like(x))(x, scale=np.float32(scale), policy=policy)


def _softmax_fwd(x, scale, policy):
    y = _softmax(x, scale, policy)
    return y, y


def _softmax_bwd(scale, policy, y, dy):
    dx = _call("xpuruntime_softmax_bwd", out_like(y))(dy.astype(y.dtype), y, scale=np.float32(scale),
                                                     policy=policy)
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
        return _call(f"xpuruntime_{name}_fwd", out_like(gate))(gate, up, policy=policy)

    def fwd(gate, up, policy):
        return op(gate, up, policy), (gate, up)

    def bwd(policy, saved, dy):
        gate, up = saved
        return tuple(_call(f"xpuruntime_{name}_bwd", (out_like(gate), out_like(up)))(
            dy.astype(gate.dtype), gate, up, policy=policy))

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
