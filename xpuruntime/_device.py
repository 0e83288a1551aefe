"""Devices: the CPU always, CUDA devices when a driver and a GPU are present.

The current device is thread-local. Without an explicit choice it is ``cuda:0``
when a CUDA device exists, else ``cpu``.
"""

from __future__ import annotations

import os
import platform
import threading
from typing import Any

from ._native import InvalidArgumentError, InvalidArgumentTypeError, core

_local = threading.local()


def _cuda_count() -> int:
    return int(core.cuda_device_count())


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _sysconf(name: str) -> int | None:
    try:
        v = os.sysconf(name)
    except (ValueError, OSError, AttributeError):
        return None
    return int(v) if v and v > 0 else None


class Device:
    """A device: ``Device("cpu")``, ``Device("cuda", 1)``, ``Device("cuda:1")`` or ``Device(1)``.

    Invalid kinds or indices raise ``xpuruntime.InvalidArgumentError`` (a ValueError).
    ``with device:`` makes it the calling thread's current device.
    """

    __slots__ = ("kind", "index", "_saved", "_code")

    def __init__(self, kind: Any = "cpu", index: int | None = None):
        if isinstance(kind, Device):
            kind, index = kind.kind, kind.index if index is None else index
        elif isinstance(kind, int) and not isinstance(kind, bool):
            kind, index = "cuda", kind
        elif isinstance(kind, str) and ":" in kind:
            kind, _, idx = kind.partition(":")
            try:
                index = int(idx)
            except ValueError:
                raise InvalidArgumentError(f"invalid device string {kind}:{idx!r}") from None
        if not isinstance(kind, str) or kind not in ("cpu", "cuda"):
            raise InvalidArgumentError(f"unknown device kind {kind!r} (expected 'cpu' or 'cuda')")
        if index is None:
            index = 0
        if not isinstance(index, int) or isinstance(index, bool):
            raise InvalidArgumentTypeError(f"device index must be an int, got {type(index).__name__}")
        if kind == "cpu" and index != 0:
            raise InvalidArgumentError(f"invalid CPU device index {index} (only cpu:0 exists)")
        if kind == "cuda":
            n = _cuda_count()
            if not 0 <= index < n:
                raise InvalidArgumentError(
                    f"invalid CUDA device index {index} ({n} CUDA device{'' if n == 1 else 's'} visible)")
        self.kind = kind
        self.index = index
        self._saved = []
        self._code = -1 if kind == "cpu" else index  # what memory.allocate reads (one lookup)

    # ---- facts ----
    def _props(self) -> dict:
        return core.device_properties(self.index) if self.kind == "cuda" else {}

    @property
    def name(self) -> str:
        return self._props()["name"] if self.kind == "cuda" else _cpu_name()

    @property
    def compute_capability(self) -> tuple[int, int] | None:
        return tuple(self._props()["compute_capability"]) if self.kind == "cuda" else None

    @property
    def multiprocessor_count(self) -> int:
        return self._props()["multiprocessor_count"] if self.kind == "cuda" else (os.cpu_count() or 1)

    @property
    def total_memory(self) -> int:
        if self.kind == "cuda":
            return self._props()["total_memory"]
        return int(core.device_pool("cpu", 0).device_total_bytes())

    @property
    def free_memory(self) -> int:
        if self.kind == "cuda":
            return self._props()["free_memory"]
        return int(core.device_pool("cpu", 0).device_free_bytes())

    @property
    def l2_cache_size(self) -> int | None:
        if self.kind == "cuda":
            return self._props()["l2_cache_size"]
        return _sysconf("SC_LEVEL2_CACHE_SIZE")

    def properties(self) -> dict:
        """Every fact as a dict (one driver query for CUDA devices)."""
        if self.kind == "cuda":
            p = dict(self._props())
            p["compute_capability"] = tuple(p["compute_capability"])
        else:
            p = {"name": _cpu_name(), "compute_capability": None,
                 "multiprocessor_count": os.cpu_count() or 1,
                 "total_memory": self.total_memory, "free_memory": self.free_memory,
                 "l2_cache_size": self.l2_cache_size}
        return {"device": str(self), "kind": self.kind, "index": self.index, **p}

    # ---- current device ----
    def __enter__(self) -> "Device":
        self._saved.append(getattr(_local, "device", None))
        _activate(self)
        return self

    def __exit__(self, *exc) -> None:
        if not self._saved:
            raise InvalidArgumentError(f"Device.__exit__: {self} was not entered (__exit__ without __enter__)")
        prev = self._saved.pop()
        _set_local_device(prev)
        if prev is not None and prev.kind == "cuda":
            core.cuda_set_device(prev.index)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and (self.kind, self.index) == (other.kind, other.index)

    def __hash__(self) -> int:
        return hash((self.kind, self.index))

    def __str__(self) -> str:
        return f"{self.kind}:{self.index}"

    def __repr__(self) -> str:
        return f"Device({self.kind!r}, {self.index})"


def _set_local_device(d: Device | None) -> None:
    _local.device = d
    # The extension keeps a thread-local copy so that memory.allocate resolves
    # the default device without calling back into Python.
    core._set_thread_device(-2 if d is None else (-1 if d.kind == "cpu" else d.index))


def _activate(d: Device) -> None:
    if d.kind == "cuda":
        core.cuda_set_device(d.index)
    _set_local_device(d)


def devices() -> list[Device]:
    """The CPU device, then every usable CUDA device (none without a driver or GPU)."""
    return [Device("cpu")] + [Device("cuda", i) for i in range(_cuda_count())]


def get_device() -> Device:
    """The calling thread's current device (default: cuda:0 when present, else cpu)."""
    d = getattr(_local, "device", None)
    if d is None:
        d = Device("cuda", 0) if _cuda_count() > 0 else Device("cpu")
    return d


def set_device(device: Any) -> Device:
    """Makes ``device`` current for the calling thread (and CUDA's current device)."""
    d = as_device(device)
    _activate(d)
    return d


def as_device(device: Any) -> Device:
    """``None`` is the current device; anything ``Device()`` accepts is converted."""
    if device is None:
        return get_device()
    if isinstance(device, Device):
        return device
    return Device(device)
