"""Where the libraries that frameworks load (ONNX Runtime, TensorRT) are installed."""

from __future__ import annotations

import pathlib
from typing import Optional


def packaged_library(name: str, missing_ok: bool, why_missing: str) -> Optional[str]:
    """Absolute path of ``xpuruntime/lib/<name>``; when this build has none, None with
    ``missing_ok``, else FileNotFoundError saying ``why_missing``."""
    path = pathlib.Path(__file__).resolve().parent.parent / "lib" / name
    if path.exists():
        return str(path)
    if missing_ok:
        return None
    raise FileNotFoundError(f"{path} does not exist: {why_missing}")
