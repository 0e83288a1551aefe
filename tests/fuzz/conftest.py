"""The fuzz suite's budget (hypothesis settings) and its summary: cases run per frontend."""

from __future__ import annotations

import os
import sys
import pathlib

from hypothesis import HealthCheck, Phase, settings

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import _runner  # noqa: E402

# Each example is a batch of cases run in one child process, so examples are few
# and slow: no deadline, no shrinking (a failing batch names its failing cases and
# prints a one-line reproducer for each), hypothesis' reproduce blob printed.
settings.register_profile(
    "fuzz", deadline=None, print_blob=True, derandomize=False,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example))
# XPU_FUZZ_SCALE multiplies the number of batches (e.g. 5 for a longer local run).
SCALE = float(os.environ.get("XPU_FUZZ_SCALE", "1"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    counts = _runner.counts()
    if not counts:
        return
    tr = terminalreporter
    tr.section("fuzz cases per frontend")
    for fe, (n, bad) in counts.items():
        tr.write_line(f"{fe:>12}: {n:5d} cases, {bad} failed")
    tr.write_line(f"{'total':>12}: {sum(n for n, _ in counts.values()):5d} cases, "
                  f"{sum(b for _, b in counts.values())} failed")
