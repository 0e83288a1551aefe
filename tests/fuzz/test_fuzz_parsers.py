"""What the runtimes parse, fuzzed through them (TensorRT's plugin fields are in
test_fuzz_tensorrt.py):

- ONNX node attributes of every op (wrong ONNX types, tensors, graphs, untyped, bytes that
  are no UTF-8, values out of range, misspelled, given twice, bad policies), in sessions
  made by ``xpuruntime.interop.onnxruntime`` (its Python model check first) and by plain
  ``onnxruntime`` with the library registered (the C++ custom-op parser alone);
- model files for ``xpuruntime.InferenceSession`` (see _model_cases.py): valid one-node
  models of every op, truncated, bits flipped, bytes overwritten, inserted, deleted or
  repeated, garbage, or a protobuf field broken, as bytes and as files.

Each batch runs in one child process."""

from __future__ import annotations

import importlib.util

import pytest

import _cases
from _fuzz import fuzz
from _model_cases import model_case


def require_ort():
    for module in ("onnxruntime", "onnx"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    from xpuruntime.interop import onnxruntime as xo
    if xo.library_path(missing_ok=True) is None:
        pytest.skip("libxpuruntime_ort.so is not built")


def test_onnx_attributes(request, record_property):
    require_ort()
    fuzz(_cases.op_case("onnxruntime", changes=("attr", "attr", "attr", "policy", "env_policy")),
         400, 200, request.node.name, record_property)


def test_model_files(request, record_property):
    require_ort()
    fuzz(model_case(), 600, 300, request.node.name, record_property)
