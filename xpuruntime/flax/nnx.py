"""``flax.nnx`` RMSNorm and LayerNorm on xpuruntime's kernels (see the package docstring)."""

from __future__ import annotations

from flax import nnx

from . import _common


def _value(variable):
    return None if variable is None else variable[...]


def _promoted(layer, arrays):
    """flax's own promotion of the input and parameters (``promote_dtype``, where this
    flax version has it), so the kernel sees what flax's computation would."""
    promote = getattr(layer, "promote_dtype", None)
    return arrays if promote is None else promote(arrays, dtype=layer.dtype)


class RMSNorm(nnx.RMSNorm):
    """``flax.nnx.RMSNorm`` (same constructor and state) computed by xpuruntime's
    rms_norm over the last axis. ``x``: ``[..., N]`` float32, float16 or bfloat16.
    Falls back to flax's computation, with a warning, for reduction or feature axes
    other than the last, ``axis_name``, or a mask."""

    def __call__(self, x, mask=None):
        reason = _common.unsupported(self, x, mask)
        if reason is not None:
            _common.fall_back(self, reason)
            return super().__call__(x, mask=mask)
        x, scale = _promoted(self, (x, _value(self.scale)))
        return _common.normalize(x, scale, None, self.epsilon, self.dtype, centered=False)


class LayerNorm(nnx.LayerNorm):
    """``flax.nnx.LayerNorm`` (same constructor and state) computed by xpuruntime's
    layer_norm over the last axis. ``x``: ``[..., N]`` float32, float16 or bfloat16.
    Falls back to flax's computation, with a warning, for reduction or feature axes
    other than the last, ``axis_name``, or a mask. The variance is the exact population
    variance whatever ``use_fast_variance`` says."""

    def __call__(self, x, *, mask=None):
        reason = _common.unsupported(self, x, mask)
        if reason is not None:
            _common.fall_back(self, reason)
            return super().__call__(x, mask=mask)
        x, scale, bias = _promoted(self, (x, _value(self.scale), _value(self.bias)))
        return _common.normalize(x, scale, bias, self.epsilon, self.dtype, centered=True)


__all__ = ["LayerNorm", "RMSNorm"]
