"""xpuruntime: fused kernels written once, callable from every framework.

Frontends:
    xpuruntime.ops                    native ops on any DLPack array (numpy, torch, jax, cupy)
    xpuruntime.jax                    XLA FFI ops for jax.jit / grad / vmap      (extra: [jax])
    xpuruntime.flax                   flax.linen / flax.nnx RMSNorm, LayerNorm   (extra: [flax])
    xpuruntime.interop.torch          torch.library custom ops                   (extra: [torch])
    xpuruntime.interop.onnxruntime    ONNX Runtime custom-op library            (extra: [onnx])
    xpuruntime.interop.transformers   patch(model): a Hugging Face model on xpuruntime (extra: [transformers])
    xpuruntime.InferenceSession       ONNX models through ONNX Runtime or TensorRT (extra: [onnx])

Runtime: xpuruntime.memory (caching stream-ordered pools), devices() / Device,
Stream / Event, empty() / asarray() -> Array (DLPack, __cuda_array_interface__).

Errors: every error is an xpuruntime.Error. InvalidArgumentError (a ValueError) for a
bad value, shape, dtype, layout or attribute, InvalidArgumentTypeError (an
InvalidArgumentError and a TypeError) for an argument of the wrong Python type,
KernelNotFoundError (a LookupError), OutOfMemoryError (a MemoryError).
"""

from __future__ import annotations

from ._native import (
    Error,
    InvalidArgumentError,
    InvalidArgumentTypeError,
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

__version__ = _core.__version__

# Submodules reachable as attributes (``xpuruntime.ops.rms_norm(...)`` after a bare
# ``import xpuruntime``), imported on first use: the frontends need their framework,
# and importing xpuruntime stays cheap and works without jax or torch.
_LAZY_SUBMODULES = ("flax", "interop", "jax", "memory", "ops")


def __getattr__(name: str):
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f".{name}", __name__)  # also binds it on the package
    raise AttributeError(f"module 'xpuruntime' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))


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
    "ops",
    "set_device",
    "stream",
    "TensorInfo",
    "Error",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
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
