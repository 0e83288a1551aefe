"""The op specs of the C++ core, as bound to Python (core.op_specs, call_op,
workspace_bytes, output_descs): the one attribute rule, output inference and the
generic call's checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xpuruntime import _core as core

OPS = ["rms_norm", "layer_norm", "softmax", "swiglu", "geglu", "rope", "cross_entropy"]
ONNX = ["RMSNorm", "LayerNorm", "Softmax", "SwiGLU", "GeGLU", "RoPE", "CrossEntropy"]


def spec(op, direction="forward"):
    return next(s for s in core.op_specs() if s["op"] == op and s["direction"] == direction)


def test_every_op_has_a_forward_and_a_backward_in_ops_def_order():
    specs = core.op_specs()
    found = [(s["op"], s["direction"]) for s in specs]
    assert found[: 2 * len(OPS)] == [(op, d) for op in OPS for d in ("forward", "backward")]
    for op, onnx in zip(OPS, ONNX):
        assert spec(op)["onnx_type"] == onnx


@pytest.mark.parametrize("op", OPS)
def test_backward_takes_the_forward_attributes(op):
    assert spec(op, "backward")["attrs"] == spec(op)["attrs"]


def test_attributes_and_defaults_follow_ops_md():
    def attrs(op):
        return {a["name"]: (a["onnx_name"], a["type"], a["default"]) for a in spec(op)["attrs"]}
    assert attrs("rms_norm") == {"eps": ("epsilon", "float", 1e-6)}
    assert attrs("layer_norm") == {"eps": ("epsilon", "float", 1e-5)}
    assert attrs("softmax") == {"scale": ("scale", "float", 1.0)}
    assert attrs("rope") == {"interleaved": ("interleaved", "bool", False)}
    assert attrs("swiglu") == attrs("geglu") == {}
    assert attrs("cross_entropy") == {
        "ignore_index": ("ignore_index", "int", -100),
        "label_smoothing": ("label_smoothing", "float", 0.0),
        "reduction": ("reduction", "string", "mean"),
    }
    ce = {a["name"]: a for a in spec("cross_entropy")["attrs"]}
    assert (ce["label_smoothing"]["min"], ce["label_smoothing"]["max"]) == (0.0, 1.0)
    assert ce["reduction"]["choices"] == ("mean", "sum", "none")
    assert spec("rms_norm")["attrs"][0]["min"] == 0.0


def test_saved_outputs_and_workspaces():
    def saved(op):
        return [o["name"] for o in spec(op)["outputs"] if o["use"] == "saved"]
    assert saved("rms_norm") == []  # the backward recomputes rstd from x
    assert saved("layer_norm") == ["mean", "rstd"]
    assert saved("cross_entropy") == ["lse"]
    assert [i["name"] for i in spec("rms_norm", "backward")["inputs"]] == [
        "dy", "x", "weight", "dh"]
    assert [i["name"] for i in spec("layer_norm", "backward")["inputs"]] == [
        "dy", "x", "weight", "mean", "rstd"]
    assert [i["name"] for i in spec("cross_entropy", "backward")["inputs"]] == [
        "dloss", "logits", "labels", "lse"]
    with_ws = {(s["op"], s["direction"]) for s in core.op_specs() if s["has_workspace"]}
    assert with_ws == {("rms_norm", "backward"), ("layer_norm", "backward"),
                       ("cross_entropy", "forward"), ("cross_entropy", "backward")}


def _x():
    return np.random.default_rng(0).standard_normal((4, 8)).astype(np.float32)


def call_rms(attrs, policy="fast"):
    x = _x()
    w = np.ones(8, np.float32)
    y = np.empty_like(x)
    core.call_op("rms_norm", "forward", [x, w, None], [y, None], None, attrs, policy, 0)
    return x, y


@pytest.mark.parametrize("attrs, match", [
    ({"epz": 1e-6}, r"^rms_norm: unknown attribute 'epz'; expected eps or policy$"),
    ({"eps": "small"}, r"^rms_norm: attribute 'eps' must be a float, got a string$"),
    ({"eps": True}, r"^rms_norm: attribute 'eps' must be a float, got a bool$"),
    ({"eps": math.nan}, r"^rms_norm: attribute 'eps' must not be NaN$"),
    ({"eps": -1.0}, r"^rms_norm: 'eps' must be >= 0, got -1$"),
    ({"eps": [1]}, r"^rms_norm: attribute 'eps' must be a bool, int, float or str"),
])
def test_attribute_errors_name_the_op_and_the_attribute(attrs, match):
    with pytest.raises(core.InvalidArgumentError, match=match):
        call_rms(attrs)


def test_an_int_is_a_float_and_a_numpy_float_is_a_float():
    for eps in (1, np.float32(0.5), np.float64(0.25)):
        x, y = call_rms({"eps": eps})
        ref = x / np.sqrt((x.astype(np.float64) ** 2).mean(-1, keepdims=True) + float(eps))
        assert np.linalg.norm(y - ref) / np.linalg.norm(ref) < 1e-5


@pytest.mark.parametrize("policy", ["bogus", "Fast", ""])
def test_unknown_policy_is_refused_with_the_one_message(policy):
    with pytest.raises(core.InvalidArgumentError,
                       match=f"^rms_norm: unknown policy '{policy}'; expected fast, "
                             "deterministic or reference$"):
        call_rms({}, policy)
    with pytest.raises(core.InvalidArgumentError, match="attribute 'policy' given twice"):
        call_rms({"policy": "fast"})


def _rope_args(interleaved_attr):
    x = np.random.default_rng(1).standard_normal((1, 3, 2, 4)).astype(np.float32)
    c = np.ones((3, 2), np.float32)
    s = np.zeros((3, 2), np.float32)
    y = np.empty_like(x)
    core.call_op("rope", "forward", [x, c, s], [y], None, interleaved_attr, "fast", 0)
    return x, y


def test_bool_attribute_takes_bools_and_ints_0_1_only():
    for v in (True, False, 0, 1):
        x, y = _rope_args({"interleaved": v})
        np.testing.assert_array_equal(x, y)  # angle 0: the identity
    with pytest.raises(core.InvalidArgumentError,
                       match=r"^rope: attribute 'interleaved' must be a bool \(or int 0/1\), got 2$"):
        _rope_args({"interleaved": 2})
    with pytest.raises(core.InvalidArgumentError, match="'interleaved' must be a bool"):
        _rope_args({"interleaved": 1.0})


def _ce(attrs):
    logits = np.random.default_rng(2).standard_normal((3, 5)).astype(np.float32)
    labels = np.array([0, 4, 2], np.int64)
    loss = np.empty((), np.float32)
    ws = np.empty(core.workspace_bytes("cross_entropy", "forward", [(3, 5), (3,)], attrs), np.uint8)
    core.call_op("cross_entropy", "forward", [logits, labels], [loss, None], ws, attrs, "fast", 0)
    return float(loss)


def test_int_attribute_takes_bools_but_not_floats_and_strings_take_choices():
    assert _ce({"ignore_index": True}) == _ce({"ignore_index": 1})
    with pytest.raises(core.InvalidArgumentError,
                       match="^cross_entropy: attribute 'ignore_index' must be an int, got a float$"):
        _ce({"ignore_index": 1.0})
    with pytest.raises(core.InvalidArgumentError,
                       match=r"^cross_entropy: 'label_smoothing' must be in \[0, 1\], got 1.5$"):
        _ce({"label_smoothing": 1.5})
    with pytest.raises(core.InvalidArgumentError,
                       match="^cross_entropy: unknown reduction 'avg'; expected mean, sum or none$"):
        _ce({"reduction": "avg"})
    with pytest.raises(core.InvalidArgumentError, match="attribute 'reduction' must be a string"):
        _ce({"reduction": 1})


@pytest.mark.parametrize("op, direction, shapes, dtypes, attrs, want", [
    ("rms_norm", "forward", [(2, 3, 8), (8,), None], ["bfloat16", "bfloat16", None], {},
     [((2, 3, 8), "bfloat16"), None]),
    ("rms_norm", "forward", [(5, 8), (8,), (5, 8)], ["float16"] * 3, {},
     [((5, 8), "float16"), ((5, 8), "float16")]),
    ("rms_norm", "backward", [(5, 8), (5, 8), (8,), None],
     ["float32", "float32", "float32", None], {},
     [((5, 8), "float32"), ((8,), "float32")]),
    ("layer_norm", "forward", [(0, 4), (4,), (4,)], ["float32"] * 3, {},
     [((0, 4), "float32"), ((0,), "float32"), ((0,), "float32")]),
    ("cross_entropy", "forward", [(6, 10), (6,)], ["float16", "int32"], {},
     [((), "float32"), ((6,), "float32")]),
    ("cross_entropy", "forward", [(2, 3, 10), (2, 3)], ["float16", "int32"], {"reduction": "none"},
     [((2, 3), "float32"), ((2, 3), "float32")]),
    ("cross_entropy", "backward", [(), (6, 10), (6,), (6,)],
     ["float32", "bfloat16", "int64", "float32"], {}, [((6, 10), "bfloat16")]),
    ("swiglu", "backward", [(3, 4)] * 3, ["float16"] * 3, {},
     [((3, 4), "float16"), ((3, 4), "float16")]),
])
def test_output_inference(op, direction, shapes, dtypes, attrs, want):
    assert core.output_descs(op, direction, shapes, dtypes, attrs) == want


def test_workspace_bytes_follow_the_ops():
    # 3 groups x 7 dweight partials, then 3 rows' rstd, each rounded up to 4 floats.
    assert core.workspace_bytes("rms_norm", "backward", [(3, 7), (3, 7), (7,), None], {}) \
        == (24 + 4) * 4
    # Bounded in the rows (a symbolic batch exports): the rstd hold a chunk of rows at most.
    assert core.workspace_bytes("rms_norm", "backward", [(10**7, 8), (10**7, 8), (8,), None], {}) \
        == core.workspace_bytes("rms_norm", "backward", [(10**8, 8), (10**8, 8), (8,), None], {})
    assert core.workspace_bytes("layer_norm", "backward",
                                [(10**6, 128), (10**6, 128), (128,), (10**6,), (10**6,)], {}) \
        == 2 * 512 * 128 * 4
    assert core.workspace_bytes("cross_entropy", "forward", [(9, 4), (9,)], {}) == 9 * 4
    assert core.workspace_bytes("cross_entropy", "forward", [(9, 4), (9,)],
                                {"reduction": "none"}) == 0
    assert core.workspace_bytes("softmax", "forward", [(9, 4)], {}) == 0


def test_generic_call_checks_counts_required_inputs_and_names():
    x = _x()
    y = np.empty_like(x)
    with pytest.raises(core.InvalidArgumentError, match="softmax forward: expected 1 inputs, 1 outputs"):
        core.call_op("softmax", "forward", [x, x], [y], None, {}, "fast", 0)
    with pytest.raises(core.InvalidArgumentError, match="^rms_norm: argument 'weight' is required$"):
        core.call_op("rms_norm", "forward", [x, None, None], [y, None], None, {}, "fast", 0)
    with pytest.raises(core.InvalidArgumentError, match="^unknown op 'nope'; known ops: rms_norm, "):
        core.call_op("nope", "forward", [x], [y], None, {}, "fast", 0)
    with pytest.raises(core.InvalidArgumentError, match="unknown direction 'sideways'"):
        core.call_op("softmax", "sideways", [x], [y], None, {}, "fast", 0)
    with pytest.raises(core.InvalidArgumentError, match="softmax: input 0 is not a DLPack array"):
        core.call_op("softmax", "forward", [[1.0]], [y], None, {}, "fast", 0)
    core.call_op("softmax", "forward", [x], [y], None, {"scale": 2}, "reference", 0)
    e = np.exp(2 * (x - x.max(-1, keepdims=True)))
    np.testing.assert_allclose(y, e / e.sum(-1, keepdims=True), rtol=1e-5)


# ---- xpuruntime._spec: the Python view of the specs ---------------------------------------

from xpuruntime import _spec  # noqa: E402


def _sample_inputs(s):
    """Concrete shapes and dtypes for every input of a spec (optional ones present)."""
    rows, n = (2, 3), 8
    by_role = {"rows": rows + (n,), "parameter": (n,), "labels": rows, "row_stat": rows,
               "table": (3, n // 2), "scalar": ()}
    dtype = {"float": "float16", "float_or_f32": "float32", "index": "int64", "f32": "float32",
             "i32": "int32"}
    shapes = [by_role[i.role] for i in s.inputs]
    if s.op == "rope":
        shapes[0] = (2, 3, 4, n)  # [B, S, H, D]
    return shapes, [dtype[i.dtype] for i in s.inputs]


@pytest.mark.parametrize("s", _spec.all_specs(), ids=lambda s: f"{s.op}-{s.direction}")
@pytest.mark.parametrize("drop_optional", [False, True])
def test_python_evaluator_agrees_with_the_core(s, drop_optional):
    shapes, dtypes = _sample_inputs(s)
    if drop_optional:
        shapes = [None if i.optional else sh for i, sh in zip(s.inputs, shapes)]
        dtypes = [None if i.optional else d for i, d in zip(s.inputs, dtypes)]
    given = {a.name: 2 for a in s.attrs if a.required}  # topk's k has no default
    for attrs in [given] + ([{"reduction": "none"}] if s.op == "cross_entropy" else []):
        want = core.output_descs(s.op, s.direction, shapes, dtypes, attrs)
        py_shapes = _spec.output_shapes(s, shapes, _spec.normalize_attrs(s, attrs))
        py_dtypes = _spec.output_dtypes(s, dtypes)
        got = [None if sh is None else (sh, dt) for sh, dt in zip(py_shapes, py_dtypes)]
        assert got == want


class Sym:
    """A stand-in for a symbolic dimension: supports nothing but identity."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


def test_shape_evaluator_works_on_symbolic_dims():
    b, t, n = Sym("b"), Sym("t"), Sym("n")
    fwd = _spec.get("rms_norm")
    assert _spec.output_shapes(fwd, [(b, t, n), (n,), None]) == [(b, t, n), None]
    ln = _spec.get("layer_norm")  # row statistics: the leading axes, f32
    assert _spec.output_shapes(ln, [(b, t, n), (n,), (n,)]) == [(b, t, n), (b, t), (b, t)]
    ce = _spec.get("cross_entropy")
    assert _spec.output_shapes(ce, [(t, n), (t,)], {"reduction": "none"}) == [(t,), (t,)]
    assert _spec.output_shapes(ce, [(t, n), (t,)]) == [(), (t,)]
    assert _spec.output_dtypes(fwd, ["bf16", "bf16", None], f32="F32") == ["bf16", None]
    assert _spec.output_dtypes(ln, ["bf16"] * 3, f32="F32") == ["bf16", "F32", "F32"]


def test_spec_lookup_and_attribute_normalisation():
    assert _spec.op_names()[: len(OPS)] == tuple(OPS)  # ops.def order; later ops may follow
    assert _spec.by_onnx_type("CrossEntropy") is _spec.get("cross_entropy")
    s = _spec.get("rms_norm", "backward")
    assert s.input_names == ("dy", "x", "weight", "dh")
    assert _spec.get("layer_norm").saved_indices == (1, 2)
    assert _spec.get("rms_norm").result_indices == (0, 1)
    with pytest.raises(ValueError, match="unknown op 'nope'; known ops: rms_norm, layer_norm"):
        _spec.get("nope")
    ce = _spec.get("cross_entropy")
    assert _spec.normalize_attrs(ce, {"ignore_index": True, "label_smoothing": 0}) == {
        "ignore_index": 1, "label_smoothing": 0.0, "reduction": "mean"}
    assert _spec.normalize_attrs(_spec.get("rope"), {"interleaved": 1}) == {"interleaved": True}
    assert _spec.normalize_attrs(_spec.get("rms_norm"), {"epsilon": 1, "policy": "reference"},
                                 onnx_names=True) == {"epsilon": 1.0, "policy": "reference"}
    with pytest.raises(ValueError, match="^cross_entropy: unknown reduction 'avg'"):
        _spec.normalize_attrs(ce, {"reduction": "avg"})
    with pytest.raises(ValueError, match="^rms_norm: unknown policy 'nope'"):
        _spec.normalize_attrs(_spec.get("rms_norm"), {"policy": "nope"})
    assert _spec.workspace_bytes(ce, [(9, 4), (9,)], {"reduction": "sum"}) == 9 * 4
    assert _spec.workspace_bytes(_spec.get("softmax"), [(9, 4)]) == 0


def test_native_frontend_has_a_documented_function_per_op_and_direction():
    import inspect

    from xpuruntime import ops
    for op in _spec.op_names():
        for name in (op, f"{op}_backward"):
            fn = getattr(ops, name)
            assert "{policy_stream}" not in fn.__doc__ and "stream:" in fn.__doc__, name
            params = inspect.signature(fn).parameters
            assert "policy" in params and "stream" in params, name
    # Backward functions take the saved tensors, positionally, in spec order.
    for op in ("rms_norm", "layer_norm", "cross_entropy"):
        bwd = _spec.get(op, "backward")
        params = list(inspect.signature(getattr(ops, f"{op}_backward")).parameters)
        required = [i.name for i in bwd.inputs if not i.optional]
        assert params[: len(required)] == required, op


def test_an_attribute_without_a_usable_default_is_required_by_the_core():
    # topk_softmax's k: its spec default lies outside its range, so the core's one
    # attribute rule (every frontend's) refuses a call that leaves it out.
    for onnx_names in (False, True):
        with pytest.raises(core.InvalidArgumentError,
                           match=r"^topk_softmax: attribute 'k' is required$"):
            core.parse_attrs("topk_softmax", "forward", {"renormalize": True}, onnx_names)
    assert core.parse_attrs("topk_softmax", "backward", {"k": 2})["k"] == 2
    assert [a.name for s in _spec.all_specs() for a in s.attrs if a.required] == ["k", "k"]
