"""pytest setup for the whole suite: CUDA cases skip without a device, and the ``rng``
fixture. The helpers live in helpers.py (tolerances, devices, error norms) and the
float64 references in references.py; the helpers are re-exported here for test files
that import them from ``conftest``."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from helpers import (DEVICES, DTYPES, HAS_JAX, HAS_TORCH, JAX_PLATFORMS, POLICIES,  # noqa: F401
                     TOLERANCE, TORCH_DEVICES, assert_close, jax_gpu_available, random_inputs,
                     rel_err, to_numpy, torch_cuda_available)


def pytest_collection_modifyitems(config, items):
    skip_torch = pytest.mark.skip(reason="no CUDA device visible to torch")
    skip_jax = pytest.mark.skip(reason="no GPU visible to jax")
    for item in items:
        if "gpu" not in item.keywords:
            continue
        params = getattr(item, "callspec", None)
        values = params.params.values() if params else ()
        if "cuda" in values and not torch_cuda_available():
            item.add_marker(skip_torch)
        if "gpu" in values and not jax_gpu_available():
            item.add_marker(skip_jax)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---- the fuzz suite's summary (tests/fuzz) ---------------------------------------------------

def pytest_report_header(config):
    fuzz = sys.modules.get("_fuzz")
    return None if fuzz is None else f"fuzz: XPU_FUZZ_SEED={fuzz.SEED}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """The fuzz suite's line per test, and the cases it ran per frontend by verdict kind
    (tests/fuzz/_verdict.py), when it ran."""
    runner, fuzz = sys.modules.get("_runner"), sys.modules.get("_fuzz")
    counts = runner.counts() if runner is not None else {}
    if not counts:
        return
    from _verdict import FAILURES
    tr = terminalreporter
    tr.section("fuzz cases per test")
    for name, s in fuzz.SUMMARIES:
        tr.write_line(fuzz.summary_line(name, s))
    tr.section("fuzz cases per frontend")
    total = {}
    for fe, kinds in counts.items():
        n = sum(kinds.values())
        total[fe] = n
        failed = ", ".join(f"{kinds.get(k, 0)} {k}" for k in FAILURES)
        tr.write_line(f"{fe:>12}: {n:5d} cases; {failed}")
    bad = sum(kinds.get(k, 0) for kinds in counts.values() for k in FAILURES)
    tr.write_line(f"{'total':>12}: {sum(total.values()):5d} cases, {bad} failed "
                  f"(XPU_FUZZ_SEED={fuzz.SEED})")
