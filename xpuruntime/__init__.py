"""xpuruntime: fused kernels written once, callable from every framework.

Frontends:
    xpuruntime.ops                    native ops on any DLPack array (numpy, torch, jax, cupy)
    xpuruntime.jax                    XLA FFI ops for jax.jit / grad / vmap      (extra: [jax])
    xpuruntime.interop.torch          torch.library custom ops                   (extra: [torch])
    xpuruntime.interop.onnxruntime    ONNX Runtime custom-op library            (extra: [onnx])
    xpuruntime.InferenceSession       ONNX models through ONNX Runtime or TensorRT (extra: [onnx])

Runtime: xpuruntime.memory (caching stream-ordered pools), devices() / Device,
Stream / Event, empty() / asarray() -> Array (DLPack, __cuda_array_interface__).
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
from ._device import Device, devices, get_device, set_device
from ._stream import Event, Stream, current_stream, stream
from ._tensor import Array, asarray, empty
from .session import InferenceSession, TensorInfo
from . import memory

__version__ = _core.__version__

__all__ = [
    "Array",
    "Device",
    "Event",
    "InferenceSession",
    "Stream",
    "asarray",
    "current_stream",
    "devices",
    "empty",
    "get_device",
    "memory",
    "set_device",
    "stream",
    "TensorInfo",
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
