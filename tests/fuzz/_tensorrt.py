"""TensorRT plugin field parsing, fuzzed from the op specs: a case is one plugin
creation (op type, phase, PluginFields) that the library must accept (a plugin of
that name) or refuse (None, with a logged error naming the op and the field).

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
                                 "policy", "declared"]))
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
    if draw(st.booleans()):
        fields = draw(st.permutations(fields))
    return {"frontend": "tensorrt", "op": spec.op, "direction": "forward",
            "onnx_type": spec.onnx_type, "fields": fields,
            "phase": draw(st.sampled_from(["build", "runtime"])),
            "seed": draw(st.integers(0, 2**31 - 1)),
            "expect": "invalid" if names else "valid", "names": names,
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

    made, log = _with_stderr(create)
    if case["expect"] == "valid":
        if made != (case["onnx_type"], "1", "xpuruntime"):
            return f"valid fields refused ({made!r}); log: {log[-800:]}"
        return None
    if made is not None:
        return f"accepted an invalid field collection ({case['why']}): {made!r}"
    lines = [ln for ln in log.splitlines() if case["onnx_type"] in ln or case["op"] in ln]
    if not lines:
        return f"refused without a message naming {case['onnx_type']!r}; log: {log[-800:]!r}"
    if not any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])", ln)
               for n in case["names"] for ln in lines):
        return f"refusal names none of {case['names']}: {lines[-1][:600]}"
    return None
