"""The fuzz suite's budget and seed, and its summary: cases run per frontend.

XPU_FUZZ_SEED fixes the seed every test draws its cases with (printed with each
failure; default: a fresh one a run). XPU_FUZZ_SCALE multiplies the number of
cases (e.g. 5 for a longer local run). XPU_FUZZ_LOG names a JSON-lines file that
collects every failing case. XPU_FUZZ_WORKERS: child processes at a time (2).
"""

from __future__ import annotations

import os
import pathlib
import random
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _runner  # noqa: E402

SCALE = float(os.environ.get("XPU_FUZZ_SCALE", "1"))
SEED = int(os.environ.get("XPU_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
WORKERS = int(os.environ.get("XPU_FUZZ_WORKERS", "2"))


@pytest.fixture
def fuzz_seed(request) -> int:
    """The run's seed, varied per test (so that two tests do not draw alike)."""
    return (SEED + sum(map(ord, request.node.name))) % 2**32


def fuzz(strategy, n: int, size: int, seed: int) -> None:
    """Draws ``n * SCALE`` cases from ``strategy``, runs them in child processes and
    fails with every failing case, its reproducer and the seed."""
    cases = _runner.generate(strategy, max(1, round(n * SCALE)), seed)
    failures = _runner.run_batches(cases, size, WORKERS)
    assert not failures, _runner.report(failures, seed)


def pytest_report_header(config):
    return f"fuzz: XPU_FUZZ_SEED={SEED} (per test: + the test name's code points)"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    counts = _runner.counts()
    if not counts:
        return
    tr = terminalreporter
    tr.section("fuzz cases per frontend")
    for fe, (n, bad) in counts.items():
        tr.write_line(f"{fe:>12}: {n:5d} cases, {bad} failed")
    tr.write_line(f"{'total':>12}: {sum(n for n, _ in counts.values()):5d} cases, "
                  f"{sum(b for _, b in counts.values())} failed (XPU_FUZZ_SEED={SEED})")
