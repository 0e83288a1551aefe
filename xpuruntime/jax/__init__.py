"""JAX frontend: xpuruntime ops as XLA FFI custom calls (CPU and CUDA), usable
under ``jax.jit``, ``jax.grad`` and ``jax.vmap``.

Importing this module registers every FFI target with XLA.
"""

from __future__ import annotations

from .._extras import require

require("jax", "jax")

from ._registration import export_disabled_checks, target_names  # noqa: E402
from ._layer_norm import layer_norm  # noqa: E402
from ._rms_norm import rms_norm  # noqa: E402
from ._rope_ce import cross_entropy, rope  # noqa: E402
from ._softmax_glu import geglu, softmax, swiglu  # noqa: E402
from ._fused_linear_cross_entropy import fused_linear_cross_entropy  # noqa: E402,F401

__all__ = ["cross_entropy", "export_disabled_checks", "geglu", "layer_norm", "rms_norm", "rope",
           "softmax", "swiglu", "target_names"]
