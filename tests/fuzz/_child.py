"""Runs fuzz cases in this (child) process and judges each one: reads a JSON list of
cases on stdin, prints one JSON line per case as soon as it is judged
({"i": index, "ok": bool, "msg": text}), so that a crash leaves the cases done
before it on record and names the one that killed the process.

    python -P tests/fuzz/_child.py < cases.json     # or: --case '<one case as JSON>'

A case passes when the frontend returns the float64 reference's answer (within
OPS.md's tolerances) or, where the case allows it, raises one of the project's
error types with a message naming the op and the argument at fault.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pathlib
import re
import sys
import traceback

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # the fuzz helpers and references (not the source tree)

import numpy as np  # noqa: E402

import frontends  # noqa: E402  (tests/frontends.py: the op tests call frontends through it too)
import references  # noqa: E402  (tests/references.py: float64, torch autograd)
from _make import make_input, np_dtype, to_f64, dtype_of  # noqa: E402
from _verdict import (HARNESS, NOT_APPLICABLE, PASSES, REFUSED, RIGHT, WRONG,  # noqa: E402
                      BadError, FalseRefusal, Harness, Problem, Wrong, kind_of)
from xpuruntime import _spec  # noqa: E402
import xpuruntime  # noqa: E402

TOLERANCE = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2}


# ---- what a right error is -------------------------------------------------------------------------

def project_errors(frontend: str) -> tuple:
    """Exception types a frontend may raise for bad input: the project's, and for ONNX
    Runtime the errors its session API turns a kernel's status into."""
    types = [xpuruntime.Error, ValueError]
    if frontend == "onnxruntime":
        from onnxruntime.capi import onnxruntime_pybind11_state as s
        # run_with_iobinding reports a kernel's failed status as a plain RuntimeError.
        types += [s.Fail, s.InvalidArgument, s.InvalidGraph, s.RuntimeException, RuntimeError]
    if frontend == "jax":
        # A check only the kernel can make (a label's value) fails the FFI call at run
        # time, which XLA raises as its own JaxRuntimeError with the core's message.
        import jax
        types.append(jax.errors.JaxRuntimeError)
    return tuple(types)


def names_word(msg: str, word: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", msg) is not None


def judge_error(case: dict, spec, exc: BaseException) -> Problem | None:
    """None when ``exc`` is a right refusal of this case, else what is wrong with it."""
    msg = f"{type(exc).__name__}: {exc}"
    if case["expect"] == "valid":
        return FalseRefusal(f"raised on a valid case: {msg[:1500]}")
    if not isinstance(exc, project_errors(case["frontend"])):
        return BadError(f"not a project error type: {msg[:1500]}")
    text = str(exc)
    if not (names_word(text, spec.op) or names_word(text, spec.onnx_type)):
        return BadError(f"message does not name the op {spec.op!r}: {msg[:1500]}")
    if not any(names_word(text, n) for n in case["names"]):
        return BadError(f"message names none of {case['names']}: {msg[:1500]}")
    return None


# ---- comparison ------------------------------------------------------------------------------------

def _masked(got, ref, row_mask):
    """(got, ref) flattened to the rows ``row_mask`` keeps, or None for a reduction over
    rows that hold NaN/Inf on purpose (nothing to compare but the absence of a crash)."""
    if row_mask is None:
        return got, ref
    if ref.ndim >= row_mask.ndim and ref.shape[:row_mask.ndim] == row_mask.shape:
        keep = np.broadcast_to(row_mask.reshape(row_mask.shape + (1,) * (ref.ndim - row_mask.ndim)),
                               ref.shape)
        return got[keep], ref[keep]
    return (got, ref) if row_mask.all() else None


def compare(name: str, out, ref: np.ndarray, tol: float, row_mask: np.ndarray | None,
            scale: np.ndarray | None = None) -> Wrong | None:
    """None when ``out`` matches ``ref``: same shape, NaN and infinities where ref has
    them, relative norm error <= tol elsewhere. ``row_mask`` (over the leading axes)
    leaves out rows whose inputs hold NaN/Inf on purpose. For gradients, ``scale`` (the
    vjp with the row statistics held constant: the terms the closed-form backward adds
    up) is the norm the error is measured against where it exceeds ``ref``'s: at
    rms_norm's N = 1 the true gradient cancels to ~eps and an f32 kernel given f32
    statistics cannot do better than f32 of the terms."""
    got = to_f64(out)
    ref = np.asarray(ref)
    if tuple(got.shape) != tuple(ref.shape):
        return Wrong(f"{name}: shape {tuple(got.shape)}, expected {tuple(ref.shape)}")
    masked = _masked(got, ref, row_mask)
    if masked is None:
        return None
    got, ref = masked
    if ref.dtype.kind in "iu":
        if not np.array_equal(got, ref):
            bad = np.argwhere(got != ref)[:3].tolist()
            return Wrong(f"{name}: integers differ at {bad}")
        return None
    nan_ref, nan_got = np.isnan(ref), np.isnan(got)
    if not np.array_equal(nan_ref, nan_got):
        where = np.argwhere(nan_ref != nan_got)[:3].tolist()
        what = ("NaN where the reference has a number" if nan_got[tuple(where[0])]
                else "a number where the reference has NaN")
        return Wrong(f"{name}: {what} (at {where})")
    inf = np.isinf(ref)
    if not np.array_equal(got[inf], ref[inf]) or np.isinf(got[~inf & ~nan_ref]).any():
        return Wrong(f"{name}: infinities differ from the reference")
    fin = ~nan_ref & ~inf
    denom = np.linalg.norm(ref[fin])
    if scale is not None:
        sc = _masked(np.asarray(scale), np.asarray(scale), row_mask)
        if sc is not None and sc[1].shape == fin.shape and np.isfinite(sc[1][fin]).all():
            denom = max(denom, np.linalg.norm(sc[1][fin]))
    denom = denom if denom > 0 else 1.0
    err = np.linalg.norm(got[fin] - ref[fin]) / denom
    limit = tol
    if not err <= limit:
        return Wrong(f"{name}: relative error {err:.3g} > {limit:.3g}")
    return None


def expected_dtype(spec, o, dtypes_by_index) -> str:
    return dtypes_by_index[o.ref] if o.dtype == "like_ref" else {"f32": "float32", "i32": "int32"}[o.dtype]


# ---- building the inputs -------------------------------------------------------------------------

def build(case: dict, spec, rng):
    """(framework inputs, f64 values as the kernel sees them, row mask or None, the forward
    inputs and attrs the reference evaluates, the reference's forward outputs)."""
    attrs = case["plain_attrs"]
    fwd = _spec.get(spec.op, _spec.FORWARD)
    n_cols = None
    container = case["container"]
    if spec.direction == _spec.FORWARD:
        arrays, values, specials = [], {}, None
        for d, sp in zip(case["inputs"], spec.inputs):
            if d is None:
                arrays.append(None)
                continue
            a, v, sm = make_input(d, rng, container, attrs, n_cols_of(case))
            arrays.append(a)
            values[sp.name] = v
            specials = sm if sm is not None else specials
        return arrays, values, specials, values
    # Backward: forward inputs, the reference's forward outputs, then the spec's inputs.
    fvals, specials = {}, None
    for d, sp in zip(case["forward_inputs"], fwd.inputs):
        if d is None:
            continue
        _, v, sm = make_input(d, rng, "numpy", attrs, n_cols_of(case))
        fvals[sp.name] = v
        specials = sm if sm is not None else specials
    ref_in = dict(fvals)
    for d, sp in zip(case["inputs"], spec.inputs):
        # The gradient of an absent optional result: the forward with a zero input.
        if d is not None and sp.name.startswith("d") and sp.name[1:] in fwd.output_names:
            o = fwd.outputs[fwd.output_names.index(sp.name[1:])]
            if o.present_if is not None and fwd.inputs[o.present_if].name not in ref_in:
                ref_in[fwd.inputs[o.present_if].name] = np.zeros_like(ref_in[fwd.inputs[0].name])
    dtype = call_dtype(fwd, case["forward_inputs"])
    fouts = references.outputs(spec.op, ref_in, attrs, dtype)
    first = fwd.outputs[fwd.result_indices[0]].name
    arrays, values = [], {}
    for k, (d, sp) in enumerate(zip(case["inputs"], spec.inputs)):
        if d is None:
            arrays.append(None)
            continue
        if k == 0 or (sp.name.startswith("d") and sp.name[1:] in fouts and sp.name not in fvals):
            natural = None  # a cotangent: random data
        elif sp.name in fvals:
            natural = fvals[sp.name]
        else:
            natural = fouts[sp.name]
        a, v, sm = make_input(d, rng, container, attrs, n_cols_of(case), natural=natural)
        arrays.append(a)
        values[sp.name] = v
        specials = sm if sm is not None else specials
    values["__forward__"] = ref_in
    return arrays, values, specials, ref_in


def n_cols_of(case: dict) -> int:
    src = case.get("forward_inputs") or case["inputs"]
    for d in src:
        if d is not None and d["role"] == "rows":
            return int(d["shape"][-1]) if d["shape"] else 0
    return 0


def call_dtype(spec, descs) -> str:
    for d, sp in zip(descs, spec.inputs):
        if d is not None and sp.dtype == "float":
            return d["dtype"] if d["dtype"] in TOLERANCE else "float32"
    return "float32"


# ---- calling the frontend ---------------------------------------------------------------------------

def decode(v: dict):
    """An encoded attribute or policy value (_cases.enc) as the Python value it stands for."""
    t, x = v["t"], v["v"]
    if t == "none":
        return None
    if t == "bytes":
        return x.encode()
    return x


def _onnx_attribute(name: str, a: dict):
    """An ONNX attribute {"type", "value"} of the case as an AttributeProto of exactly that type."""
    import onnx
    p = onnx.AttributeProto()
    p.name = name
    t, v = a["type"], a["value"]
    p.type = getattr(onnx.AttributeProto, "STRING" if t == "STRING_BYTES" else t)
    if t == "UNDEFINED":
        p.f = float(v)  # a value, but no type saying which field holds it
    elif t == "TENSOR":
        p.t.CopyFrom(onnx.helper.make_tensor("t", onnx.TensorProto.FLOAT, [1], [float(v)]))
    elif t == "GRAPH":
        p.g.CopyFrom(onnx.helper.make_graph([], "g", [], []))
    elif t == "STRING_BYTES":
        p.s = bytes.fromhex(v)
    elif t == "FLOAT":
        p.f = float(v)
    elif t == "INT":
        p.i = int(v)
    elif t == "STRING":
        p.s = v.encode()
    elif t == "INTS":
        p.ints.extend(int(x) for x in v)
    elif t == "FLOATS":
        p.floats.extend(float(x) for x in v)
    elif t == "STRINGS":
        p.strings.extend(x.encode() for x in v)
    return p


def onnx_attrs(case: dict) -> list:
    """The node's attributes: the case's valid ones, its broken one, and its policy."""
    attrs = {**case.get("onnx_attrs", {}), **case.get("onnx_bad", {})}
    if "policy" in case:
        pv = case["policy"]
        attrs["policy"] = ({"type": "STRING", "value": pv["v"]} if pv["t"] in ("str", "bytes")
                           else {"type": "INT", "value": pv["v"]})
    return ([_onnx_attribute(k, v) for k, v in attrs.items()]
            + [_onnx_attribute(k, v) for k, v in case.get("onnx_extra", [])])


def call(case: dict, spec, arrays, rng) -> "frontends.Call | None":
    """The case's call through tests/frontends.py (None: not applicable, see _verdict).
    Gradients (autodiff frontends) are taken with random cotangents for the float results."""
    fe = case["frontend"]
    attrs = {k: decode(v) for k, v in case.get("attrs", {}).items()}
    policy = decode(case["policy"]) if "policy" in case else frontends.UNSET
    cotangents = None
    if case["grad"] and fe in ("jax", "torch"):
        cotangents = lambda name, shape: rng.standard_normal(shape)  # noqa: E731
    result = frontends.run(fe, spec, arrays, attrs, policy=policy,
                           saved=bool(case.get("return_stats")), jit=bool(case.get("jit")),
                           cotangents=cotangents,
                           onnx_attrs=onnx_attrs(case) if fe == "onnxruntime" else None,
                           checked=not case.get("raw_session"))
    # The one change that made the case invalid is to an attribute this function does
    # not take (the names of inputs that an "either" rule added, e.g. "no columns", do
    # not count: they were valid).
    broken = ([name for name in case["names"] if name in case["attrs"]] if "attrs" in case
              else case["names"])
    if case["expect"] == "invalid" and broken and set(broken) <= set(result.dropped):
        return None
    return result


# ---- the harness's own test: faults injected into a case (tests/fuzz/test_harness.py) ----------------

def _off_by_one(a):
    """``a`` with its first element moved by 1 + |value|, as numpy of the same dtype."""
    v = np.array(to_f64(a), dtype=np.float64)
    if v.size:
        v.flat[0] += 1.0 + abs(v.flat[0]) if np.isfinite(v.flat[0]) else 1.0
    return v.astype(np_dtype(dtype_of(a)))


def inject_before(case: dict) -> None:
    """"crash" and "hang" faults: the child dies or never answers, as a broken kernel would."""
    fault = case.get("inject")
    if fault == "crash":
        os.abort()
    if fault == "hang":
        import time
        time.sleep(3600)


def inject_after(case: dict, result, exc):
    """(result, exception) as a faulty frontend would have given them: a wrong number in the
    first result ("wrong") or gradient ("wrong_gradient"), an invalid call accepted
    ("accept"), a TypeError instead of the project's error ("type_error")."""
    fault = case.get("inject")
    if fault == "wrong" and result is not None:
        first = next(iter(result.outputs))
        result = result._replace(outputs={**result.outputs, first: _off_by_one(result.outputs[first])})
    elif fault == "wrong_gradient" and result is not None and result.grads:
        first = next(iter(result.grads))
        result = result._replace(grads={**result.grads, first: _off_by_one(result.grads[first])})
    elif fault == "accept" and exc is not None:
        return None, None  # (no outputs to check: the missing refusal is the fault)
    elif fault == "type_error":
        return None, TypeError("incompatible function arguments")
    return result, exc


# ---- running one case ------------------------------------------------------------------------------

# Frontends whose cases are programs or parser inputs rather than op calls: the module whose
# run(case) judges one (None or a kind of _verdict.PASSES: passed; else a Problem).
RUNNERS = {"runtime": "_runtime_run", "tensorrt": "_tensorrt", "session": "_model_run"}


def run_case(case: dict) -> tuple[str, str]:
    """(verdict kind, reason: empty when the case passed), see _verdict.py."""
    inject_before(case)
    runner = RUNNERS.get(case["frontend"])
    if runner is not None:  # a frontend judged by a runner of its own
        answer = importlib.import_module(runner).run(case)
        if answer in PASSES:
            return answer, ""
        passed = REFUSED if case["expect"] == "invalid" else RIGHT
        return kind_of(answer, passed), answer or ""
    spec = _spec.get(case["op"], case["direction"])
    rng = np.random.default_rng(case["seed"])
    try:
        arrays, values, specials, ref_in = build(case, spec, rng)
    except Exception as exc:  # the harness's own failure, not the frontend's
        return HARNESS, ("harness: could not build inputs: "
                         + "".join(traceback.format_exception(exc))[-2000:])
    env = case.get("env_policy")
    old_env = os.environ.get("XPURUNTIME_POLICY")
    if env is not None:
        os.environ["XPURUNTIME_POLICY"] = env
    result, exc = None, None
    try:
        try:
            result = call(case, spec, arrays, rng)
            if result is None:
                return NOT_APPLICABLE, ""
        except Exception as e:  # noqa: BLE001 - judged below
            exc = e
    finally:
        if env is not None:
            if old_env is None:
                os.environ.pop("XPURUNTIME_POLICY", None)
            else:
                os.environ["XPURUNTIME_POLICY"] = old_env
    result, exc = inject_after(case, result, exc)
    if exc is not None:
        problem = judge_error(case, spec, exc)
        return kind_of(problem, REFUSED), problem or ""
    if case["expect"] == "invalid":
        return WRONG, f"accepted an invalid case ({case['why']}) without an error"
    if result is None:
        return RIGHT, ""  # (an injected "accept" of a valid case: nothing was broken)
    problem = check_outputs(case, spec, result, values, specials, ref_in)
    return kind_of(problem), problem or ""


def check_outputs(case, spec, result, values, specials, ref_in) -> Problem | None:
    """The outputs (and gradients) of a call against the float64 reference."""
    fwd = _spec.get(spec.op, _spec.FORWARD)
    attrs = case["plain_attrs"]
    dtype = call_dtype(fwd, case.get("forward_inputs") or case["inputs"])
    tol = TOLERANCE[dtype]
    in_dtypes = [None if d is None else d["dtype"] for d in case["inputs"]]
    scale = {}
    if spec.direction == _spec.FORWARD:
        ref = references.outputs(spec.op, ref_in, attrs, dtype)
    else:
        cot = {"d" + fwd.outputs[fwd.result_indices[0]].name: values[spec.inputs[0].name]}
        for sp in spec.inputs[1:]:
            if sp.name.startswith("d") and sp.name[1:] in fwd.output_names and sp.name in values:
                cot[sp.name] = values[sp.name]
        ref = references.gradients(spec.op, ref_in, cot, attrs, dtype)
        scale = references.gradients(spec.op, ref_in, cot, attrs, dtype, detach_stats=True)
    for name, out in result.outputs.items():
        o = spec.outputs[spec.output_names.index(name)]
        want = expected_dtype(spec, o, in_dtypes)
        got = dtype_of(out)
        if got != want:
            return Wrong(f"{name}: dtype {got}, expected {want}")
        if ref.get(name) is None:
            return Harness(f"harness: the reference has no output {name!r}")
        problem = compare(name, out, ref[name], tol, specials, scale.get(name))
        if problem:
            return problem
    if result.grads:
        gref = references.gradients(spec.op, ref_in, result.cotangents, attrs, dtype)
        gscale = references.gradients(spec.op, ref_in, result.cotangents, attrs, dtype,
                                      detach_stats=True)
        for name, g in result.grads.items():
            problem = compare(name, g, gref[name], tol, specials, gscale.get(name))
            if problem:
                return Wrong(f"gradient {problem}")
    return None


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--case":
        cases = [json.loads(sys.argv[2])]
    else:
        cases = json.load(sys.stdin)
    for i, case in enumerate(cases):
        try:
            kind, msg = run_case(case)
        except Exception as exc:  # noqa: BLE001
            kind, msg = HARNESS, "harness: " + "".join(traceback.format_exception(exc))[-2000:]
        print(json.dumps({"i": i, "ok": not msg, "kind": kind, "msg": msg}), flush=True)


if __name__ == "__main__":
    main()
