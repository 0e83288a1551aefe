"""The runtime API fuzzed with short programs (see _runtime_cases.py): sizes incl.
bools, floats, negative and huge ones, fills, limits, arrays, stream enter/exit
misuse, double free and views after free. Each batch runs in one child process."""

from __future__ import annotations

import math

from hypothesis import given, settings, strategies as st

import _runner
from _runtime_cases import runtime_case
from conftest import SCALE
from test_fuzz_ops import Batch

BATCHES, SIZE = 3, 100


def test_runtime():
    @settings(settings.get_profile("fuzz"), max_examples=max(1, math.ceil(BATCHES * SCALE)))
    @given(st.lists(runtime_case(), min_size=SIZE, max_size=SIZE).map(Batch))
    def run(batch):
        failures = _runner.run_cases(batch.cases)
        assert not failures, _runner.report(failures)

    run()
