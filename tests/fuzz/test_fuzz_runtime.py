"""The runtime API fuzzed with short programs (see _runtime_cases.py): sizes incl.
bools, floats, negative and huge ones, fills, limits, arrays, stream enter/exit
misuse, double free and views after free. Each batch runs in one child process."""

from __future__ import annotations

from _runtime_cases import runtime_case
from _fuzz import fuzz


def test_runtime(request, record_property):
    fuzz(runtime_case(), 500, 250, request.node.name, record_property)
