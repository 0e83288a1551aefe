"""xpuruntime's memory pools from Python: stream-ordered buffers and statistics.

Every device has one caching pool (see docs/runtime.md). ``allocate`` returns a
``Buffer`` that goes back to the pool when freed, when its ``with`` block ends,
or when it is garbage collected, always ordered after the work queued on its
stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._arrays import INT64_MAX, index_arg
from ._device import Device, as_device
from ._native import InvalidArgumentError, OutOfMemoryError, core
from ._stream import as_stream, stream_for

__all__ = ["Buffer", "allocate", "allocate_pinned", "empty_cache", "reset_peak_stats",
           "set_limit", "stats", "snapshot"]


def _too_large(op: str, nbytes: int, device: Any) -> OutOfMemoryError:
    """The error for a request beyond any device's memory (more than the core's int64
    sizes), with the attributes the pool's own OutOfMemoryError has."""
    d = as_device(device)
    pool = core.device_pool(d.kind, d.index)
    s, free = pool.stats(), pool.device_free_bytes()
    err = OutOfMemoryError(
        f"out of memory on {d}: tried to allocate {nbytes} bytes ({op}), more than any device has; "
        f"{s['allocated_bytes']} bytes allocated, {s['reserved_bytes']} bytes reserved by xpuruntime, "
        f"{free} bytes free on the device")
    err.device, err.requested_bytes, err.allocated_bytes = str(d), nbytes, s["allocated_bytes"]
    err.reserved_bytes, err.device_free_bytes, err.limit_bytes = s["reserved_bytes"], free, s["limit"]
    return err


def _check_nbytes(nbytes: Any, device: Any = None, op: str = "allocate", name: str = "nbytes") -> int:
    """A size in bytes: an int >= 0. Sizes beyond the core's int64 raise OutOfMemoryError
    (no device has that much); ``allocate``'s fast path calls this for anything but a
    plain int that fits."""
    if type(nbytes) is int and 0 <= nbytes <= INT64_MAX:  # the common case, kept cheap
        return nbytes
    n = index_arg(nbytes, op, name)
    if n < 0:
        raise InvalidArgumentError(f"{op}: negative size {n} ('{name}' must be >= 0)")
    if n > INT64_MAX:
        raise _too_large(op, n, device)
    return n


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
    return core.allocate_pinned(_check_nbytes(nbytes, "cpu", "allocate_pinned"))


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
    """Caps the bytes the pool reserves; requests beyond it raise OutOfMemoryError.

    ``nbytes``: an int in ``[0, 2**63)``; 0 removes the cap."""
    n = index_arg(nbytes, "set_limit", "nbytes")
    if n < 0:
        raise InvalidArgumentError(f"set_limit: negative limit {n} ('nbytes' must be >= 0; 0 removes the limit)")
    if n > INT64_MAX:
        raise InvalidArgumentError(
            f"set_limit: limit {n} is beyond any device's memory ('nbytes' must be < 2**63; 0 removes the limit)")
    _pool(device)[1].set_limit(n)
