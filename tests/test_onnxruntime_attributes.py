"""The ONNX Runtime custom-op library against the op specs (issues 11 and 15).

Everything here is generic over ``_spec.all_specs()``: every forward spec is an ONNX
op type; a node's attributes are read with the type the model stored and checked
by the core's one attribute rule when the session is created (a wrong type, a bad
value, a bad policy or ``XPURUNTIME_POLICY`` fail there, naming the node, the
attribute and the expected type); misspelled names are found by
``xpuruntime.interop.onnxruntime.check_model``; row ops take any rank; and every
op type gives what the native op gives for the same inputs.
"""

from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

import frontends  # noqa: E402
import xpuruntime.ops  # noqa: E402
from frontends import present_results  # noqa: E402
from xpuruntime import InvalidArgumentError, _spec  # noqa: E402
from xpuruntime.interop import onnxruntime as xo  # noqa: E402

if xo.library_path(missing_ok=True) is None:
    pytest.skip("libxpuruntime_ort.so is not built", allow_module_level=True)

FORWARD = [s for s in _spec.all_specs() if s.direction == _spec.FORWARD]
NODE = "node0"
N = 8  # the last axis of every example


def ids(specs):
    return [s.onnx_type for s in specs]


# ---- examples built from the operand roles ------------------------------------------------------

def rows_shape(spec, lead):
    roles = {i.role for i in spec.inputs}
    if "table" in roles:
        return (2, 3, 2, N)  # rope: [B, S, H, D]
    if "labels" in roles:
        return (6, N)        # cross_entropy: [T, V]
    return tuple(lead) + (N,)


def example_inputs(spec, rng, dtype="float32", lead=(3, 5), optional=True, table="float",
                   labels="int64"):
    """Valid inputs of a forward spec (None: an optional input left out)."""
    shape = rows_shape(spec, lead)
    out = []
    for i in spec.inputs:
        if i.optional and not optional:
            out.append(None)
            continue
        dt = {"float": dtype, "float_or_f32": dtype if table == "float" else "float32",
              "index": labels, "f32": "float32", "i32": "int32"}[i.dtype]
        if i.role == "labels":
            out.append(rng.integers(0, N, shape[:-1]).astype(dt))
        elif i.role == "parameter":
            out.append(rng.standard_normal(N).astype(dt))
        elif i.role == "table":
            out.append(rng.uniform(-1, 1, (shape[1], N // 2)).astype(dt))
        else:
            out.append(rng.standard_normal(shape).astype(dt))
    return out


def result_names(spec, inputs, drop=()):
    """Names of the ONNX outputs of a node: the spec's results that exist for these inputs."""
    return [spec.outputs[j].name for j in present_results(spec, inputs)
            if spec.outputs[j].name not in drop]


def node_model(spec, inputs, outputs=None, name=NODE, **attrs):
    """A one-node model of ``spec``'s op type over ``inputs`` (None: left empty) with the
    attributes by ONNX name (those without a usable default filled in)."""
    attrs = {**onnx_names(spec, required_attrs(spec)), **attrs}
    return frontends.node_model(spec, inputs, [helper.make_attribute(k, v) for k, v in attrs.items()],
                                outputs=outputs, name=name)


def raw_session(model):
    """A session through the library alone (no Python-side check)."""
    return ort.InferenceSession(model.SerializeToString(), xo.session_options(),
                                providers=["CPUExecutionProvider"])


def run(sess, spec, inputs):
    feed = {i.name: a for i, a in zip(spec.inputs, inputs) if a is not None}
    return sess.run(None, feed)


def required_attrs(spec):
    """Values the examples give to attributes without a usable default (one outside its
    range, such as topk_softmax's k), by Python keyword."""
    out = {}
    for a in spec.attrs:
        if a.required:
            lo = -math.inf if a.min is None else a.min
            hi = math.inf if a.max is None else a.max
            out[a.name] = next(v for v in (2, lo) if lo <= v <= hi)
    return out


def onnx_names(spec, attrs):
    by_name = {a.name: a.onnx_name for a in spec.attrs}
    return {by_name[k]: v for k, v in attrs.items()}


def native(spec, inputs, **attrs):
    """The native op's results (a tuple): required inputs positional, optional ones and every
    attribute (the spec's default unless given) by name. An op without its own function in
    xpuruntime.ops yet goes through the generic call the functions are made of."""
    attrs = {**spec.defaults, **required_attrs(spec), **attrs}
    fn = getattr(xpuruntime.ops, spec.op, None)
    if fn is None:
        policy = attrs.pop("policy", None)
        out = xpuruntime.ops._forward(spec.op, inputs, attrs, policy, None, False)
        return out if isinstance(out, tuple) else (out,)
    args = [a for i, a in zip(spec.inputs, inputs) if not i.optional]
    kwargs = {i.name: a for i, a in zip(spec.inputs, inputs) if i.optional and a is not None}
    out = fn(*args, **kwargs, **attrs)
    return out if isinstance(out, tuple) else (out,)


def assert_matches_native(got, want):
    """ORT and the native op run the same CPU kernel: the results are identical."""
    assert len(got) <= len(want)
    for g, w in zip(got, want):
        w = np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)


# ---- registration: every forward spec, every dtype variant, matching the native op ------------

def dtype_variants(spec):
    """(dtype, table, labels) combinations the spec's dtype rules allow (bf16: numpy has none)."""
    rules = {i.dtype for i in spec.inputs}
    out = []
    for dtype in ("float32", "float16"):
        for table in (["float", "f32"] if "float_or_f32" in rules and dtype != "float32" else ["float"]):
            for labels in (["int64", "int32"] if "index" in rules else ["int64"]):
                out.append((dtype, table, labels))
    return out


CASES = [(s, *v, opt) for s in FORWARD for v in dtype_variants(s)
         for opt in ([False, True] if any(i.optional for i in s.inputs) else [False])]


@pytest.mark.parametrize("spec,dtype,table,labels,optional", CASES,
                         ids=[f"{s.onnx_type}-{d}-{t}-{lb}" + ("-optional" * o) for s, d, t, lb, o in CASES])
def test_matches_native(rng, spec, dtype, table, labels, optional):
    inputs = example_inputs(spec, rng, dtype, optional=optional, table=table, labels=labels)
    sess = xo.inference_session(node_model(spec, inputs))
    got = run(sess, spec, inputs)
    assert [o.name for o in sess.get_outputs()] == result_names(spec, inputs)
    assert_matches_native(got, native(spec, inputs))


@pytest.mark.parametrize("spec", FORWARD, ids=ids(FORWARD))
def test_zero_rows(rng, spec):
    inputs = [a if a is None or i.role not in ("rows", "labels") else a[:0]
              for i, a in zip(spec.inputs, example_inputs(spec, rng))]
    got = run(xo.inference_session(node_model(spec, inputs)), spec, inputs)
    assert_matches_native(got, native(spec, inputs))


@pytest.mark.parametrize("spec", FORWARD, ids=ids(FORWARD))
def test_every_choice_and_policy(rng, spec):
    inputs = example_inputs(spec, rng)
    for a in spec.attrs:
        for choice in a.choices or ():
            sess = xo.inference_session(node_model(spec, inputs, **{a.onnx_name: choice}))
            assert_matches_native(run(sess, spec, inputs), native(spec, inputs, **{a.name: choice}))
    for policy in ("fast", "deterministic", "reference"):
        sess = xo.inference_session(node_model(spec, inputs, policy=policy))
        assert_matches_native(run(sess, spec, inputs), native(spec, inputs, policy=policy))


@pytest.mark.parametrize("spec", FORWARD, ids=ids(FORWARD))
def test_int_for_float_and_bool(rng, spec):
    """The one explicit conversion rule: an int for a float attribute (``scale=2`` is 2.0),
    an int 0/1 for a bool one; the results are those of the native op given the float/bool."""
    numeric = [a for a in spec.attrs if a.type in ("float", "bool")]
    if not numeric:
        pytest.skip("no float or bool attribute")
    inputs = example_inputs(spec, rng)
    for a in numeric:
        lo = -math.inf if a.min is None else a.min
        hi = math.inf if a.max is None else a.max
        value = next(v for v in ((0, 1) if a.type == "bool" else (2, 1, 0)) if lo <= v <= hi
                     and v != a.default)
        want = native(spec, inputs, **{a.name: bool(value) if a.type == "bool" else float(value)})
        for make in (xo.inference_session, raw_session):
            sess = make(node_model(spec, inputs, **{a.onnx_name: value}))
            assert_matches_native(run(sess, spec, inputs), want)


# ---- attributes that must fail session creation --------------------------------------------------

EXPECTED = {"float": "a float", "int": "an int", "bool": r"a bool \(or int 0/1\)", "string": "a string"}
WRONG_TYPES = {  # values of another ONNX attribute type than the spec's
    "float": ["abc", [1.0, 2.0], [1, 2]],
    "int": [1.5, 1.0, "abc", [1, 2]],
    "bool": [1.0, "abc", [0, 1]],
    "string": [1, 1.5, ["mean", "sum"]],
}


def bad_values(a):
    """Values of the right type that the spec refuses, with the message they give."""
    out = []
    if a.type in ("float", "int"):
        if a.min is not None:
            out.append((a.min - 1, f"'{a.onnx_name}' must be"))
        if a.max is not None:
            out.append((a.max + 1, f"'{a.onnx_name}' must be"))
    if a.type == "float":
        out.append((float("nan"), f"attribute '{a.onnx_name}' must not be NaN"))
    if a.type == "bool":
        out.append((2, f"attribute '{a.onnx_name}' must be a bool"))
    if a.choices:
        out.append(("bogus", f"unknown {a.onnx_name} 'bogus'"))
    return out


def attr_cases():
    cases = []
    for s in FORWARD:
        for a in s.attrs:
            for v in WRONG_TYPES[a.type]:
                cases.append((s, a.onnx_name, v, f"attribute '{a.onnx_name}' must be {EXPECTED[a.type]}"))
            for v, msg in bad_values(a):
                cases.append((s, a.onnx_name, v, msg))
        cases.append((s, "policy", "bogus", "unknown policy 'bogus'"))
        cases.append((s, "policy", 1, "attribute 'policy' must be a string"))
    return cases


ATTR_CASES = attr_cases()


@pytest.mark.parametrize("spec,name,value,message", ATTR_CASES,
                         ids=[f"{s.onnx_type}-{n}={v!r}" for s, n, v, _ in ATTR_CASES])
@pytest.mark.parametrize("path", ["library", "check_model"])
def test_bad_attribute_fails_session(rng, spec, name, value, message, path):
    model = node_model(spec, example_inputs(spec, rng), **{name: value})
    label = f"{spec.onnx_type} node '{NODE}': {spec.op}: "
    if path == "library":  # the kernel's own check, at session creation
        with pytest.raises(Exception, match=label + ".*" + message):
            raw_session(model)
    else:
        with pytest.raises(InvalidArgumentError, match=label + ".*" + message):
            xo.inference_session(model)


def misspelled(spec):
    out = [(spec, a.onnx_name + "_", None) for a in spec.attrs] + [(spec, "polcy", None)]
    # The Python keyword in an ONNX node (eps for epsilon) is caught by the library too.
    out += [(spec, a.name, "library") for a in spec.attrs if a.name != a.onnx_name]
    return out


MISSPELLED = [c for s in FORWARD for c in misspelled(s)]


@pytest.mark.parametrize("spec,name,also", MISSPELLED, ids=[f"{s.onnx_type}-{n}" for s, n, _ in MISSPELLED])
def test_misspelled_attribute(rng, spec, name, also):
    model = node_model(spec, example_inputs(spec, rng), **{name: 1})
    expected = f"{spec.onnx_type} node '{NODE}': {spec.op}: unknown attribute '{name}'; expected "
    with pytest.raises(InvalidArgumentError, match=expected):
        xo.inference_session(model)
    with pytest.raises(InvalidArgumentError, match=expected):
        xo.check_model(model.SerializeToString())
    if also == "library":
        with pytest.raises(Exception, match=expected):
            raw_session(model)


@pytest.mark.parametrize("spec", FORWARD, ids=ids(FORWARD))
def test_environment_policy(rng, spec, monkeypatch):
    inputs = example_inputs(spec, rng)
    model = node_model(spec, inputs)
    monkeypatch.setenv("XPURUNTIME_POLICY", "bogus")
    with pytest.raises(Exception, match=f"{spec.onnx_type} node '{NODE}': {spec.op}: unknown policy "
                                        r"'bogus'.*\(from XPURUNTIME_POLICY\)"):
        raw_session(model)
    # An explicit policy attribute wins over the environment.
    sess = raw_session(node_model(spec, inputs, policy="reference"))
    assert_matches_native(run(sess, spec, inputs), native(spec, inputs, policy="reference"))
    monkeypatch.setenv("XPURUNTIME_POLICY", "deterministic")
    assert_matches_native(run(raw_session(model), spec, inputs),
                          native(spec, inputs, policy="deterministic"))


def test_unknown_op_type():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    node = helper.make_node("NoSuchOp", ["x"], ["y"], name=NODE, domain=xo.DOMAIN)
    model = xo.make_model(helper.make_graph([node], "g", [x], [x]))
    with pytest.raises(InvalidArgumentError, match=f"NoSuchOp node '{NODE}': unknown op type"):
        xo.check_model(model)


def test_check_model_walks_subgraphs(rng):
    spec = _spec.by_onnx_type("Softmax")
    inner = node_model(spec, example_inputs(spec, rng), scal=2.0).graph
    cond = helper.make_tensor_value_info("c", TensorProto.BOOL, [])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node("If", ["c"], ["y"], then_branch=inner, else_branch=inner)
    model = xo.make_model(helper.make_graph([node], "g", [cond], [y]))
    with pytest.raises(InvalidArgumentError, match="unknown attribute 'scal'"):
        xo.check_model(model)


# ---- outputs: results the node leaves out, results without their input ------------------------

OPTIONAL_RESULTS = [(s, s.outputs[j]) for s in FORWARD for j in s.result_indices
                    if s.outputs[j].present_if is not None]


@pytest.mark.parametrize("spec,out", OPTIONAL_RESULTS, ids=[f"{s.onnx_type}-{o.name}" for s, o in OPTIONAL_RESULTS])
def test_optional_result(rng, spec, out):
    inputs = example_inputs(spec, rng)
    # Left out of the node: the op writes it to scratch memory, the other results are right.
    sess = xo.inference_session(node_model(spec, inputs, outputs=result_names(spec, inputs, drop=[out.name])))
    assert_matches_native(run(sess, spec, inputs), native(spec, inputs))
    # Taken without the input it comes from: refused when the session is created.
    without = list(inputs)
    without[out.present_if] = None
    model = node_model(spec, without, outputs=result_names(spec, inputs))
    with pytest.raises(Exception, match=f"output '{out.name}' exists only with input "
                                        f"'{spec.inputs[out.present_if].name}'"):
        raw_session(model)


# ---- any rank: leading axes fold ----------------------------------------------------------------

ROW_SPECS = [s for s in FORWARD if {i.role for i in s.inputs} <= {"rows", "parameter"}]
LEADS = {9: (2, 1, 3, 1, 1, 2, 1, 1), 10: (1,) * 7 + (2, 3), 11: (3, 1, 1, 2) + (1,) * 6,
         12: (2,) * 3 + (1,) * 8}


@pytest.mark.parametrize("spec", ROW_SPECS, ids=ids(ROW_SPECS))
@pytest.mark.parametrize("rank", sorted(LEADS))
def test_high_rank(rng, spec, rank):
    lead = LEADS[rank]
    assert len(lead) + 1 == rank
    inputs = example_inputs(spec, rng, lead=lead)
    got = run(xo.inference_session(node_model(spec, inputs)), spec, inputs)
    flat = [a if a is None or i.role != "rows" else a.reshape(-1, N) for i, a in zip(spec.inputs, inputs)]
    want = native(spec, flat)
    for g, w in zip(got, want):
        assert g.shape[:-1] == lead
        np.testing.assert_array_equal(g, np.asarray(w).reshape(g.shape))


TWO_ROWS = [s for s in ROW_SPECS if sum(i.role == "rows" for i in s.inputs) >= 2]


@pytest.mark.parametrize("spec", TWO_ROWS, ids=ids(TWO_ROWS))
def test_high_rank_leading_axes_must_match(rng, spec):
    # Same element count and the same folded shape, different leading axes: refused.
    inputs = example_inputs(spec, rng, lead=(2, 3) + (1,) * 7)
    second = [k for k, i in enumerate(spec.inputs) if i.role == "rows"][1]
    inputs[second] = inputs[second].reshape((3, 2) + (1,) * 7 + (N,))
    sess = xo.inference_session(node_model(spec, inputs))
    with pytest.raises(Exception, match=f"{spec.op}: '{spec.inputs[second].name}' .* must have the "
                                        "same leading axes"):
        run(sess, spec, inputs)


# ---- RegisterCustomOps with an ONNX Runtime too old for the library -----------------------------

def test_register_reports_missing_api_version():
    lib = ctypes.CDLL(xo.library_path())
    register = lib.RegisterCustomOps
    register.restype, register.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_void_p]
    seen = []
    status = ctypes.c_uint64(0)  # what the fake CreateStatus hands back

    @ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p)
    def create_status(code, message):
        seen.append((code, message.decode()))
        return ctypes.addressof(status)

    api = (ctypes.c_void_p * 4)(ctypes.cast(create_status, ctypes.c_void_p).value)  # CreateStatus first
    version = ctypes.create_string_buffer(b"1.9.0")
    oldest = [None]

    @ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint32)
    def get_api(v):  # an ORT of API 9: GetApi(v) answers v <= 9 only
        oldest[0] = v if oldest[0] is None else min(oldest[0], v)
        return ctypes.addressof(api) if v <= 9 else None

    @ctypes.CFUNCTYPE(ctypes.c_void_p)
    def get_version():
        return ctypes.addressof(version)

    class ApiBase(ctypes.Structure):
        _fields_ = [("GetApi", ctypes.c_void_p), ("GetVersionString", ctypes.c_void_p)]

    base = ApiBase(ctypes.cast(get_api, ctypes.c_void_p), ctypes.cast(get_version, ctypes.c_void_p))
    result = register(None, ctypes.addressof(base))
    assert result == ctypes.addressof(status), "a missing API version must be an error, not success"
    assert len(seen) == 1 and seen[0][0] == 1  # ORT_FAIL
    assert "needs ONNX Runtime API version 16" in seen[0][1] and "1.9.0" in seen[0][1]
    assert oldest[0] == 1  # the status comes from the oldest API, which every ORT serves
