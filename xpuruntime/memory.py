"""xpuruntime's memory pools from Python: stream-ordered buffers and statistics.

Every device has one caching pool (see docs/runtime.md). ``allocate`` returns a
``Buffer`` that goes back to the pool when freed, when its ``with`` block ends,
or when it is garbage collected, always ordered after the work queued on its
stream.
"""

from __future__ import annotations

from typing import Any

from ._device import Device, as_device
from ._native import InvalidArgumentError, core
from ._stream import as_stream, stream_for

__all__ = ["Buffer", "allocate", "allocate_pinned", "empty_cache", "reset_peak_stats",
           "set_limit", "stats", "snapshot"]


def _check_nbytes(nbytes: Any) -> int:
    if type(nbytes) is int and nbytes >= 0:  # the common case, kept cheap
        return nbytes
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        try:
            import operator
            nbytes = operator.index(nbytes)
        except TypeError:
            raise TypeError(f"nbytes must be an int, got {type(nbytes).__name__}") from None
    if nbytes < 0:
        raise InvalidArgumentError(f"allocate: negative size {nbytes}")
    return int(nbytes)


class Buffer:
    """``nbytes`` of memory on ``device``, ordered on ``stream`` (a cudaStream_t handle).

    Using a freed buffer raises ``xpuruntime.InvalidArgumentError``; it never touches memory.
    """

    __slots__ = ("_raw", "device", "__weakref__")

    def __init__(self, raw: Any, device: Device):
        self._raw = raw
        self.device = device

    @property
    def ptr(self) -> int:
        return self._raw.ptr

    @property
    def nbytes(self) -> int:
        return self._raw.nbytes

    @property
    def stream(self) -> int:
        return self._raw.stream

    @property
    def pinned(self) -> bool:
        return self._raw.pinned

    @property
    def freed(self) -> bool:
        return self._raw.freed

    def free(self, stream: Any = None) -> None:
        """Returns the memory to the pool after the work queued on ``stream``
        (default: the stream the buffer was allocated on)."""
        h = None if stream is None else as_stream(stream, self.device).handle
        self._raw.free(h)

    def fill(self, value: int) -> None:
        """Sets every byte to ``value`` (stream-ordered on CUDA)."""
        self._raw.fill(int(value))

    def count_not_equal(self, value: int) -> int:
        """Bytes that differ from ``value`` (waits for the buffer's stream on CUDA)."""
        return int(self._raw.count_not_equal(int(value)))

    def __enter__(self) -> "Buffer":
        return self

    def __exit__(self, *exc) -> None:
        if not self._raw.freed:
            self._raw.free(None)

    def __repr__(self) -> str:
        if self._raw.freed:
            return f"<xpuruntime.memory.Buffer {self.nbytes} bytes on {self.device}, freed>"
        return (f"<xpuruntime.memory.Buffer {self.nbytes} bytes on {self.device} at 0x{self.ptr:x}, "
                f"stream 0x{self.stream:x}>")


def allocate(nbytes: int, *, stream: Any = None, device: Any = None) -> Buffer:
    """``nbytes`` from ``device``'s pool (default: the current device), usable by
    work queued on ``stream`` (default: the device's current stream).

    Raises ``xpuruntime.OutOfMemoryError`` (a MemoryError) with the request,
    allocated, reserved and device-free bytes when the pool cannot serve it.
    """
    n = _check_nbytes(nbytes)
    d = as_device(device)
    h = stream_for(stream, d)
    return Buffer(core.allocate(n, d.kind, d.index, h), d)


def allocate_pinned(nbytes: int) -> Buffer:
    """Page-locked host memory (cudaHostAlloc) for asynchronous copies; plain host
    memory when CUDA is not available (``Buffer.pinned`` tells which).

    Free it with ``free(stream=s)`` when asynchronous copies on ``s`` still use it:
    the block is then reused only after that stream's work."""
    return Buffer(core.allocate_pinned(_check_nbytes(nbytes)), Device("cpu"))


def _pool(device: Any):
    d = as_device(device)
    return d, core.device_pool(d.kind, d.index)


def stats(device: Any = None) -> dict:
    """Pool statistics: ``*_bytes`` (current) and ``*_bytes_peak`` for requested,
    allocated, active and reserved; alloc/free counts, cache hits/misses, OOM count,
    segments, free blocks, pending events and the limit (0: none)."""
    d, pool = _pool(device)
    out = pool.stats()
    out["device"] = str(d)
    return out


def snapshot(device: Any = None) -> list[dict]:
    """Every segment of ``device``'s pool with its blocks (for debugging and tests)."""
    return _pool(device)[1].snapshot()


def reset_peak_stats(device: Any = None) -> None:
    _pool(device)[1].reset_peak_stats()


def empty_cache(device: Any = None) -> None:
    """Returns every wholly free cached segment to the device (after its stream work)."""
    _pool(device)[1].empty_cache()


def set_limit(nbytes: int, device: Any = None) -> None:
    """Caps the bytes the pool reserves; requests beyond it raise OutOfMemoryError. 0 removes the cap."""
    _pool(device)[1].set_limit(_check_nbytes(nbytes))
