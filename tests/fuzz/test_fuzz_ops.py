"""Every op of the op specs, fuzzed through every frontend (see _cases.py for what is
generated and _child.py for how a result is judged). A batch of cases runs in one
child process; a crash fails the test and names the case."""

from __future__ import annotations

import importlib.util
import math

import pytest
from hypothesis import given, settings, strategies as st

import _cases
import _runner
from conftest import SCALE

# (batches, cases per batch) per frontend: about 2,000 cases in all. A child process
# costs its imports (jax and torch about 2 s), so batches are large.
BUDGET = {"native": (6, 100), "jax": (4, 60), "torch": (5, 80), "onnxruntime": (5, 100)}
NEEDS = {"jax": "jax", "torch": "torch", "onnxruntime": "onnxruntime"}


class Batch:
    """Cases of one child; printed short by hypothesis (each failing case is printed
    in full, with its reproducer, by the assertion)."""

    def __init__(self, cases: list[dict]):
        self.cases = cases

    def __repr__(self) -> str:
        return f"Batch({len(self.cases)} cases, seeds {[c['seed'] for c in self.cases[:3]]}...)"


def batches(frontend: str, size: int):
    return st.lists(_cases.op_case(frontend), min_size=size, max_size=size).map(Batch)


@pytest.mark.parametrize("frontend", list(BUDGET))
def test_ops(frontend):
    module = NEEDS.get(frontend)
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")
    n_batches, size = BUDGET[frontend]

    @settings(settings.get_profile("fuzz"), max_examples=max(1, math.ceil(n_batches * SCALE)))
    @given(batches(frontend, size))
    def run(batch):
        failures = _runner.run_cases(batch.cases)
        assert not failures, _runner.report(failures)

    run()
