"""Streams and events. CUDA streams wrap cudaStream_t; on the CPU device they are
no-ops that still work (the host runs work to completion before returning).

The current stream is thread-local and per device; by default it is the legacy
default stream (handle 0).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ._arrays import int_arg
from ._device import Device, as_device
from ._native import InvalidArgumentError, InvalidArgumentTypeError, core

_local = threading.local()


def _stack() -> dict:
    s = getattr(_local, "streams", None)
    if s is None:
        s = _local.streams = {}
    return s


def foreign_handle(obj: Any, op: str = "Stream.from_handle", name: str = "handle") -> int | None:
    """cudaStream_t of an int, a __cuda_stream__ object or a torch-style ``cuda_stream``."""
    if isinstance(obj, Stream):
        return obj.handle
    if isinstance(obj, int) and not isinstance(obj, bool):
        return int_arg(obj, op, name, lo=0, hi=(1 << 64) - 1)
    proto = getattr(obj, "__cuda_stream__", None)
    if proto is not None:
        version, handle = proto() if callable(proto) else proto
        return int(handle)
    if hasattr(obj, "cuda_stream"):
        return int(obj.cuda_stream)
    if type(obj).__module__.startswith("cupy") and hasattr(obj, "ptr"):
        return int(obj.ptr)  # CuPy streams older than the __cuda_stream__ protocol
    return None


def _mirror(device: Device) -> None:
    """Copies the thread's current stream of a CUDA device into the extension,
    which memory.allocate reads instead of calling back into Python."""
    if device.kind == "cuda":
        st = _stack().get(device)
        core._set_thread_stream(device.index, st[-1].handle if st else 0)


class Stream:
    """A queue of device work. ``Stream(device=None, priority=0)`` creates (and owns)
    a CUDA stream on a CUDA device; ``Stream.from_handle(h)`` wraps one it does
    not own. Exposes ``__cuda_stream__`` and works as ``with xpuruntime.stream(s):``."""

    __slots__ = ("device", "priority", "_handle", "_owned", "__weakref__")

    def __init__(self, device: Any = None, priority: int = 0):
        self.device = as_device(device)
        self.priority = int_arg(priority, "Stream", "priority", lo=-(1 << 31), hi=(1 << 31) - 1)
        self._owned = False
        self._handle = 0
        if self.device.kind == "cuda":
            # As in CUDA and torch: a lower number is more urgent; clamped to the device's range.
            self._handle = int(core.stream_create(self.device.index, self.priority))
            self._owned = True

    @classmethod
    def from_handle(cls, handle: Any, device: Any = None) -> "Stream":
        """Wraps an existing stream (an int or an object exposing ``__cuda_stream__``); not owned."""
        h = foreign_handle(handle)
        if h is None:
            raise InvalidArgumentTypeError(
                f"Stream.from_handle: expected a stream handle or a __cuda_stream__ object, got {type(handle)!r}")
        s = cls.__new__(cls)
        s.device = as_device(device)
        s.priority = 0
        s._handle = h if s.device.kind == "cuda" else 0
        s._owned = False
        return s

    @property
    def handle(self) -> int:
        return self._handle

    def __cuda_stream__(self) -> tuple[int, int]:
        return (0, self._handle)

    def synchronize(self) -> None:
        if self.device.kind == "cuda":
            core.stream_synchronize(self.device.index, self._handle)

    def query(self) -> bool:
        """True when all work queued so far is done."""
        if self.device.kind == "cuda":
            return bool(core.stream_query(self.device.index, self._handle))
        return True

    def record(self, event: "Event | None" = None) -> "Event":
        ev = event if event is not None else Event(device=self.device)
        ev.record(self)
        return ev

    def wait(self, event_or_stream: Any) -> None:
        """Work queued on this stream afterwards waits for the event (or all work
        queued so far on the other stream). Does not block the host."""
        if isinstance(event_or_stream, Event):
            ev = event_or_stream
        else:
            other = event_or_stream if isinstance(event_or_stream, Stream) else \
                Stream.from_handle(event_or_stream, self.device)
            ev = other.record()
        if self.device.kind == "cuda" and ev._handle:
            core.stream_wait_event(self.device.index, self._handle, ev._handle)

    def __enter__(self) -> "Stream":
        _stack().setdefault(self.device, []).append(self)
        _mirror(self.device)
        return self

    def __exit__(self, *exc) -> None:
        st = _stack().get(self.device)
        if not st or st[-1] is not self:
            raise InvalidArgumentError(
                f"Stream.__exit__: {self!r} is not the current stream of {self.device} "
                "(__exit__ without a matching __enter__, or blocks exited out of order)")
        st.pop()
        _mirror(self.device)

    def __del__(self):
        if getattr(self, "_owned", False) and self._handle:
            try:
                core.stream_destroy(self.device.index, self._handle)
            except Exception:  # interpreter teardown
                pass
            self._handle = 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stream) and (self.device, self._handle) == (other.device, other._handle)

    def __hash__(self) -> int:
        return hash((self.device, self._handle))

    def __repr__(self) -> str:
        return f"Stream(device={self.device}, handle=0x{self._handle:x}, owned={self._owned})"


class Event:
    """A point in a stream. ``Event(timing=True)`` can measure ``elapsed_ms``."""

    __slots__ = ("device", "timing", "_handle", "_host_time", "_recorded")

    def __init__(self, timing: bool = False, device: Any = None):
        self.device = as_device(device)
        self.timing = bool(timing)
        self._handle = 0
        self._host_time = None
        self._recorded = False
        if self.device.kind == "cuda":
            self._handle = int(core.event_create(self.device.index, self.timing))

    def record(self, stream: Any = None) -> "Event":
        s = as_stream(stream, self.device)
        if self.device.kind == "cuda":
            core.event_record(self.device.index, self._handle, s.handle)
        else:
            self._host_time = time.perf_counter()
        self._recorded = True
        return self

    def query(self) -> bool:
        if self.device.kind == "cuda":
            return bool(core.event_query(self._handle))
        return True

    def synchronize(self) -> None:
        if self.device.kind == "cuda":
            core.event_synchronize(self._handle)

    def elapsed_ms(self, end: "Event") -> float:
        """Milliseconds from this event to ``end`` (both recorded, timing=True)."""
        if not isinstance(end, Event):
            raise InvalidArgumentTypeError(f"Event.elapsed_ms: 'end' must be an Event, got {type(end).__name__}")
        if not (self.timing and end.timing):
            raise InvalidArgumentError("Event.elapsed_ms needs two events created with timing=True")
        if not (self._recorded and end._recorded):
            raise InvalidArgumentError("Event.elapsed_ms needs two recorded events")
        if self.device.kind == "cuda":
            end.synchronize()
            return float(core.event_elapsed_ms(self._handle, end._handle))
        return (end._host_time - self._host_time) * 1e3

    def __del__(self):
        if getattr(self, "_handle", 0):
            try:
                core.event_destroy(self.device.index, self._handle)
            except Exception:
                pass
            self._handle = 0

    def __repr__(self) -> str:
        return f"Event(device={self.device}, timing={self.timing})"


def current_stream(device: Any = None) -> Stream:
    """The calling thread's current stream on ``device`` (default: current device)."""
    d = as_device(device)
    st = _stack().get(d)
    if st:
        return st[-1]
    return Stream.from_handle(0, d)


class stream:  # noqa: N801 - used as `with xpuruntime.stream(s):`
    """Makes ``s`` (a Stream, handle or ``__cuda_stream__`` object) current for its device."""

    def __init__(self, s: Any):
        self._s = s if isinstance(s, Stream) or s is None else Stream.from_handle(s)

    def __enter__(self) -> Stream | None:
        if self._s is not None:
            self._s.__enter__()
        return self._s

    def __exit__(self, *exc) -> None:
        if self._s is not None:
            self._s.__exit__(*exc)


def as_stream(s: Any, device: Device) -> Stream:
    """None: ``device``'s current stream; a Stream; or a foreign handle/object."""
    if s is None:
        return current_stream(device)
    if isinstance(s, Stream):
        return s
    return Stream.from_handle(s, device)


def stream_for(s: Any, device: Device) -> int:
    """The handle to allocate on ``device`` with: 0 on the CPU; ``s`` or the current stream
    on CUDA. An ``xpuruntime.Stream`` of another device is an error."""
    if isinstance(s, Stream) and s.device != device:
        raise InvalidArgumentError(f"stream of {s.device} used for an allocation on {device}")
    handle = as_stream(s, device).handle  # checks what `s` is on the CPU too
    return handle if device.kind == "cuda" else 0
