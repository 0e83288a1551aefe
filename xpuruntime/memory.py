"""xpuruntime's memory pools from Python: stream-ordered buffers and statistics.

Every device has one caching pool (see docs/runtime.md). ``allocate`` returns a
``Buffer`` that goes back to the pool when freed, when its ``with`` block ends,
or when it is garbage collected, always ordered after the work queued on its
stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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


# The Buffer type is the extension's own class (see ffi/bindings/python/memory.cc):
# wrapping it in a Python class doubled the cost of an allocate+free pair.
Buffer = core.Buffer


def _resolve(stream: Any, device: Any) -> tuple[Device, int]:
    """Slow path of ``allocate`` (a stream given, or a device that is not a Device):
    the device and the stream handle to allocate on, with Python's checks and errors."""
    d = as_device(device)
    return d, stream_for(stream, d)


def _free_stream_handle(stream: Any, device: Device) -> int:
    """The handle ``Buffer.free(stream)`` orders the free on."""
    return as_stream(stream, device).handle


if TYPE_CHECKING:
    def allocate(nbytes: int, *, stream: Any = None, device: Any = None) -> Buffer:
        """``nbytes`` from ``device``'s pool, usable by work queued on ``stream``."""
else:
    # Implemented in the extension (its docstring is there): a Python function
    # around it cost more than the pool's own allocate+free.
    allocate = core.allocate_buffer


def allocate_pinned(nbytes: int) -> Buffer:
    """Page-locked host memory (cudaHostAlloc) for asynchronous copies; plain host
    memory when CUDA is not available (``Buffer.pinned`` tells which).

    Free it with ``free(stream=s)`` when asynchronous copies on ``s`` still use it:
    the block is then reused only after that stream's work."""
    return core.allocate_pinned(_check_nbytes(nbytes))


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
