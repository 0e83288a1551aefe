"""Loads the compiled core and gives a clear message when it is missing."""

from __future__ import annotations

try:
    from . import _core  # noqa: F401
except ImportError as exc:  # pragma: no cover - only without a build
    raise ImportError(
        "xpuruntime's compiled core (_core) is not importable; install the package with "
        "`pip install .` (it builds the C++/CUDA core)"
    ) from exc

core = _core
Error = _core.Error
InvalidArgumentError = _core.InvalidArgumentError  # also a ValueError
InvalidArgumentTypeError = _core.InvalidArgumentTypeError  # also a TypeError: wrong Python type
KernelNotFoundError = _core.KernelNotFoundError
OutOfMemoryError = _core.OutOfMemoryError
