"""The fuzz harness itself: a case that gets a wrong answer, a wrong gradient, a bad call
accepted, a refusal of the wrong type, a crash or a hang fails, with its kind and its
case named, through every op frontend (faults injected into the child's call of the real
frontend, see _child.inject_after); the same cases without a fault pass; and a failing
case fails the pytest test that ran it."""

from __future__ import annotations

import copy
import importlib.util

import numpy as np
import pytest
from hypothesis import strategies as st

import _child
import _fuzz
import _runner
from _verdict import BAD_ERROR, CRASH, RIGHT, WRONG

CONTAINERS = {"native": "numpy", "jax": "jax", "torch": "torch", "onnxruntime": "onnx"}
NEEDS = {"jax": "jax", "torch": "torch", "onnxruntime": "onnxruntime"}


def _input(shape, dtype="float32", role="rows"):
    return {"shape": shape, "dtype": dtype, "role": role, "layout": "dense", "values": "normal"}


def case(frontend, expect="valid", inject=None, grad=False, op="rms_norm"):
    """A valid rms_norm (or softmax) forward call of [3, 2, 16] float32 rows; with
    ``expect="invalid"`` its x is int32 (the op must refuse it, naming 'x')."""
    x = _input([3, 2, 16], "int32" if expect == "invalid" else "float32")
    inputs = [x, _input([16], role="parameter"), None] if op == "rms_norm" else [x]
    plain = {"eps": 1e-6} if op == "rms_norm" else {"scale": 1.0}
    c = {"frontend": frontend, "container": CONTAINERS[frontend], "op": op,
         "direction": "forward", "seed": 7, "expect": expect,
         "names": ["x", "weight"] if expect == "invalid" else [],
         "why": "dtype of 'x' is int32" if expect == "invalid" else "", "inputs": inputs,
         "plain_attrs": plain, "grad": grad, "jit": False, "return_stats": False}
    if frontend == "onnxruntime":
        c["onnx_attrs"] = {}
    else:
        c["attrs"] = {}
    if inject:
        c["inject"] = inject
    c["harness"] = True  # counted apart from the suite's own cases (conftest's summary)
    return c


def requires(frontend):
    module = NEEDS.get(frontend)
    if module and importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed")


def verdicts(cases, timeout=_runner.TIMEOUT_S):
    """{index: failure reason or None} after running ``cases`` in one child."""
    failures = _runner.run_cases(cases, timeout)
    by_case = {_runner._key(c): why for c, why in failures}
    return [by_case.get(_runner._key(c)) for c in cases]


@pytest.mark.parametrize("frontend", list(CONTAINERS))
def test_faults_of_a_frontend_fail_their_case(frontend):
    requires(frontend)
    autodiff = frontend in ("jax", "torch")
    cases = [case(frontend), case(frontend, inject="wrong"), case(frontend, op="softmax"),
             case(frontend, op="softmax", inject="wrong"),
             case(frontend, "invalid"), case(frontend, "invalid", inject="accept"),
             case(frontend, "invalid", inject="type_error")]
    if autodiff:
        cases += [case(frontend, grad=True), case(frontend, grad=True, inject="wrong_gradient")]
    got = verdicts(cases)
    assert got[0] is None and got[2] is None and got[4] is None, got  # no fault: they pass
    assert got[1].startswith(f"[{WRONG}]") and "relative error" in got[1], got[1]
    assert got[3].startswith(f"[{WRONG}]") and "relative error" in got[3], got[3]
    assert got[5].startswith(f"[{WRONG}] accepted an invalid case"), got[5]
    assert got[6].startswith(f"[{BAD_ERROR}] not a project error type"), got[6]
    if autodiff:
        assert got[7] is None, got[7]
        assert got[8].startswith(f"[{WRONG}] gradient d"), got[8]
    assert _runner.kinds(cases)[RIGHT] == 2 + autodiff


def test_a_crash_fails_its_case_and_the_batch_goes_on():
    cases = [case("native"), case("native", inject="crash"), case("native", op="softmax")]
    got = verdicts(cases)
    assert got[0] is None and got[2] is None, got
    assert got[1].startswith(f"[{CRASH}] crashed: the child died with return code"), got[1]
    assert _runner.kinds(cases)[CRASH] == 1


def test_a_hang_fails_its_case():
    # (A child slower than the timeout to start is a timed-out case too: the same verdict.)
    got = verdicts([case("native", inject="hang")], timeout=5)
    assert got[0].startswith(f"[{CRASH}] crashed: the child timed out"), got[0]


def test_a_failing_case_fails_the_test_with_its_reproducer():
    bad = case("native", inject="wrong")
    with pytest.raises(AssertionError) as info:
        _fuzz.fuzz(st.just(bad), 1, 1, "harness self-test (an injected wrong answer)")
    text = str(info.value)
    assert "1 fuzz case(s) failed" in text and "XPU_FUZZ_SEED=" in text
    assert "reproduce: python -P tests/fuzz/_child.py --case" in text
    summary = dict(_fuzz.SUMMARIES)["harness self-test (an injected wrong answer)"]
    assert summary["kinds"] == {WRONG: 1} and summary["generated"] == summary["ran"] == 1


def test_fewer_cases_than_asked_for_fail_the_test():
    # st.just draws one distinct case: asking for two must not pass as two.
    with pytest.raises(AssertionError, match="2 cases asked for, 1 drawn"):
        _fuzz.fuzz(st.just(case("native")), 2, 2, "harness self-test (too few cases)")


# ---- the comparison, in this process ---------------------------------------------------------------

def test_compare_catches_what_tolerances_do_not_allow():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 32))
    assert _child.compare("y", ref.astype(np.float32), ref, 1e-5, None) is None
    off = ref * (1 + 3e-5)
    assert "relative error" in _child.compare("y", off, ref, 1e-5, None)
    nan = ref.copy()
    nan[1, 3] = np.nan
    assert "NaN where the reference has a number" in _child.compare("y", nan, ref, 1e-5, None)
    assert "a number where the reference has NaN" in _child.compare("y", ref, nan, 1e-5, None)
    assert "shape" in _child.compare("y", ref[:3], ref, 1e-5, None)
    inf = ref.copy()
    inf[0, 0] = np.inf
    assert "infinities" in _child.compare("y", ref, inf, 1e-5, None)
    ints = np.arange(6)
    assert "integers differ" in _child.compare("i", ints[::-1], ints, 0.0, None)
    # Rows holding NaN on purpose are left out, the others still compared.
    mask = np.array([True, False, True, True])
    assert _child.compare("y", np.where(mask[:, None], ref, 0.0), ref, 1e-5, mask) is None
    worse = copy.deepcopy(ref)
    worse[0] += 1
    assert "relative error" in _child.compare("y", worse, ref, 1e-5, mask)
