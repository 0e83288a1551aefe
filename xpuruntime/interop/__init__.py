"""Bridges to other frameworks: ``torch``, ``onnxruntime`` (each imported on demand).

``xpuruntime.interop.torch`` is reachable as an attribute without importing it
first; it raises ImportError naming the extra when its framework is missing.
"""

from __future__ import annotations

import importlib
import pkgutil

# Every bridge module of this package, found on disk: none is imported until used.
_BRIDGES = tuple(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def __getattr__(name: str):
    if name in _BRIDGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'xpuruntime.interop' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_BRIDGES))
