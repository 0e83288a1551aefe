"""TensorRT plugin field parsing fuzzed from the op specs (see _tensorrt.py), in the
lean runtime's real plugin registry (no GPU needed). Runs where the plugin library
was built (a CUDA build with TensorRT headers) and a TensorRT module is importable."""

from __future__ import annotations

import importlib.util

import pytest

from _tensorrt import tensorrt_case
from _fuzz import fuzz


def test_tensorrt_fields(request, record_property):
    from xpuruntime.interop import tensorrt as xt
    if xt.library_path(missing_ok=True) is None:
        pytest.skip("xpuruntime was built without the TensorRT plugin library")
    if not any(importlib.util.find_spec(m) for m in xt._MODULES):
        pytest.skip("neither tensorrt nor tensorrt_lean is installed")
    fuzz(tensorrt_case(), 300, 150, request.node.name, record_property)
