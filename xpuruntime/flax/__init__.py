"""Flax normalization layers on xpuruntime's kernels, drop-in for flax's own.

``xpuruntime.flax.linen.RMSNorm`` / ``LayerNorm`` subclass ``flax.linen.RMSNorm`` /
``LayerNorm`` and ``xpuruntime.flax.nnx.RMSNorm`` / ``LayerNorm`` subclass
``flax.nnx.RMSNorm`` / ``LayerNorm``: the same constructor arguments, the same class
names (so linen's automatic names ``RMSNorm_0`` stay), the same parameters (``scale``,
``bias``: names, shapes, dtypes, initializers and rngs), so a checkpoint loads
unchanged and a model swaps its norm class and nothing else. Only ``__call__``
differs: the normalization runs as one xpuruntime kernel (``xpuruntime.jax``).
Arguments the kernels do not cover fall back to flax's own computation, with a
warning (``_common.unsupported``). ``xpuruntime.flax.RMSNorm`` / ``LayerNorm`` are the
linen ones.
"""

from __future__ import annotations

from .._extras import require

require("flax", "flax")

from . import linen, nnx  # noqa: E402
from .linen import LayerNorm, RMSNorm  # noqa: E402

__all__ = ["LayerNorm", "RMSNorm", "linen", "nnx"]
