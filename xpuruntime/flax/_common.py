"""What the flax layers of both APIs share: which arguments the kernels cover, the
dtype flax's result has, and the kernel call in the dtype that result needs."""

from __future__ import annotations

import warnings
from typing import Optional

import jax.numpy as jnp
from flax.linen import dtypes

from .. import _spec
from .. import jax as xj

_KERNEL_DTYPES = tuple(jnp.dtype(n) for n in _spec.rule_dtypes("float"))  # the core's float rule


def _last_axis(axes, ndim: int) -> bool:
    axes = (axes,) if isinstance(axes, int) else tuple(axes)
    return len(axes) == 1 and axes[0] in (-1, ndim - 1)


def unsupported(layer, x, mask) -> Optional[str]:
    """Why ``layer`` (a flax norm of either API) cannot run on the kernel for ``x``, or None."""
    if getattr(layer, "axis_name", None) is not None or \
            getattr(layer, "axis_index_groups", None) is not None:
        return "axis_name / axis_index_groups (statistics across devices)"
    if mask is not None:
        return "mask"
    if x.ndim < 1 or not _last_axis(layer.reduction_axes, x.ndim) \
            or not _last_axis(layer.feature_axes, x.ndim):
        return "reduction_axes / feature_axes other than the last axis"
    if x.dtype not in _KERNEL_DTYPES:
        return f"input dtype {x.dtype}"
    return None


def fall_back(layer, reason: str) -> None:
    warnings.warn(f"xpuruntime.flax.{type(layer).__name__}: {reason} is not supported by the "
                  "xpuruntime kernel; using flax's own computation", stacklevel=3)


def normalize(x, scale, bias, epsilon: float, dtype, *, centered: bool):
    """flax's RMSNorm (``centered=False``) or LayerNorm over the last axis of ``x``, as one
    kernel. The result has flax's dtype (``dtype``, else the promotion of x and the
    parameters); the kernel runs in the wider of that and x's dtype, parameters cast to
    it (absent ones as 1 and 0), so no precision below flax's is used."""
    out = dtypes.canonicalize_dtype(*(a for a in (x, scale, bias) if a is not None), dtype=dtype)
    kernel = jnp.promote_types(x.dtype, out)
    if kernel not in _KERNEL_DTYPES:
        kernel = jnp.float32
    n = x.shape[-1]
    xk = x.astype(kernel)
    w = jnp.ones((n,), kernel) if scale is None else scale.reshape(n).astype(kernel)
    if centered:
        b = jnp.zeros((n,), kernel) if bias is None else bias.reshape(n).astype(kernel)
        y = xj.layer_norm(xk, w, b, epsilon)
    else:
        y = xj.rms_norm(xk, w, epsilon)
    return y.astype(out)
