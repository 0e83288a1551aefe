"""Helpers shared by the JAX op wrappers: trace-time checks that name the op
and argument, and the pieces of the batching rules."""

from __future__ import annotations

import jax
import jax.numpy as jnp

FLOAT_DTYPES = (jnp.float32, jnp.float16, jnp.bfloat16)


def check_float(op: str, name: str, a) -> None:
    """``a`` is at least 1-d and float32/float16/bfloat16 (TypeError / ValueError otherwise)."""
    if a.ndim < 1:
        raise ValueError(f"{op}: '{name}' must have at least 1 dimension, got a 0-d array")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: '{name}' must be float32, float16 or bfloat16, got {a.dtype}")


def check_like(op: str, name: str, a, ref_name: str, ref) -> None:
    """``a`` has ``ref``'s shape and dtype."""
    if a.shape != ref.shape:
        raise ValueError(f"{op}: '{name}' must have the shape of '{ref_name}' {list(ref.shape)}, "
                         f"got {list(a.shape)}")
    if a.dtype != ref.dtype:
        raise TypeError(f"{op}: '{name}' must be {ref.dtype}, got {a.dtype}")


def check_param(op: str, name: str, p, x) -> None:
    """``p`` is a per-feature parameter of ``x``: shape ``[N]``, x's dtype."""
    if p.shape != x.shape[-1:]:
        raise ValueError(f"{op}: '{name}' must have shape {list(x.shape[-1:])}, got {list(p.shape)}")
    if p.dtype != x.dtype:
        raise TypeError(f"{op}: '{name}' must be {x.dtype}, got {p.dtype}")


def batch_front(a, batched: bool, size: int):
    """Batched operands arrive with their batch axis first; broadcast unbatched ones."""
    return a if batched else jnp.broadcast_to(a, (size,) + a.shape)


def per_example(p, x):
    """A batched ``[B, N]`` parameter shaped to broadcast against batched ``x [B, ..., N]``."""
    return p.reshape(p.shape[:1] + (1,) * (x.ndim - 2) + p.shape[-1:])


def sum_per_example(a):
    """Sums ``[B, ..., N]`` over every axis but the batch and the last one, in f32."""
    return jnp.sum(a.astype(jnp.float32), axis=tuple(range(1, a.ndim - 1)))


def out_like(x, dtype=None, shape=None) -> jax.ShapeDtypeStruct:
    return jax.ShapeDtypeStruct(x.shape if shape is None else shape, x.dtype if dtype is None else dtype)
