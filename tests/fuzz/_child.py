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

import _references_torch as references  # noqa: E402  (torch float64 autograd; tests/references.py is numpy)
from _make import make_input, to_f64, dtype_of  # noqa: E402
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


def judge_error(case: dict, spec, exc: BaseException) -> str | None:
    """None when ``exc`` is a right refusal of this case, else what is wrong with it."""
    msg = f"{type(exc).__name__}: {exc}"
    if case["expect"] == "valid":
        return f"raised on a valid case: {msg[:1500]}"
    if not isinstance(exc, project_errors(case["frontend"])):
        return f"not a project error type: {msg[:1500]}"
    text = str(exc)
    if not (names_word(text, spec.op) or names_word(text, spec.onnx_type)):
        return f"message does not name the op {spec.op!r}: {msg[:1500]}"
    if not any(names_word(text, n) for n in case["names"]):
        return f"message names none of {case['names']}: {msg[:1500]}"
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
            scale: np.ndarray | None = None) -> str | None:
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
        return f"{name}: shape {tuple(got.shape)}, expected {tuple(ref.shape)}"
    masked = _masked(got, ref, row_mask)
    if masked is None:
        return None
    got, ref = masked
    if ref.dtype.kind in "iu":
        if not np.array_equal(got, ref):
            bad = np.argwhere(got != ref)[:3].tolist()
            return f"{name}: integers differ at {bad}"
        return None
    nan_ref, nan_got = np.isnan(ref), np.isnan(got)
    if not np.array_equal(nan_ref, nan_got):
        where = np.argwhere(nan_ref != nan_got)[:3].tolist()
        return (f"{name}: NaN where the reference has "
                f"{'none' if nan_got[tuple(where[0])] else 'a number'} (at {where})")
    inf = np.isinf(ref)
    if not np.array_equal(got[inf], ref[inf]) or np.isinf(got[~inf & ~nan_ref]).any():
        return f"{name}: infinities differ from the reference"
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
        return f"{name}: relative error {err:.3g} > {limit:.3g}"
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
    fouts = references.forward(spec.op, ref_in, attrs, dtype)
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


# ---- running one case ------------------------------------------------------------------------------

def run_case(case: dict) -> str | None:
    """None when the case passes, else the reason."""
    if case["frontend"] == "runtime":
        import _runtime_run
        return _runtime_run.run(case)
    if case["frontend"] == "tensorrt":
        import _tensorrt
        return _tensorrt.run(case)
    spec = _spec.get(case["op"], case["direction"])
    rng = np.random.default_rng(case["seed"])
    env = case.get("env_policy")
    old_env = os.environ.get("XPURUNTIME_POLICY")
    try:
        arrays, values, specials, ref_in = build(case, spec, rng)
    except Exception as exc:  # the harness's own failure, not the frontend's
        return "harness: could not build inputs: " + "".join(traceback.format_exception(exc))[-2000:]
    import _frontends
    if env is not None:
        os.environ["XPURUNTIME_POLICY"] = env
    try:
        try:
            outs, grads = _frontends.call(case, spec, arrays, rng)
        except _frontends.NotApplicable:
            return None
        except Exception as exc:  # noqa: BLE001 - judged below
            return judge_error(case, spec, exc)
    finally:
        if env is not None:
            if old_env is None:
                os.environ.pop("XPURUNTIME_POLICY", None)
            else:
                os.environ["XPURUNTIME_POLICY"] = old_env
    if case["expect"] == "invalid":
        return f"accepted an invalid case ({case['why']}) without an error"
    return check_outputs(case, spec, outs, grads, values, specials, ref_in)


def check_outputs(case, spec, outs, grads, values, specials, ref_in) -> str | None:
    fwd = _spec.get(spec.op, _spec.FORWARD)
    attrs = case["plain_attrs"]
    dtype = call_dtype(fwd, case.get("forward_inputs") or case["inputs"])
    tol = TOLERANCE[dtype]
    in_dtypes = [None if d is None else d["dtype"] for d in case["inputs"]]
    scale = {}
    if spec.direction == _spec.FORWARD:
        ref = references.forward(spec.op, ref_in, attrs, dtype)
    else:
        cot = {fwd.outputs[fwd.result_indices[0]].name: values[spec.inputs[0].name]}
        for sp in spec.inputs[1:]:
            if sp.name.startswith("d") and sp.name[1:] in fwd.output_names and sp.name in values:
                cot[sp.name[1:]] = values[sp.name]
        ref = references.vjp(spec.op, ref_in, attrs, dtype, cot)
        scale = references.vjp(spec.op, ref_in, attrs, dtype, cot, detach_stats=True)
    for name, out in outs.items():
        o = spec.outputs[spec.output_names.index(name)]
        want = expected_dtype(spec, o, in_dtypes)
        got = dtype_of(out)
        if got != want:
            return f"{name}: dtype {got}, expected {want}"
        if name not in ref:
            return f"harness: the reference has no output {name!r}"
        problem = compare(name, out, ref[name], tol, specials, scale.get(name))
        if problem:
            return problem
    if grads:
        cot = grads.pop("__cotangents__")
        gref = references.vjp(spec.op, ref_in, attrs, dtype, cot)
        gscale = references.vjp(spec.op, ref_in, attrs, dtype, cot, detach_stats=True)
        for name, g in grads.items():
            problem = compare(name, g, gref[name], tol, specials, gscale.get(name))
            if problem:
                return f"gradient {problem}"
    return None


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--case":
        cases = [json.loads(sys.argv[2])]
    else:
        cases = json.load(sys.stdin)
    for i, case in enumerate(cases):
        try:
            problem = run_case(case)
        except Exception as exc:  # noqa: BLE001
            problem = "harness: " + "".join(traceback.format_exception(exc))[-2000:]
        print(json.dumps({"i": i, "ok": problem is None, "msg": problem or ""}), flush=True)


if __name__ == "__main__":
    main()
