"""Every op of the op specs, fuzzed through every frontend (see _cases.py for what is
generated and _child.py for how a result is judged). Cases run in child processes,
a batch per child; a crash fails the test and names the case."""

from __future__ import annotations

import importlib.util

import pytest

import _cases
from _fuzz import fuzz

# Cases per frontend and per child process (a child costs its imports: jax and torch
# about 2 s): 2,000 here, 4,500 a run with the runtime, parser and TensorRT tests
# (docs/fuzzing.md).
BUDGET = {"native": (800, 200), "jax": (300, 75), "torch": (450, 150), "onnxruntime": (450, 150)}
NEEDS = {"jax": "jax", "torch": "torch", "onnxruntime": "onnxruntime"}


@pytest.mark.parametrize("frontend", list(BUDGET))
def test_ops(frontend, request, record_property):
    module = NEEDS.get(frontend)
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    n, size = BUDGET[frontend]
    fuzz(_cases.op_case(frontend), n, size, request.node.name, record_property)

