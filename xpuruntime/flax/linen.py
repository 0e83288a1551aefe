"""``flax.linen`` RMSNorm and LayerNorm on xpuruntime's kernels (see the package docstring)."""

from __future__ import annotations

import flax.linen as nn

from . import _common


def _params(layer, x, bias: bool):
    """``scale`` (and ``bias``) created exactly as flax creates them: same names, shape
    ``[features]``, initializers and param_dtype (and so the same rngs and values)."""
    shape = [x.shape[-1]]
    scale = layer.param("scale", layer.scale_init, shape, layer.param_dtype) \
        if layer.use_scale else None
    b = layer.param("bias", layer.bias_init, shape, layer.param_dtype) \
        if bias and layer.use_bias else None
    return scale, b


class RMSNorm(nn.RMSNorm):
    """``flax.linen.RMSNorm`` (same fields and parameters) computed by xpuruntime's
    rms_norm over the last axis: ``y = x * rsqrt(mean(x^2) + epsilon) * scale``.

    ``x``: ``[..., N]`` float32, float16 or bfloat16. Result dtype as flax's (``dtype``,
    else promoted from x and scale). Falls back to flax's computation, with a warning,
    for reduction or feature axes other than the last, ``axis_name``, or a mask.
    """

    @nn.compact
    def __call__(self, x, *, mask=None):
        reason = _common.unsupported(self, x, mask)
        if reason is not None:
            _common.fall_back(self, reason)
            return super().__call__(x, mask=mask)
        scale, _ = _params(self, x, bias=False)
        return _common.normalize(x, scale, None, self.epsilon, self.dtype, centered=False)


class LayerNorm(nn.LayerNorm):
    """``flax.linen.LayerNorm`` (same fields and parameters) computed by xpuruntime's
    layer_norm over the last axis: ``y = (x - mean) * rsqrt(var + epsilon) * scale + bias``.

    ``x``: ``[..., N]`` float32, float16 or bfloat16. Result dtype as flax's. Falls back
    to flax's computation, with a warning, for reduction or feature axes other than
    the last, ``axis_name``, or a mask. The variance is the exact population variance
    whatever ``use_fast_variance`` says.
    """

    @nn.compact
    def __call__(self, x, *, mask=None):
        reason = _common.unsupported(self, x, mask)
        if reason is not None:
            _common.fall_back(self, reason)
            return super().__call__(x, mask=mask)
        scale, bias = _params(self, x, bias=True)
        return _common.normalize(x, scale, bias, self.epsilon, self.dtype, centered=True)


__all__ = ["LayerNorm", "RMSNorm"]
