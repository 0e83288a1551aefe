"""The fuzz suite's budget and seed, and the one call every fuzz test makes.

XPU_FUZZ_SEED fixes the seed the tests draw their cases with (printed with each
failure and in pytest's header; default: a fresh one a run). XPU_FUZZ_SCALE
multiplies the number of cases (e.g. 5 for a longer local run). XPU_FUZZ_LOG names
a JSON-lines file that collects every failing case. XPU_FUZZ_WORKERS: child
processes at a time (default 2).

(No conftest.py here: tests/conftest.py is imported as ``conftest`` by the tests
next to it; it prints this suite's summary, the cases run per frontend.)
"""

from __future__ import annotations

import os
import random

import _runner

SCALE = float(os.environ.get("XPU_FUZZ_SCALE", "1"))
SEED = int(os.environ.get("XPU_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
WORKERS = int(os.environ.get("XPU_FUZZ_WORKERS", "2"))


def seed_for(test_name: str) -> int:
    """The run's seed, varied per test (so that two tests do not draw alike)."""
    return (SEED + sum(map(ord, test_name))) % 2**32


def fuzz(strategy, n: int, size: int, test_name: str) -> None:
    """Draws ``n * SCALE`` cases from ``strategy``, runs them in child processes,
    ``size`` a child, and fails with every failing case, its reproducer and the seed."""
    seed = seed_for(test_name)
    cases = _runner.generate(strategy, max(1, round(n * SCALE)), seed)
    failures = _runner.run_batches(cases, size, WORKERS)
    assert not failures, _runner.report(failures, seed)
