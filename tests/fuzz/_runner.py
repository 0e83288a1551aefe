"""Runs batches of fuzz cases in child processes, so that a crash (a segfault, an
abort, a sanitizer report) fails the test naming the case instead of killing the run.

A child judges its cases one by one and prints each verdict as it goes; when it dies,
the first case without a verdict is re-run alone in a fresh child. If that case does
not crash alone, the batch is re-run one case per child to find the one that does;
a crash that needs the earlier cases of the batch is reported with all of them.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys

from _verdict import CRASH, HARNESS

CHILD = pathlib.Path(__file__).resolve().parent / "_child.py"
TIMEOUT_S = 600

# Verdicts of the distinct cases run in this session, per frontend: {frontend: {case key:
# kind}}, for conftest's summary (a case run twice is counted once, with its last verdict).
_VERDICTS: dict[str, dict[str, str]] = collections.defaultdict(dict)
_HARNESS = "(harness self-test) "  # the group of test_harness.py's cases


def counts() -> dict[str, collections.Counter]:
    """{frontend: Counter of verdict kinds} over the distinct cases run in this session
    (the harness's self-test cases left out)."""
    return {fe: collections.Counter(v.values()) for fe, v in sorted(_VERDICTS.items())
            if not fe.startswith(_HARNESS)}


def _key(case: dict) -> str:
    return json.dumps(case, sort_keys=True)


def _group(case: dict) -> str:
    """Where a case's verdict is counted: its frontend, or apart for the harness's own test."""
    return (_HARNESS if case.get("harness") else "") + case["frontend"]


def _run(cases: list[dict], timeout: float) -> tuple[list[dict], str, int | None]:
    """(verdicts printed, stderr tail, return code or None on a timeout)."""
    try:
        proc = subprocess.run([sys.executable, "-P", str(CHILD)], input=json.dumps(cases),
                              capture_output=True, text=True, timeout=timeout)
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        rc = None
    verdicts = []
    for line in out.splitlines():
        if line.startswith('{"i":'):
            verdicts.append(json.loads(line))
    return verdicts, err[-3000:], rc


def reproducer(case: dict) -> str:
    return f"python -P tests/fuzz/{CHILD.name} --case '{json.dumps(case)}'"


def _died(rc: int | None, err: str) -> str:
    what = "timed out" if rc is None else f"died with return code {rc}"
    return f"the child {what}; stderr tail:\n{err}"


def run_cases(cases: list[dict], timeout: float = TIMEOUT_S) -> list[tuple[dict, str]]:
    """Runs every case; returns (case, reason) for each one that failed, and records every
    case's verdict kind (see ``counts`` and ``kinds``)."""
    failures: list[tuple[dict, str]] = []
    kinds: dict[str, str] = {}
    rest = list(cases)
    while rest:
        verdicts, err, rc = _run(rest, timeout)
        for v in verdicts:
            kinds[_key(rest[v["i"]])] = v.get("kind", HARNESS)
            if not v["ok"]:
                failures.append((rest[v["i"]], f"[{v.get('kind', HARNESS)}] {v['msg']}"))
        done = len(verdicts)
        if done == len(rest):
            if rc not in (0,):
                kinds[_key(rest[-1])] = CRASH
                failures.append((rest[-1], f"[{CRASH}] the child exited badly after its last "
                                 "case: " + _died(rc, err)))
            break
        culprit = rest[done]
        alone, err1, rc1 = _run([culprit], timeout)
        if len(alone) == 1:
            # Not reproducible alone: look for a case of the batch that crashes on its own.
            found = None
            for c in rest[:done]:
                one, err2, rc2 = _run([c], timeout)
                if len(one) == 0:
                    found = (c, _died(rc2, err2))
                    break
            if found:
                kinds[_key(found[0])] = CRASH
                failures.append((found[0], f"[{CRASH}] crashed (found by re-running the batch "
                                 "one by one): " + found[1]))
                v = alone[0]  # the culprit's own verdict, alone
                kinds[_key(culprit)] = v.get("kind", HARNESS)
                if not v["ok"]:
                    failures.append((culprit, f"[{v.get('kind', HARNESS)}] {v['msg']}"))
            else:
                kinds[_key(culprit)] = CRASH
                prefix = json.dumps(rest[:done + 1])
                failures.append((culprit, f"[{CRASH}] crashed only after the earlier cases of its "
                                 f"batch (run them in one child: {prefix[:4000]}): "
                                 + _died(rc, err)))
        else:
            kinds[_key(culprit)] = CRASH
            failures.append((culprit, f"[{CRASH}] crashed: " + _died(rc1, err1)))
        rest = rest[done + 1:]
    log = os.environ.get("XPU_FUZZ_LOG")  # a JSON-lines file collecting every failure
    if log and failures:
        with open(log, "a") as f:
            for c, why in failures:
                f.write(json.dumps({"case": c, "why": why}) + "\n")
    for c in cases:  # a case without a verdict (the runner's own failure) counts as one
        _VERDICTS[_group(c)][_key(c)] = kinds.get(_key(c), HARNESS)
    return failures


def kinds(cases: list[dict]) -> collections.Counter:
    """The verdict kinds recorded for ``cases`` (after they ran)."""
    return collections.Counter(_VERDICTS[_group(c)].get(_key(c), "not run") for c in cases)


def generate(strategy, n: int, seed: int) -> list[dict]:
    """``n`` distinct cases drawn by hypothesis from ``strategy`` with ``seed`` (the same
    seed gives the same cases; hypothesis draws some cases twice, which are dropped and
    drawn again with the next seed). Cases are drawn first and run afterwards, in
    batches: a hypothesis example holds one case (a whole batch would overrun its buffer)."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed
    out: dict[str, dict] = {}
    for attempt in range(20):
        want = n - len(out)
        if want <= 0:
            break

        @with_seed(seed + attempt)
        @settings(max_examples=want + want // 4 + 1, database=None, deadline=None,
                  phases=(Phase.generate,), suppress_health_check=list(HealthCheck))
        @given(strategy)
        def collect(case):
            out.setdefault(_key(case), case)

        collect()
    return list(out.values())[:n]


def run_batches(cases: list[dict], size: int, workers: int = 2) -> list[tuple[dict, str]]:
    """``run_cases`` over batches of ``size`` cases, ``workers`` children at a time."""
    chunks = [cases[i:i + size] for i in range(0, len(cases), size)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(run_cases, chunks))
    return [f for r in results for f in r]


def report(failures: list[tuple[dict, str]], seed: int | None = None, limit: int = 12) -> str:
    lines = [f"{len(failures)} fuzz case(s) failed"
             + (f" (XPU_FUZZ_SEED={seed} draws these cases again):" if seed is not None else ":")]
    for case, why in failures[:limit]:
        lines.append(f"- {case['frontend']} {case['op']} {case['direction']} ({case['expect']}"
                     f"{': ' + case['why'] if case['why'] else ''}): {why}\n  reproduce: "
                     f"{reproducer(case)}")
    if len(failures) > limit:
        lines.append(f"... and {len(failures) - limit} more")
    return "\n".join(lines)
