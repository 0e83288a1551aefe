"""xpuruntime: fused kernels written once, callable from every framework.

Frontends:
    xpuruntime.ops                    native ops on any DLPack array (numpy, torch, jax, cupy)
    xpuruntime.jax                    XLA FFI ops for jax.jit / grad / vmap      (extra: [jax])
    xpuruntime.interop.torch          torch.library custom ops                   (extra: [torch])
    xpuruntime.interop.onnxruntime    ONNX Runtime custom-op library            (extra: [onnx])
"""

from __future__ import annotations

from ._native import (
    Error,
    InvalidArgumentError,
    KernelNotFoundError,
    OutOfMemoryError,
    core as _core,
)
from ._policy import POLICIES, get_policy, policy, set_policy
from ._info import info, kernels

__version__ = _core.__version__

__all__ = [
    "Error",
    "InvalidArgumentError",
    "KernelNotFoundError",
    "OutOfMemoryError",
    "POLICIES",
    "get_policy",
    "info",
    "kernels",
    "policy",
    "set_policy",
    "__version__",
]
