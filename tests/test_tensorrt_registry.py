"""The TensorRT plugin library in TensorRT's real plugin registry (the lean runtime
in CI, no GPU needed): creators, fields, plugins from valid fields in both phases,
every bad field refused (None, logged, process alive), random field collections.

Everything that touches the registry runs in a child process, so that a crash is
one failed test. Expected field names, types and defaults come from the op specs
(xpuruntime._spec, the core's own description of each op) and OPS.md's names.
"""

from __future__ import annotations

import json
import math
import pathlib
import random
import re
import subprocess

import numpy as np
import pytest

from xpuruntime import _spec
from _tensorrt_support import library, require_tensorrt_module, run_child

# What the child does: load the library into the registry of tensorrt or
# tensorrt_lean, create one plugin per case read from stdin, print the created
# plugin's name (or null) per case, then "alive".
CHILD = r"""
import json, sys
sys.path.insert(0, TESTS)
from _tensorrt_support import plugin_field
from xpuruntime.interop import tensorrt as xt
trt = xt.tensorrt_module()
creators = xt.load()
keep = []
def field(f):
    return plugin_field(trt, f, keep)
out = []
for case in json.load(sys.stdin):
    fc = trt.PluginFieldCollection([field(f) for f in case["fields"]])
    phase = trt.TensorRTPhase.BUILD if case["phase"] == "build" else trt.TensorRTPhase.RUNTIME
    plugin = creators[case["op"]].create_plugin("case", fc, phase)
    core = None if plugin is None else plugin.get_capability_interface(trt.PluginCapabilityType.CORE)
    out.append(None if core is None else [core.plugin_name, core.plugin_version, core.plugin_namespace])
    del plugin, core
print(json.dumps(out))
print("alive")
""".replace("TESTS", repr(str(pathlib.Path(__file__).resolve().parent)))

FORWARDS = [s for s in _spec.all_specs() if s.direction == _spec.FORWARD]
NUMERIC_FIELD_TYPES = {"FLOAT32", "FLOAT64", "INT8", "INT16", "INT32", "INT64"}
FIELD_TYPE = {"float": "FLOAT32", "int": "INT32", "bool": "INT32", "string": "CHAR"}
POLICIES = ("fast", "deterministic", "reference")


@pytest.fixture(scope="module", autouse=True)
def _library():
    library()
    require_tensorrt_module()


def declared_fields(spec) -> list[str]:
    """``has_<input>`` for the optional inputs on which a result output depends."""
    return [f"has_{spec.inputs[i].name}" for i in sorted({o.present_if for o in spec.outputs
                                                          if o.use == "result" and o.present_if is not None})]


def num(name, ftype, value):
    """A one-value numeric field (floats sent exactly, as hex)."""
    return {"name": name, "type": ftype, "values": [float(value).hex() if ftype.startswith("FLOAT")
                                                     else int(value)]}


def text(name, value):
    return {"name": name, "type": "CHAR", "text": value}


def create(cases: list[dict]) -> tuple[list, str]:
    """Runs the cases in a child; returns (one result per case, the child's stderr)."""
    proc = run_child(CHILD, stdin=json.dumps(cases))
    assert proc.returncode == 0, f"the child died (rc {proc.returncode}):\n{proc.stderr[-4000:]}"
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "alive", proc.stdout[-2000:]
    return json.loads(lines[-2]), proc.stderr


def refusals(stderr: str) -> list[str]:
    """The createPlugin errors the library logged, in order."""
    return [line for line in stderr.splitlines() if re.search(r"xpuruntime::\w+ createPlugin\(", line)]


def test_load_returns_every_creator():
    code = r"""
import json
from xpuruntime.interop import tensorrt as xt
trt = xt.tensorrt_module()
first = xt.load()
again = xt.load()  # the same registry: not loaded twice
registry = trt.get_plugin_registry()
found = {n: bool(registry.get_creator(n, "1", "xpuruntime")) for n in first}
out = {n: {"version": c.plugin_version, "namespace": c.plugin_namespace,
           "fields": [[f.name, f.type.name, f.data.tolist()] for f in c.field_names]}
       for n, c in first.items()}
print(json.dumps({"creators": out, "again": sorted(again), "found": found,
                  "module": trt.__name__}))
"""
    proc = run_child(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    creators = got["creators"]
    assert sorted(creators) == sorted(s.onnx_type for s in FORWARDS)
    assert got["again"] == sorted(creators)
    assert all(got["found"].values()), got["found"]
    for spec in FORWARDS:
        c = creators[spec.onnx_type]
        assert (c["version"], c["namespace"]) == ("1", "xpuruntime")
        want = [[a.onnx_name, FIELD_TYPE[a.type]] for a in spec.attrs]
        want += [["policy", "CHAR"]] + [[d, "INT32"] for d in declared_fields(spec)]
        assert [f[:2] for f in c["fields"]] == want, spec.onnx_type
        for a, (_, _, data) in zip(spec.attrs, c["fields"]):
            if a.type == "string":
                assert bytes(data).decode() == a.default
            elif a.type == "float":
                assert data == [pytest.approx(float(np.float32(a.default)))]
            else:
                assert data == [int(a.default)]
        policy = c["fields"][len(spec.attrs)][2]
        assert bytes(policy).decode() == "fast"
        assert all(f[2] == [0] for f in c["fields"][len(spec.attrs) + 1:])


def test_field_names_are_the_onnx_attributes_of_ops_md():
    # OPS.md: epsilon (float), scale (float), interleaved (int 0/1), ignore_index (int),
    # label_smoothing (float), reduction (string), k (int), renormalize (int 0/1).
    ops_md = {"epsilon": "FLOAT32", "scale": "FLOAT32", "interleaved": "INT32",
              "ignore_index": "INT32", "label_smoothing": "FLOAT32", "reduction": "CHAR",
              "k": "INT32", "renormalize": "INT32"}
    for spec in FORWARDS:
        for a in spec.attrs:
            assert FIELD_TYPE[a.type] == ops_md[a.onnx_name], (spec.onnx_type, a.onnx_name)


def required(spec) -> list:
    """Attributes without a default: the spec's default lies outside their range (topk's k)."""
    return [a for a in spec.attrs if a.required]


def valid_collections(spec) -> list[list[dict]]:
    """Field collections the op must accept: defaults, each attribute in each type
    the rule allows, each choice and policy, the range bounds, the declarations;
    each with a valid value (the minimum) for the attributes that have no default."""
    out: list[list[dict]] = [[]]
    for a in spec.attrs:
        if a in required(spec):
            out += [[num(a.onnx_name, t, v)] for t in ("INT8", "INT32", "INT64")
                    for v in {a.min, a.max} if abs(v) < 128 or t != "INT8"]
            continue
        if a.type == "float":
            out += [[num(a.onnx_name, "FLOAT32", a.default)], [num(a.onnx_name, "FLOAT64", a.default)],
                    [num(a.onnx_name, "INT32", round(a.default))] if a.min is None or round(a.default) >= a.min
                    else []]
            out += [[num(a.onnx_name, "FLOAT32", b)] for b in (a.min, a.max) if b is not None]
        elif a.type in ("int", "bool"):
            out += [[num(a.onnx_name, t, int(a.default))] for t in ("INT8", "INT16", "INT32", "INT64")]
            if a.type == "bool":
                out += [[num(a.onnx_name, "INT32", v)] for v in (0, 1)]
        else:
            out += [[text(a.onnx_name, c)] for c in a.choices or (a.default,)]
            out += [[text(a.onnx_name, a.default + "\0")]]  # a C string's terminator
    out += [[text("policy", p)] for p in POLICIES]
    out += [[num(d, "INT32", v)] for d in declared_fields(spec) for v in (0, 1)]
    out.append([num(a.onnx_name, "FLOAT32" if a.type == "float" else "INT32",
                    a.min if a in required(spec) else a.default)
                if a.type != "string" else text(a.onnx_name, a.default) for a in spec.attrs]
               + [text("policy", "deterministic")])
    given_required = [num(a.onnx_name, FIELD_TYPE[a.type], a.min) for a in required(spec)]
    return [c + [f for f in given_required if f["name"] not in {g["name"] for g in c}]
            for c in out]


def test_creates_plugins_from_valid_fields_in_both_phases():
    cases = [{"op": s.onnx_type, "fields": fields, "phase": phase}
             for s in FORWARDS for fields in valid_collections(s) for phase in ("build", "runtime")]
    results, stderr = create(cases)
    for case, result in zip(cases, results):
        assert result == [case["op"], "1", "xpuruntime"], (case, stderr[-2000:])
    assert not refusals(stderr)


def test_cross_entropy_ignore_index_as_int32_or_int64():
    cases = [{"op": "CrossEntropy", "fields": [num("ignore_index", t, v)], "phase": "build"}
             for t in ("INT32", "INT64") for v in (-100, 0, 7, -(2**31), 2**31 - 1)]
    cases.append({"op": "CrossEntropy", "fields": [num("ignore_index", "INT64", 2**40)], "phase": "build"})
    results, _ = create(cases)
    assert all(r is not None for r in results)


def bad_collections(spec) -> list[tuple[list[dict], str]]:
    """Field collections the op must refuse, each with the field its message names."""
    out: list[tuple[list[dict], str]] = []
    for a in spec.attrs:
        n = a.onnx_name
        numeric = "FLOAT32" if a.type == "float" else "INT32"
        out += [([{"name": n, "type": numeric, "values": []}], n),       # no value
                ([{"name": n, "type": numeric, "values": [1, 1]}], n)]   # two values
        out += [([{"name": n, "type": t, "values": [1]}], n) for t in ("DIMS", "UNKNOWN", "FLOAT16", "BF16")]
        if a.type == "float":
            out += [([num(n, "FLOAT32", math.nan)], n), ([num(n, "FLOAT64", math.nan)], n),
                    ([text(n, "0.5")], n)]
            if a.min is not None:
                out += [([num(n, "FLOAT32", a.min - 1)], n), ([num(n, "FLOAT64", a.min - 1e-9)], n)]
            if a.max is not None:
                out += [([num(n, "FLOAT32", a.max + 0.5)], n)]
        elif a.type == "int":
            out += [([num(n, "FLOAT32", 1.0)], n), ([text(n, "1")], n)]
        elif a.type == "bool":
            out += [([num(n, "INT32", 2)], n), ([num(n, "INT32", -1)], n), ([num(n, "FLOAT32", 1.0)], n),
                    ([text(n, "true")], n)]
        else:
            out += [([text(n, "avg")], n), ([text(n, "")], n), ([text(n, a.default.upper())], n),
                    ([num(n, "INT32", 0)], n)]
        out.append(([text(n, a.default) if a.type == "string" else num(n, FIELD_TYPE[a.type], a.default)] * 2, n))
    out += [([text("policy", "fastest")], "policy"), ([text("policy", "")], "policy"),
            ([num("policy", "INT32", 0)], "policy"), ([text("policy", "fast")] * 2, "policy"),
            ([num("bogus", "FLOAT32", 1.0)], "bogus"), ([num("Epsilon", "FLOAT32", 1.0)], "Epsilon")]
    for d in declared_fields(spec):
        out += [([num(d, "INT32", 2)], d), ([num(d, "FLOAT32", 1.0)], d), ([text(d, "1")], d),
                ([num(d, "INT32", 1)] * 2, d)]
    given_required = [num(a.onnx_name, FIELD_TYPE[a.type], a.min) for a in required(spec)]
    out = [(fields + [f for f in given_required if f["name"] not in {g["name"] for g in fields}], name)
           for fields, name in out]
    out += [([], a.onnx_name) for a in required(spec)]  # missing
    return out


# The refusals the issue names, stated on their own (they must be among the above).
NAMED_REFUSALS = [
    ("RMSNorm", [num("epsilon", "FLOAT32", math.nan)], "epsilon"),
    ("LayerNorm", [num("epsilon", "FLOAT32", math.nan)], "epsilon"),
    ("RMSNorm", [num("epsilon", "FLOAT32", -1e-6)], "epsilon"),
    ("LayerNorm", [num("epsilon", "FLOAT64", -1.0)], "epsilon"),
    ("CrossEntropy", [text("reduction", "avg")], "reduction"),
    ("CrossEntropy", [text("reduction", "Mean")], "reduction"),
    ("CrossEntropy", [num("label_smoothing", "FLOAT32", 1.5)], "label_smoothing"),
    ("CrossEntropy", [num("label_smoothing", "FLOAT32", -0.25)], "label_smoothing"),
    ("Softmax", [text("policy", "fastest")], "policy"),
    ("RMSNorm", [text("epsilon", "1e-6")], "epsilon"),  # wrong type
    ("Softmax", [{"name": "scale", "type": "FLOAT32", "values": [1.0, 2.0]}], "scale"),  # wrong length
]


def test_refuses_every_bad_field_with_a_logged_error():
    cases, names = [], []
    for s in FORWARDS:
        for fields, name in bad_collections(s):
            for phase in ("build", "runtime"):
                cases.append({"op": s.onnx_type, "fields": fields, "phase": phase})
                names.append(name)
    for op, fields, name in NAMED_REFUSALS:
        cases.append({"op": op, "fields": fields, "phase": "build"})
        names.append(name)
    results, stderr = create(cases)
    logged = refusals(stderr)
    assert len(logged) == len(cases), stderr[-3000:]
    for case, result, name, message in zip(cases, results, names, logged):
        assert result is None, case
        assert case["op"] in message and name in message, (case, message)


# ---- random field collections --------------------------------------------------------------
FIELD_TYPES = ["FLOAT32", "FLOAT64", "INT8", "INT16", "INT32", "INT64", "CHAR", "FLOAT16", "DIMS",
               "UNKNOWN"]
INT_RANGE = {"INT8": 2**7, "INT16": 2**15, "INT32": 2**31, "INT64": 2**63}
FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1.0000001, 1e-6, -1e-9, 1e-30, 1e30, 3.4e38, 1e300,
          math.nan, math.inf, -math.inf]
TEXTS = ["", "mean", "sum", "none", "mean\0", "mean\0\0", "me\0an", "MEAN", " mean", "avg",
         "fast", "deterministic", "reference", "fast\0", "Fast", "1", "0.5", "x" * 300]


def random_field(rng: random.Random, spec, all_names: list[str], used: set[str]) -> dict:
    names = [a.onnx_name for a in spec.attrs] + ["policy"] + declared_fields(spec)
    unused = [n for n in names if n not in used]
    if rng.random() < 0.9:  # mostly the op's own fields, mostly once each
        name = rng.choice(unused) if unused and rng.random() < 0.9 else rng.choice(names)
    else:
        name = rng.choice(all_names + ["", "bogus", "epsilon "])
    used.add(name)
    a = next((a for a in spec.attrs if a.onnx_name == name), None)
    if rng.random() < 0.8:
        ftype = ("CHAR" if name == "policy" else "INT32" if name.startswith("has_")
                 else FIELD_TYPE[a.type] if a else rng.choice(FIELD_TYPES))
    else:
        ftype = rng.choice(FIELD_TYPES)
    if ftype == "CHAR":
        return text(name, rng.choice(TEXTS) if rng.random() < 0.8 else
                    "".join(chr(rng.randrange(1, 128)) for _ in range(rng.randrange(0, 12))))
    length = 1 if rng.random() < 0.92 else rng.choice([0, 2, 3])
    values = []
    for _ in range(length):
        if ftype.startswith("FLOAT"):
            v = rng.choice(FLOATS) if rng.random() < 0.6 else rng.uniform(-3, 3)
            with np.errstate(over="ignore"):  # 1e30 as float16 is inf, on purpose
                values.append(float(np.float16(v) if ftype == "FLOAT16" else v).hex())
        elif ftype in INT_RANGE:
            r = INT_RANGE[ftype]
            values.append(rng.choice([0, 1, -1, 2, -100, 7, r - 1, -r]) if rng.random() < 0.7
                          else rng.randrange(-r, r))
        else:
            values.append(rng.randrange(0, 100))
    return {"name": name, "type": ftype, "values": values}


def expected_valid(spec, fields: list[dict]) -> bool:
    """Whether the library must accept these fields: the field types that hold a value
    exactly, one value per numeric field, has_<input> 0/1 once each, the core's one
    attribute rule (normalize_attrs) on what the fields hold, and the attributes that
    have no default given."""
    declared = set(declared_fields(spec))
    seen: set[str] = set()
    given: dict = {}
    for f in fields:
        if f["type"] == "CHAR":
            value = f["text"].rstrip("\0")
        elif f["type"] in NUMERIC_FIELD_TYPES:
            if len(f["values"]) != 1:
                return False
            v = f["values"][0]
            with np.errstate(over="ignore"):  # as the library reads it: 1e300 as float32 is inf
                value = (float(np.float32(float.fromhex(v))) if f["type"] == "FLOAT32"
                         else float.fromhex(v) if f["type"] == "FLOAT64" else int(v))
        else:
            return False
        if f["name"] in declared:
            if f["name"] in seen or f["type"] not in INT_RANGE or value not in (0, 1):
                return False
            seen.add(f["name"])
            continue
        if f["name"] in given:
            return False
        given[f["name"]] = value
    try:
        _spec.normalize_attrs(spec, given, onnx_names=True)
    except ValueError:
        return False
    return all(a.onnx_name in given for a in required(spec))


def test_random_field_collections():
    rng = random.Random(20261201)
    all_names = sorted({a.onnx_name for s in FORWARDS for a in s.attrs})
    cases = []
    for _ in range(1200):
        spec = rng.choice(FORWARDS)
        used: set[str] = set()
        fields = [random_field(rng, spec, all_names, used)
                  for _ in range(rng.randrange(0, len(spec.attrs) + 3))]
        cases.append({"op": spec.onnx_type, "fields": fields, "phase": rng.choice(["build", "runtime"])})
    results, stderr = create(cases)
    assert len(results) == len(cases)
    accepted = 0
    for case, result in zip(cases, results):
        spec = _spec.by_onnx_type(case["op"])
        want = expected_valid(spec, case["fields"])
        assert (result is not None) == want, case
        accepted += want
    assert len(refusals(stderr)) == len(cases) - accepted
    # Both outcomes must be well represented for the test to mean something.
    print(f"{accepted} of {len(cases)} random collections valid")
    assert 300 < accepted < 900, accepted


def test_library_exports_only_its_entry_points():
    out = subprocess.run(["nm", "-D", "--defined-only", library()], capture_output=True, text=True,
                         check=True).stdout
    symbols = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert symbols == {"getCreators", "setLoggerFinder"}
