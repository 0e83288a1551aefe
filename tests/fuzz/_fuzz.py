"""The fuzz suite's budget and seed, and the one call every fuzz test makes.

XPU_FUZZ_SEED fixes the seed the tests draw their cases with (printed with each
failure and in pytest's header; default: a fresh one a run). XPU_FUZZ_SCALE
multiplies the number of cases (e.g. 5 for a longer local run). XPU_FUZZ_LOG names
a JSON-lines file that collects every failing case. XPU_FUZZ_SUMMARY names a
JSON-lines file that gets each test's summary (CI keeps the counts). XPU_FUZZ_WORKERS:
child processes at a time (default 2).

Each test prints one summary line (cases generated, run, and their verdicts, see
_verdict.py) and records it as the test's ``fuzz`` property (pytest's junit XML).
(No conftest.py here: tests/conftest.py is imported as ``conftest`` by the tests
next to it; it prints every test's line and the cases run per frontend.)
"""

from __future__ import annotations

import json
import os
import random
import time

import _runner
from _verdict import FAILURES, PASSES

SCALE = float(os.environ.get("XPU_FUZZ_SCALE", "1"))
SEED = int(os.environ.get("XPU_FUZZ_SEED") or random.SystemRandom().randrange(2**32))
WORKERS = int(os.environ.get("XPU_FUZZ_WORKERS", "2"))


def seed_for(test_name: str) -> int:
    """The run's seed, varied per test (so that two tests do not draw alike)."""
    return (SEED + sum(map(ord, test_name))) % 2**32


# Every fuzz() call of this session: (test name, summary dict), for conftest's summary.
SUMMARIES: list[tuple[str, dict]] = []


def summary_line(test_name: str, s: dict) -> str:
    """``test: N generated, M run: a right, b refused, ... (seed)``: every verdict kind,
    failures included when there are none, so that a zero reads as counted."""
    kinds = s["kinds"]
    parts = [f"{kinds.get(k, 0)} {k}" for k in PASSES if kinds.get(k)]
    parts += [f"{kinds.get(k, 0)} {k}" for k in FAILURES]
    return (f"{test_name}: {s['generated']} generated, {s['ran']} run in {s['seconds']:.0f} s: "
            f"{', '.join(parts)} (XPU_FUZZ_SEED={SEED})")


def fuzz(strategy, n: int, size: int, test_name: str, record=None) -> dict:
    """Draws ``n * SCALE`` distinct cases from ``strategy``, runs them in child processes,
    ``size`` a child, prints the summary line (and hands it to ``record``, pytest's
    ``record_property``), and fails with every failing case, its reproducer and the seed,
    or when fewer cases than asked for were drawn or run. Returns the summary."""
    seed = seed_for(test_name)
    want = max(1, round(n * SCALE))
    start = time.monotonic()
    cases = _runner.generate(strategy, want, seed)
    failures = _runner.run_batches(cases, size, WORKERS)
    kinds = _runner.kinds(cases)
    summary = {"test": test_name, "seed": SEED, "generated": len(cases),
               "ran": sum(v for k, v in kinds.items() if k != "not run"),
               "kinds": dict(kinds), "seconds": time.monotonic() - start}
    SUMMARIES.append((test_name, summary))
    line = summary_line(test_name, summary)
    print(line)
    if record is not None:
        record("fuzz", line)
    path = os.environ.get("XPU_FUZZ_SUMMARY")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(summary) + "\n")
    assert not failures, _runner.report(failures, seed)
    assert summary["generated"] == summary["ran"] == want, (
        f"{test_name}: {want} cases asked for, {summary['generated']} drawn, {summary['ran']} run")
    return summary
