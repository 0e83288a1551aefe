"""DLPack plumbing for the native frontend: devices, streams, output allocation,
and handing results back in the caller's own array type (zero-copy)."""

from __future__ import annotations

import sys
from typing import Any, NamedTuple

from ._native import core


class ArrayInfo(NamedTuple):
    dtype: str          # "float32", "bfloat16", ...
    shape: tuple
    device_kind: str    # "cpu" or "cuda"
    device_index: int


def array_info(x: Any) -> ArrayInfo:
    """dtype, shape and device of any DLPack array, read through DLPack itself."""
    return ArrayInfo(*core.array_info(x))


def _framework(x: Any) -> str:
    mod = type(x).__module__.split(".")[0]
    if mod in ("torch", "jax", "jaxlib", "numpy", "cupy"):
        return "jax" if mod == "jaxlib" else mod
    return "other"


def stream_handle(stream: Any, like: Any, info: ArrayInfo) -> int:
    """The raw cudaStream_t for a call.

    ``stream`` may be an int handle, an ``xpuruntime.Stream``, an object with ``__cuda_stream__`` (cuda.core,
    cupy, torch >= 2.6) or ``cuda_stream`` (torch). ``None`` picks torch's current
    stream for torch tensors and the legacy default stream otherwise.
    """
    if info.device_kind != "cuda":
        return 0
    if stream is None:
        if _framework(like) == "torch":
            torch = sys.modules["torch"]
            return torch.cuda.current_stream(info.device_index).cuda_stream
        return 0
    from ._stream import Stream
    if isinstance(stream, Stream):
        return stream.handle
    if isinstance(stream, int):
        return stream
    if hasattr(stream, "__cuda_stream__"):
        proto = stream.__cuda_stream__
        version, handle = proto() if callable(proto) else proto
        return int(handle)
    if hasattr(stream, "cuda_stream"):
        return int(stream.cuda_stream)
    raise TypeError(f"stream must be an int handle or expose __cuda_stream__, got {type(stream)!r}")


def empty_like_framework(like: Any, shape: tuple, dtype: str, info: ArrayInfo, stream: int) -> Any:
    """An uninitialized dense array on ``info``'s device, in ``like``'s framework
    where that framework can allocate (numpy, torch), else owned by xpuruntime."""
    fw = _framework(like)
    if fw == "numpy":
        import numpy as np
        return np.empty(shape, dtype=dtype)
    if fw == "torch":
        torch = sys.modules["torch"]
        device = "cpu" if info.device_kind == "cpu" else f"cuda:{info.device_index}"
        return torch.empty(shape, dtype=getattr(torch, dtype), device=device)
    return core.empty(list(shape), dtype, info.device_kind, info.device_index, stream)


def as_framework(out: Any, like: Any) -> Any:
    """``out`` (from ``empty_like_framework``) as the caller's array type, without copying."""
    fw = _framework(like)
    if fw in ("numpy", "torch"):
        return out  # already allocated by that framework
    if fw == "jax":
        import jax.numpy as jnp
        return jnp.from_dlpack(out)
    if fw == "cupy":
        return sys.modules["cupy"].from_dlpack(out)
    return out
