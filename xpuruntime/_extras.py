"""Optional frontends: import them with a message naming the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise ImportError telling to ``pip install xpuruntime[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"xpuruntime: this needs {module!r}; install it with `pip install xpuruntime[{extra}]`"
        ) from exc
