"""JAX frontend: xpuruntime ops as XLA FFI custom calls (CPU and CUDA), usable
under ``jax.jit``, ``jax.grad``, ``jax.vmap``, sharding and ``jax.export``.

Importing this module registers every FFI target with XLA. The functions are made
from the op specs (one per op of ffi/ops.def; see ``help(xpuruntime.jax.<op>)``).
"""

from __future__ import annotations

from .._extras import require

require("jax", "jax")

from .._spec import op_names  # noqa: E402
from ._public import make_op  # noqa: E402
from ._registration import export_disabled_checks, target_names  # noqa: E402
from ._fused_linear_cross_entropy import fused_linear_cross_entropy  # noqa: E402

for _op in op_names():
    globals()[_op] = make_op(_op)
del _op

__all__ = sorted([*op_names(), "export_disabled_checks", "fused_linear_cross_entropy",
                  "target_names"])
