"""``xpuruntime.Array``: memory from xpuruntime's pools (``empty``) or any DLPack
producer (``asarray``, zero-copy), exported through DLPack and, on CUDA,
``__cuda_array_interface__`` v3."""

from __future__ import annotations

import math
from typing import Any

from ._arrays import DTYPES, dtype_name, nbytes_of, read_dlpack, shape_arg
from ._device import Device, as_device
from ._native import InvalidArgumentError, InvalidArgumentTypeError, core
from ._stream import as_stream, stream_for

_TYPESTR = {"bool": "|b1", "int8": "|i1", "uint8": "|u1", "int16": "<i2", "int32": "<i4", "int64": "<i8",
            "uint16": "<u2", "uint32": "<u4", "uint64": "<u8", "float16": "<f2", "float32": "<f4",
            "float64": "<f8", "complex64": "<c8", "complex128": "<c16"}


def _contiguous_strides(shape: tuple) -> tuple:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= max(d, 1)
    return tuple(reversed(strides))


class Array:
    """A strided array on one device. ``empty`` allocates one from the device's
    pool (freed, stream-ordered, when the last reference - including DLPack
    consumers - goes away); ``asarray`` wraps another framework's memory."""

    __slots__ = ("_nd", "_owner", "shape", "dtype", "strides", "device", "stream", "ptr", "__weakref__")

    def __init__(self, owner: Any, ptr: int, shape: tuple, dtype: str, strides: tuple | None,
                 device: Device, stream: int | None):
        self._owner = owner
        self.ptr = int(ptr)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.strides = tuple(strides) if strides is not None else _contiguous_strides(self.shape)
        self.device = device
        self.stream = stream  # producer stream handle, None when unknown
        code, bits = DTYPES[dtype]
        self._nd = core.make_array(owner, self.ptr, list(self.shape), list(self.strides), code, bits,
                                   device.kind, device.index)

    # ---- facts ----
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return DTYPES[self.dtype][1] // 8

    @property
    def nbytes(self) -> int:
        return self.size * self.itemsize

    def is_contiguous(self) -> bool:
        return self.size <= 1 or all(
            st == c for st, c, d in zip(self.strides, _contiguous_strides(self.shape), self.shape) if d != 1)

    # ---- DLPack ----
    def _sync_to(self, consumer: int) -> None:
        """Makes work on ``consumer`` wait for this array's producer stream."""
        if self.device.kind != "cuda" or self.stream is None or consumer == self.stream:
            return
        if consumer in (0, 1) and self.stream in (0, 1):
            return  # both name the legacy default stream
        idx = self.device.index
        ev = core.event_create(idx, False)
        try:
            core.event_record(idx, ev, self.stream)
            core.stream_wait_event(idx, consumer, ev)
        finally:
            core.event_destroy(idx, ev)  # released once the recorded work completes

    def __dlpack__(self, *, stream: Any = None, max_version: Any = None, dl_device: Any = None,
                   copy: Any = None):
        """DLPack export (zero-copy). ``stream`` is the consumer's stream: the
        consumer's later work is ordered after this array's producer stream
        (None: the legacy default stream; -1: no synchronization)."""
        if self.device.kind == "cuda" and stream != -1:
            if stream is None:
                stream = 1  # DLPack: 1 is the legacy default stream (cudaStreamLegacy)
            self._sync_to(int(stream))
        kw = {}
        if max_version is not None:
            kw["max_version"] = max_version
        if dl_device is not None:
            kw["dl_device"] = dl_device
        if copy is not None:
            kw["copy"] = copy
        return self._nd.__dlpack__(**kw)

    def __dlpack_device__(self) -> tuple[int, int]:
        return (2, self.device.index) if self.device.kind == "cuda" else (1, 0)

    @property
    def __cuda_array_interface__(self) -> dict:
        if self.device.kind != "cuda":
            raise AttributeError("__cuda_array_interface__ exists only for CUDA arrays")
        if self.dtype not in _TYPESTR:
            raise AttributeError(f"__cuda_array_interface__ has no typestr for {self.dtype}")
        contiguous = self.is_contiguous()
        return {
            "shape": self.shape,
            "typestr": _TYPESTR[self.dtype],
            "data": (self.ptr, False),
            "version": 3,
            "strides": None if contiguous else tuple(s * self.itemsize for s in self.strides),
            "descr": [("", _TYPESTR[self.dtype])],
            # Consumers synchronize with this stream (v3: 1 is the legacy default stream,
            # 0 is not allowed); None: unknown producer stream, no synchronization.
            "stream": None if self.stream is None else (1 if self.stream == 0 else self.stream),
        }

    def __array__(self, dtype: Any = None, copy: Any = None):
        import numpy as np
        if self.device.kind != "cpu":
            raise InvalidArgumentTypeError(f"a {self.device} array cannot become numpy without a copy; use .to('cpu')")
        a = np.from_dlpack(self)
        return a.astype(dtype) if dtype is not None else a

    # ---- copies ----
    def to(self, device: Any, stream: Any = None) -> "Array":
        """A copy on ``device`` (contiguous arrays), ordered on ``stream`` (default:
        the current stream of the CUDA device involved). Host results are complete on return."""
        dst = as_device(device)
        if not self.is_contiguous():
            raise InvalidArgumentError("Array.to: only contiguous arrays can be copied")
        cuda_dev = dst if dst.kind == "cuda" else self.device
        s = as_stream(stream, cuda_dev).handle if cuda_dev.kind == "cuda" else 0
        out = empty(self.shape, self.dtype, device=dst, stream=s)
        if self.device.kind == "cuda":
            self._sync_to(s)
        core.copy_bytes(out.ptr, dst.kind, dst.index, self.ptr, self.device.kind, self.device.index,
                        self.nbytes, s)
        return out

    def __repr__(self) -> str:
        return f"xpuruntime.Array(shape={self.shape}, dtype={self.dtype}, device={self.device})"


def empty(shape: Any, dtype: Any = "float32", device: Any = None, stream: Any = None) -> Array:
    """An uninitialized contiguous array from ``device``'s pool (default: current device),
    usable by work on ``stream`` (default: the device's current stream).

    ``shape``: an int or a sequence of ints >= 0; ``dtype``: a name or a numpy /
    torch / jax dtype. Raises ``InvalidArgumentError`` for bad shapes and dtypes
    and ``OutOfMemoryError`` when the array is larger than the pool can serve
    (also when its size is beyond any device's memory)."""
    shape = shape_arg(shape, "empty")
    name = dtype_name(dtype, "empty")
    d = as_device(device)
    return allocate_dense(shape, name, d, stream_for(stream, d))


def allocate_dense(shape: tuple, dtype: str, device: Device, stream: int,
                   strides: tuple | None = None, op: str = "empty") -> Array:
    """``empty`` with its arguments already checked (a tuple of ints >= 0, a dtype name,
    a Device, a stream handle; optionally the contiguous strides), for callers that
    allocate on every call (InferenceSession.run)."""
    from .memory import _check_nbytes
    raw = core.allocate(_check_nbytes(nbytes_of(shape, dtype), device, op), device.kind,
                        device.index, stream)
    return Array(raw, raw.ptr, shape, dtype, strides, device,
                 stream if device.kind == "cuda" else None)


def asarray(obj: Any) -> Array:
    """Wraps any DLPack producer (numpy, torch, jax, cupy, ...) without copying;
    the Array keeps ``obj`` alive. Raises ``InvalidArgumentTypeError`` for objects
    that are not arrays and ``InvalidArgumentError`` for arrays DLPack cannot carry."""
    if isinstance(obj, Array):
        return obj
    f = read_dlpack(obj, "asarray", "obj")
    return Array(obj, f.ptr, f.shape, f.dtype, f.strides, Device(f.device_kind, f.device_index), None)
