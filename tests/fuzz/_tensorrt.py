"""TensorRT plugin field parsing, fuzzed from the op specs: a case is one plugin
creation (op type, phase, PluginFields) that the library must accept (a plugin of
that name) or refuse (None, with a logged error naming the op and the field); a field
of random bytes ("corrupt") may be either, but what is accepted must be a value the spec
allows (``_accepted_problem``).

Field types per attribute type: float in FLOAT32/FLOAT64 or an integer type (the
int -> float rule), int and bool in INT8..INT64 (bools 0/1), string as CHAR; the
policy as CHAR; ``has_<input>`` (optional inputs a result depends on) INT32 0/1.
"""

from __future__ import annotations

import math
import os
import re
import tempfile

from hypothesis import strategies as st

from _verdict import BadError, FalseRefusal, Wrong
from xpuruntime import _spec

INT_TYPES = {"INT8": 2**7, "INT16": 2**15, "INT32": 2**31, "INT64": 2**63}
FLOAT_TYPES = ("FLOAT32", "FLOAT64")
POLICIES = ("fast", "deterministic", "reference")


def declared(spec) -> list[str]:
    return [f"has_{spec.inputs[i].name}" for i in sorted({o.present_if for o in spec.outputs
                                                          if o.use == "result"
                                                          and o.present_if is not None})]


def _required(a) -> bool:
    """An attribute without a default: its spec default lies outside its range (topk's k)."""
    return a.type != "string" and ((a.min is not None and a.default < a.min)
                                   or (a.max is not None and a.default > a.max))


def num(name: str, ftype: str, value) -> dict:
    return {"name": name, "type": ftype,
            "values": [float(value).hex() if ftype.startswith("FLOAT") else int(value)]}


def text(name: str, value: str) -> dict:
    return {"name": name, "type": "CHAR", "text": value}


ITEMSIZE = {"FLOAT32": 4, "FLOAT64": 8, "INT8": 1, "INT16": 2, "INT32": 4, "INT64": 8, "CHAR": 1,
            "FLOAT16": 2, "BF16": 2}


def _corrupt(draw, name: str, natural: list[str]) -> dict:
    """A field whose data are random bytes: mostly one value of a type the field may hold,
    sometimes none, two, or a type it may not; CHAR data of any bytes (NULs, no UTF-8)."""
    ftype = draw(st.sampled_from(natural + natural + ["FLOAT32", "INT64", "CHAR", "FLOAT16"]))
    if ftype == "CHAR":
        raw = draw(st.one_of(st.binary(max_size=24),
                             st.sampled_from(POLICIES + ("mean", "sum", "none")).map(str.encode)
                             .flatmap(lambda b: st.binary(max_size=3).map(lambda t: b + t))))
    else:
        count = draw(st.sampled_from([1, 1, 1, 1, 0, 2]))
        raw = draw(st.binary(min_size=count * ITEMSIZE[ftype], max_size=count * ITEMSIZE[ftype]))
    return {"name": name, "type": ftype, "raw": raw.hex()}


def _natural_types(spec, name: str) -> list[str]:
    a = next((a for a in spec.attrs if a.onnx_name == name), None)
    if a is None or a.type == "string":
        return ["CHAR"] if a is not None or name == "policy" else list(INT_TYPES)
    return list(FLOAT_TYPES + tuple(INT_TYPES)) if a.type == "float" else list(INT_TYPES)


def _valid_value(draw, a) -> dict:
    n = a.onnx_name
    if a.type == "string":
        return text(n, draw(st.sampled_from(a.choices or (a.default,))))
    lo = a.min if a.min is not None and math.isfinite(a.min) else -4.0
    hi = a.max if a.max is not None and math.isfinite(a.max) else 4.0
    if a.type == "float":
        v = draw(st.one_of(st.sampled_from([lo, hi]), st.floats(lo, hi, width=32)))
        if float(v).is_integer() and draw(st.booleans()):
            return num(n, draw(st.sampled_from(list(INT_TYPES))), int(v))
        return num(n, draw(st.sampled_from(FLOAT_TYPES)), v)
    if a.type == "bool":
        return num(n, draw(st.sampled_from(list(INT_TYPES))), draw(st.integers(0, 1)))
    lo_i = int(lo) if a.min is not None else -100
    hi_i = min(int(hi) if a.max is not None else 2**31 - 1, 64)
    v = draw(st.integers(lo_i, max(lo_i, hi_i)))
    ftype = draw(st.sampled_from([t for t, r in INT_TYPES.items() if -r <= v < r]))
    return num(n, ftype, v)


def _bad_value(draw, a) -> dict:
    n = a.onnx_name
    numeric = "FLOAT32" if a.type == "float" else "INT32"
    bad = [{"name": n, "type": numeric, "values": []}, {"name": n, "type": numeric, "values": [1, 1]},
           {"name": n, "type": draw(st.sampled_from(["FLOAT16", "BF16", "DIMS", "UNKNOWN"])), "values": [1]}]
    if a.type == "float":
        bad += [num(n, "FLOAT32", math.nan), num(n, "FLOAT64", math.nan), text(n, "0.5")]
        if a.min is not None and math.isfinite(a.min):
            bad.append(num(n, "FLOAT64", a.min - 1e-6))
        if a.max is not None and math.isfinite(a.max):
            bad.append(num(n, "FLOAT32", a.max + 0.5))
    elif a.type == "int":
        bad += [num(n, "FLOAT32", 1.0), text(n, "1")]
        if a.min is not None and math.isfinite(a.min):
            bad.append(num(n, "INT32", a.min - 1))
    elif a.type == "bool":
        bad += [num(n, "INT32", 2), num(n, "INT8", -1), num(n, "FLOAT32", 1.0), text(n, "true")]
    else:
        bad += [text(n, "avg"), text(n, ""), text(n, a.default.upper()), num(n, "INT32", 0)]
    return draw(st.sampled_from(bad))


@st.composite
def tensorrt_case(draw):
    specs = [s for s in _spec.all_specs() if s.direction == _spec.FORWARD]
    spec = draw(st.sampled_from(specs))
    fields, names = [], []
    for a in spec.attrs:
        if _required(a) or draw(st.booleans()):
            fields.append(_valid_value(draw, a))
    if draw(st.booleans()):
        fields.append(text("policy", draw(st.sampled_from(POLICIES))))
    for d in declared(spec):
        if draw(st.booleans()):
            fields.append(num(d, "INT32", draw(st.integers(0, 1))))
    kind = draw(st.sampled_from(["none", "none", "value", "value", "name", "twice", "missing",
                                 "policy", "declared", "corrupt", "corrupt"]))
    either = False
    if kind == "value" and spec.attrs:
        a = draw(st.sampled_from(spec.attrs))
        fields = [f for f in fields if f["name"] != a.onnx_name] + [_bad_value(draw, a)]
        names = [a.onnx_name]
    elif kind == "name":
        wrong = draw(st.sampled_from(["bogus", "Epsilon", "eps", "scal", ""]))
        fields.append(num(wrong, "FLOAT32", 1.0))
        names = [wrong] if wrong else ["''", "field"]
    elif kind == "twice" and fields:
        f = draw(st.sampled_from(fields))
        fields.append(dict(f))
        names = [f["name"]]
    elif kind == "missing":
        req = [a for a in spec.attrs if _required(a)]
        if req:
            fields = [f for f in fields if f["name"] != req[0].onnx_name]
            names = [req[0].onnx_name]
    elif kind == "policy":
        fields = [f for f in fields if f["name"] != "policy"]
        fields.append(draw(st.sampled_from([text("policy", "fastest"), text("policy", ""),
                                            text("policy", "FAST"), num("policy", "INT32", 0)])))
        names = ["policy"]
    elif kind == "declared" and declared(spec):
        d = declared(spec)[0]
        fields = [f for f in fields if f["name"] != d]
        fields.append(draw(st.sampled_from([num(d, "INT32", 2), num(d, "FLOAT32", 1.0), text(d, "1")])))
        names = [d]
    elif kind == "corrupt":  # right, or refused naming the field: _accepted_problem judges
        target = draw(st.sampled_from([a.onnx_name for a in spec.attrs] + ["policy"] + declared(spec)))
        fields = [f for f in fields if f["name"] != target]
        fields.append(_corrupt(draw, target, _natural_types(spec, target)))
        names, either = [target], True
    if draw(st.booleans()):
        fields = draw(st.permutations(fields))
    return {"frontend": "tensorrt", "op": spec.op, "direction": "forward",
            "onnx_type": spec.onnx_type, "fields": fields,
            "phase": draw(st.sampled_from(["build", "runtime"])),
            "seed": draw(st.integers(0, 2**31 - 1)),
            "expect": "either" if either else "invalid" if names else "valid", "names": names,
            "why": f"{kind} field" if names else ""}


# ---- the child's side --------------------------------------------------------------------------

_STATE: dict = {}


def _with_stderr(fn):
    """(fn's result, what the library logged to stderr meanwhile)."""
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            result = fn()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        return result, tmp.read().decode(errors="replace")


def run(case: dict) -> str | None:
    """None when the creator accepted a valid collection (a plugin of that name) or
    refused an invalid one (None) with a logged message naming the op and the field."""
    if "creators" not in _STATE:
        from xpuruntime.interop import tensorrt as xt
        _STATE["trt"] = xt.tensorrt_module()
        _STATE["creators"] = xt.load()
    trt, creators = _STATE["trt"], _STATE["creators"]
    from _tensorrt_support import plugin_field  # (tests/, on the child's path)
    keep: list = []
    fc = trt.PluginFieldCollection([plugin_field(trt, f, keep) for f in case["fields"]])
    phase = trt.TensorRTPhase.BUILD if case["phase"] == "build" else trt.TensorRTPhase.RUNTIME

    def create():
        plugin = creators[case["onnx_type"]].create_plugin("case", fc, phase)
        if plugin is None:
            return None
        core = plugin.get_capability_interface(trt.PluginCapabilityType.CORE)
        return None if core is None else (core.plugin_name, core.plugin_version, core.plugin_namespace)

    # (The plugin's serialized fields are not readable from Python for a C++ plugin; the
    # C++ test program, tests/test_tensorrt_plugins.py, checks their round trip.)
    made, log = _with_stderr(create)
    if case["expect"] == "valid" and made != (case["onnx_type"], "1", "xpuruntime"):
        return FalseRefusal(f"valid fields refused ({made!r}); log: {log[-800:]}")
    if made is not None and case["expect"] == "invalid":
        return Wrong(f"accepted an invalid field collection ({case['why']}): {made!r}")
    if made is not None:
        problem = _accepted_problem(_spec.get(case["op"]), case["fields"])
        return Wrong(f"{problem} ({case['why'] or 'valid fields'})") if problem else None
    lines = [ln for ln in log.splitlines() if case["onnx_type"] in ln or case["op"] in ln]
    if not lines:
        return BadError(f"refused without a message naming {case['onnx_type']!r}; log: {log[-800:]!r}")
    if not any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", ln)
               for n in case["names"] for ln in lines):
        return BadError(f"refusal names none of {case['names']}: {lines[-1][:600]}")
    return None


def _given_value(f: dict):
    """A given field's value as the library reads it (None: not one value of a number type)."""
    import numpy as np
    from _tensorrt_support import FIELD_NUMPY
    if f["type"] == "CHAR":
        data = bytes.fromhex(f["raw"]) if "raw" in f else f["text"].encode()
        return data.rstrip(b"\0")
    if "raw" in f:
        values = np.frombuffer(bytes.fromhex(f["raw"]), dtype=FIELD_NUMPY[f["type"]])
    else:
        values = [float.fromhex(v) if isinstance(v, str) else v for v in f["values"]]
    return values[0].item() if len(values) == 1 and hasattr(values[0], "item") else (
        values[0] if len(values) == 1 else None)


def _accepted_problem(spec, given: list[dict]) -> str | None:
    """Why an accepted field collection was wrong to accept (None: every given value is
    one the spec allows): numbers finite, in range, whole for ints, 0/1 for bools and
    declarations; strings among the choices (the policy among the policies)."""
    attrs = {a.onnx_name: a for a in spec.attrs}
    for f in given:
        name, v = f["name"], _given_value(f)
        a = attrs.get(name)
        if name == "policy" or (a is not None and a.type == "string"):
            choices = POLICIES if a is None else (a.choices or (a.default,))
            if not isinstance(v, bytes) or v.decode("latin-1") not in choices:
                return f"field {name!r} = {v!r} accepted (not one of {list(choices)})"
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return f"field {name!r} = {v!r} ({f['type']}) accepted"
        if a is None or a.type in ("int", "bool"):  # (a has_<input> declaration: 0 or 1)
            lo, hi = (0, 1) if a is None or a.type == "bool" else (a.min, a.max)
            if v != int(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
                return f"field {name!r} = {v!r} accepted (out of range or not whole)"
            continue
        if (a.min is not None and v < a.min) or (a.max is not None and v > a.max):
            return f"field {name!r} = {v!r} accepted (outside [{a.min}, {a.max}])"
    return None
