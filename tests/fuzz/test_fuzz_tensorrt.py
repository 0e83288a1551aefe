"""TensorRT plugin field parsing fuzzed from the op specs (see _tensorrt.py), in the
lean runtime's real plugin registry (no GPU needed), in both phases (the runtime phase
is how an engine's serialized fields are read back): field types, counts, values, names,
duplicates, missing required fields, policies, and field data of random bytes (as a
corrupt engine would carry them). Runs where the plugin library was built (a CUDA build
with TensorRT headers) and a TensorRT module is importable."""

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
    fuzz(tensorrt_case(), 1000, 500, request.node.name, record_property)
