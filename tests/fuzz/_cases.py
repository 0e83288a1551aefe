"""Hypothesis strategies for op cases, made from the op specs alone (``_spec.all_specs()``),
so that an op added to ffi/ops.def is fuzzed with no change here.

A case is plain JSON (the child process rebuilds its arrays from ``seed``):

    {"frontend", "container", "op", "direction", "inputs": [descriptor | None],
     "attrs": {name: encoded value}, "policy": encoded value | absent, "env_policy",
     "grad", "jit", "return_stats", "seed", "expect", "names", "why"}

``expect`` is what the contract (OPS.md, op_spec.h) says must happen:
``"valid"`` (the result equals the float64 reference), ``"invalid"`` (an error of the
project's types whose message names the op and one of ``names``) or ``"either"``
(one of the two, for inputs the contract lets a frontend refuse: layouts the native
frontend does not walk, dtypes a container cannot carry through DLPack, empty rows
of ops that need a column). Each case breaks at most one argument, so ``names``
says which arguments an error may blame.
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from xpuruntime import _spec

FLOATS = ("float32", "float16", "bfloat16")
# Dtypes no op accepts for a float operand (OPS.md: f32, f16, bf16 only).
NOT_FLOAT = ("float64", "int32", "int64", "int8", "uint16", "bool", "complex64")
ALL_DTYPES = FLOATS + NOT_FLOAT
# What each container can hold (jax without x64 has no 64-bit types).
CONTAINER_DTYPES = {
    "numpy": ALL_DTYPES,
    "torch": ALL_DTYPES,
    "jax": ("float32", "float16", "bfloat16", "int32", "int8", "uint16", "bool", "complex64"),
    "onnx": ("float32", "float16", "bfloat16", "float64", "int32", "int64", "int8", "uint16",
             "bool"),
}
# Layouts of an input beyond a dense one (each container's own kinds of views).
CONTAINER_LAYOUTS = {
    "numpy": ("transposed", "sliced", "expanded", "negative", "offset"),
    "torch": ("transposed", "sliced", "expanded", "offset"),
    "jax": (),
    "onnx": (),
}
POLICIES = ("fast", "deterministic", "reference")
MAX_ELEMENTS = 4096  # per operand: keeps a case to a few milliseconds


class Frontend:
    """What one frontend is fuzzed through."""

    def __init__(self, name, containers, directions=("forward",), grad=False, onnx_attrs=False,
                 layouts_must_work=False):
        self.name, self.containers, self.directions = name, containers, directions
        self.grad, self.onnx_attrs, self.layouts_must_work = grad, onnx_attrs, layouts_must_work


FRONTENDS = {
    # Native: both directions called directly; a layout the core cannot walk may be
    # refused with a clear error (the native frontend passes arrays as they are).
    "native": Frontend("native", ("numpy", "torch"), ("forward", "backward")),
    "jax": Frontend("jax", ("jax",), grad=True),
    # torch copies what the core cannot walk: every layout must give the right answer.
    "torch": Frontend("torch", ("torch",), grad=True, layouts_must_work=True),
    "onnxruntime": Frontend("onnxruntime", ("onnx",), onnx_attrs=True),
}


# ---- attribute values ----------------------------------------------------------------------------
# Encoded values keep Python's types through JSON: {"t": tag, "v": value}.

def enc(tag: str, v) -> dict:
    return {"t": tag, "v": v}


def _python_tag(v) -> str:
    return {bool: "bool", int: "int", float: "float", str: "str"}[type(v)]


def valid_number(draw, a: _spec.AttrSpec, n_cols: int | None, sized: bool) -> float | int:
    """A value in the attribute's range, numerically sane for an f32 kernel."""
    if sized:  # an attribute that sizes an output axis (topk's k): 1..N
        return draw(st.integers(1, max(1, n_cols)))
    if a.type == "bool":
        return draw(st.booleans())
    lo = a.min if a.min is not None and math.isfinite(a.min) else None
    hi = a.max if a.max is not None and math.isfinite(a.max) else None
    if a.type == "int":
        if a.name == "ignore_index" or (lo is None and hi is None):
            # Row labels to ignore (0..N-1 hit rows), the usual -100, and int64 extremes.
            picks = [st.integers(-3, max(0, (n_cols or 1) - 1)), st.just(int(a.default)),
                     st.sampled_from([2**31 - 1, -2**31, 2**31 + 1, 2**53, -2**53])]
            return draw(st.one_of(*picks))
        lo = -2**31 if lo is None else int(lo)
        hi = 2**31 - 1 if hi is None else int(hi)
        return draw(st.integers(lo, hi))
    if lo is not None and hi is not None:
        return draw(st.one_of(st.sampled_from([lo, hi]), st.floats(lo, hi)))
    if lo is not None:
        return draw(st.one_of(st.just(lo), st.floats(lo, lo + 1.0), st.just(lo + 1e-6)))
    # Unbounded (softmax's scale): magnitudes whose results f16 can still hold.
    magnitude = draw(st.one_of(st.sampled_from([0.0, 1.0, 0.125]), st.floats(0.01, 4.0)))
    return magnitude if draw(st.booleans()) else -magnitude


def valid_attr(draw, a: _spec.AttrSpec, n_cols: int, sized: bool) -> dict:
    """A valid value in one of the Python types the core's rule accepts for it."""
    if a.type == "string":
        return enc("str", draw(st.sampled_from(a.choices or (a.default,))))
    v = valid_number(draw, a, n_cols, sized)
    if a.type == "float":
        # An int is accepted for a float attribute (op_spec.h).
        if float(v).is_integer() and abs(v) < 2**53 and draw(st.booleans()):
            return enc("int", int(v))
        return enc("float", float(v))
    if a.type == "bool":  # a bool, or an int 0/1
        return enc("bool", bool(v)) if draw(st.booleans()) else enc("int", int(v))
    return enc("int", int(v))


def invalid_attr(draw, a: _spec.AttrSpec, n_cols: int, sized: bool) -> tuple[dict, str]:
    """A value the core's rule refuses: a wrong Python type, NaN, out of range, not a
    choice, an integer beyond int64. Returns (encoded value, why)."""
    wrong_types = {
        "float": [enc("str", "abc"), enc("none", None), enc("list", [1.0]), enc("bool", True),
                  enc("bytes", "1")],
        "int": [enc("float", 2.0), enc("float", 0.5), enc("str", "1"), enc("none", None),
                enc("list", [1])],
        "bool": [enc("float", 1.0), enc("str", "true"), enc("none", None), enc("int", 2),
                 enc("int", -1)],
        "string": [enc("int", 1), enc("float", 1.0), enc("none", None), enc("bool", True),
                   enc("bytes", a.default)],
    }[a.type]
    bad = list(wrong_types)
    if a.type in ("float", "int"):
        if a.type == "float":
            bad.append(enc("float", math.nan))
        if a.min is not None and math.isfinite(a.min):
            below = a.min - (1 if a.type == "int" else draw(st.sampled_from([1e-3, 1.0, 1e30])))
            bad.append(enc(a.type, below))
        if a.max is not None and math.isfinite(a.max):
            above = a.max + (1 if a.type == "int" else draw(st.sampled_from([1e-3, 1.0])))
            bad.append(enc(a.type, above))
        if a.type == "int":
            bad += [enc("int", 2**63), enc("int", 2**70), enc("int", -2**63 - 1),
                    enc("int", 2**1100)]
        else:
            bad.append(enc("int", 2**1100))  # beyond any float
        if sized:
            bad += [enc("int", 0), enc("int", n_cols + 1)]
    if a.type == "string" and a.choices:
        bad += [enc("str", "bogus"), enc("str", a.choices[0].upper()), enc("str", "")]
    v = draw(st.sampled_from(bad))
    return v, f"attribute {a.name}={v['t']}:{v['v']!r}"


# ---- ONNX attributes (typed protobuf attributes) -------------------------------------------------

ONNX_VALID = {"float": ("FLOAT", "INT"), "int": ("INT",), "bool": ("INT",), "string": ("STRING",)}


def onnx_attr(draw, a: _spec.AttrSpec, n_cols: int, sized: bool, valid: bool) -> tuple[dict, str]:
    """(ONNX attribute {"type", "value"}, why) of one of the spec's attributes."""
    if valid:
        if a.type == "string":
            return {"type": "STRING", "value": draw(st.sampled_from(a.choices or (a.default,)))}, ""
        v = valid_number(draw, a, n_cols, sized)
        if a.type == "float":
            if float(v).is_integer() and abs(v) < 2**31 and draw(st.booleans()):
                return {"type": "INT", "value": int(v)}, ""  # the int -> float rule
            return {"type": "FLOAT", "value": float(v)}, ""
        if a.type == "int" and not -2**63 <= int(v) < 2**63:
            v = a.default
        return {"type": "INT", "value": int(v)}, ""
    wrong = {"float": [("STRING", "2.0"), ("INTS", [1]), ("FLOATS", [1.0])],
             "int": [("FLOAT", 2.0), ("FLOAT", 0.5), ("STRING", "1"), ("INTS", [1])],
             "bool": [("FLOAT", 1.0), ("FLOAT", 0.0), ("STRING", "1"), ("INT", 2), ("INT", -1)],
             "string": [("INT", 1), ("FLOAT", 1.0), ("STRINGS", [a.default])]}[a.type]
    if a.type == "float":
        wrong.append(("FLOAT", math.nan))
        if a.min is not None and math.isfinite(a.min):
            wrong.append(("FLOAT", a.min - 1.0))
        if a.max is not None and math.isfinite(a.max):
            wrong.append(("FLOAT", a.max + 0.5))
    if a.type == "string" and a.choices:
        wrong += [("STRING", "bogus"), ("STRING", a.choices[0].upper())]
    if sized:
        wrong += [("INT", 0), ("INT", n_cols + 1)]
    # Attribute kinds no op takes (a tensor, a graph, no type at all), and for strings bytes
    # that are no UTF-8 text.
    wrong += [("TENSOR", 1.0), ("GRAPH", None), ("UNDEFINED", 1.0)]
    if a.type == "string":
        wrong += [("STRING_BYTES", "fffe00"), ("STRING_BYTES", (a.default or "x").encode().hex() + "ff")]
    t, v = draw(st.sampled_from(wrong))
    return {"type": t, "value": v}, f"ONNX attribute {a.onnx_name}: {t} {v!r}"


# ---- shapes ------------------------------------------------------------------------------------

def _cap(dims: list[int], limit: int) -> list[int]:
    """Dims with leading ones forced until the product fits ``limit``."""
    out = list(dims)
    i = 0
    while math.prod(out) > limit and i < len(out):
        out[i] = 1
        i += 1
    return out


def row_shape(draw, rank: int, n_cols: int) -> list[int]:
    lead = [draw(st.sampled_from([1, 1, 1, 2, 3, 4, 5, 7])) for _ in range(rank - 1)]
    lead = _cap(lead, max(1, MAX_ELEMENTS // max(1, n_cols)))
    if lead and draw(st.integers(0, 9)) == 0:
        lead[draw(st.integers(0, len(lead) - 1))] = 0  # no rows
    return lead + [n_cols]


def has_table(spec: _spec.OpSpec) -> bool:
    return any(i.role == "table" for i in spec.inputs)


def forward_shapes(draw, spec: _spec.OpSpec) -> tuple[list, int]:
    """Valid shapes of every forward input (None: leave an optional input out) and N.
    Rows share one shape [..., N]; with a table (rope) rows are [B, S, H, D] and
    tables [S, D/2]."""
    if has_table(spec):
        b, s, h = (draw(st.sampled_from([0, 1, 1, 2, 3])) for _ in range(3))
        d = draw(st.sampled_from([2, 2, 4, 6, 8, 16, 0]))
        rows = [b, s, h, d]
    else:
        n = draw(st.one_of(st.sampled_from([1, 2, 3, 4, 5, 7, 8, 16, 31, 33, 64, 0]),
                           st.integers(1, 300), st.sampled_from([1000, 2048, 4096])))
        rank = draw(st.one_of(st.integers(1, 4), st.integers(1, 12)))
        rows = row_shape(draw, rank, n)
    n = rows[-1]
    shapes = []
    for i in spec.inputs:
        if i.optional and not draw(st.booleans()):
            shapes.append(None)
        elif i.role == "rows":
            shapes.append(list(rows))
        elif i.role == "parameter":
            shapes.append([n])
        elif i.role == "table":
            shapes.append([rows[1], n // 2])
        elif i.role == "labels":
            shapes.append(list(rows[:-1]))
        else:
            raise AssertionError(f"{spec.op}: a forward input of role {i.role}")
    return shapes, n


def bad_shape(draw, spec: _spec.OpSpec, i: int, shapes: list) -> list[int] | None:
    """A shape for input ``i`` that its role does not allow next to the others (None
    when this role has no such shape here)."""
    role = spec.inputs[i].role
    anchor = next(s for s, sp in zip(shapes, spec.inputs) if sp.role == "rows" and s is not None)
    n = anchor[-1]
    if role == "rows":
        if i == anchor_index(spec, shapes):
            if has_table(spec):
                return draw(st.sampled_from([anchor[1:], anchor + [2], anchor[:-1] + [anchor[-1] + 1],
                                             [], anchor[:2] + [1] * 8 + anchor[2:]]))
            return []  # 0-d: an op over the last axis needs one
        choices = [anchor[:-1] + [n + 1], [2] + anchor, anchor[1:] or [n + 2]]
        if len(anchor) > 1:
            choices.append(anchor[:-2] + [anchor[-2] + 1] + [n])
    elif role == "parameter":
        choices = [[n + 1], [1, n], [n, 1], [], [2 * n + 2]]
    elif role == "table":
        s, half = shapes[i]
        choices = [[s + 1, half], [s, half + 1], [half], [1, s, half], []]
    elif role == "labels":
        lead = anchor[:-1]
        choices = [lead + [2], [2] + lead if lead else [3], lead[:-1] + [lead[-1] + 1] if lead else [1, 1]]
    elif role in ("row_stat", "scalar"):
        have = math.prod(shapes[i])
        choices = [[have + 1], [have + 2, 1]]
    else:
        return None
    out = draw(st.sampled_from(choices))
    return None if out == shapes[i] else out


def anchor_index(spec: _spec.OpSpec, shapes: list) -> int:
    """The first present rows input: every other operand's shape is read against it."""
    return next(k for k, (s, sp) in enumerate(zip(shapes, spec.inputs))
                if sp.role == "rows" and s is not None)


# ---- dtypes ------------------------------------------------------------------------------------

def dtypes_valid(spec: _spec.OpSpec, dtypes: list) -> bool:
    """The spec's dtype rules (op_spec.h): one float dtype for every ``float`` operand;
    ``float_or_f32`` operands share one dtype, f32 or the float dtype; index int32/int64."""
    call = next((d for d, sp in zip(dtypes, spec.inputs) if sp.dtype == "float" and d), None)
    tables = {d for d, sp in zip(dtypes, spec.inputs) if sp.dtype == "float_or_f32" and d}
    if len(tables) > 1:
        return False
    for d, sp in zip(dtypes, spec.inputs):
        if d is None:
            continue
        if sp.dtype == "float" and d != call:
            return False
        if sp.dtype in ("float", "float_or_f32") and d not in FLOATS:
            return False
        if sp.dtype == "float_or_f32" and d not in ("float32", call):
            return False
        if sp.dtype == "index" and d not in ("int32", "int64"):
            return False
        if sp.dtype == "f32" and d != "float32":
            return False
        if sp.dtype == "i32" and d != "int32":
            return False
    return call in FLOATS if call else True


def valid_dtypes(draw, spec: _spec.OpSpec, shapes: list, container: str) -> list:
    call = draw(st.sampled_from(FLOATS))
    table = draw(st.sampled_from(["float32", call]))
    index = draw(st.sampled_from([d for d in ("int32", "int64") if d in CONTAINER_DTYPES[container]]))
    rule = {"float": call, "float_or_f32": table, "index": index, "f32": "float32", "i32": "int32"}
    return [None if s is None else rule[sp.dtype] for s, sp in zip(shapes, spec.inputs)]


# ---- cases -------------------------------------------------------------------------------------

def _input(shape, dtype, role, layout="dense", values="normal"):
    return {"shape": shape, "dtype": dtype, "role": role, "layout": layout, "values": values}


def _backward_inputs(fwd: _spec.OpSpec, bwd: _spec.OpSpec, shapes: list, dtypes: list,
                     attrs_plain: dict) -> tuple[list, list]:
    """Shapes and dtypes of the backward inputs by the spec conventions: the gradient of
    the first result, forward inputs, forward outputs, gradients of further results."""
    out_shapes = _spec.output_shapes(fwd, [None if s is None else tuple(s) for s in shapes],
                                     attrs_plain)
    out_dtypes = _spec.output_dtypes(fwd, dtypes, input_present=[s is not None for s in shapes])
    fwd_in = {sp.name: (s, d) for sp, s, d in zip(fwd.inputs, shapes, dtypes)}
    fwd_out = {o.name: (None if s is None else list(s), d)
               for o, s, d in zip(fwd.outputs, out_shapes, out_dtypes)}
    first = fwd.outputs[fwd.result_indices[0]].name
    b_shapes, b_dtypes = [], []
    for k, sp in enumerate(bwd.inputs):
        if k == 0:
            s, d = fwd_out[first]
        elif sp.name in fwd_in:
            s, d = fwd_in[sp.name]
        elif sp.name in fwd_out:
            s, d = fwd_out[sp.name]
        elif sp.name.startswith("d") and sp.name[1:] in fwd_out:
            s, d = fwd_out[sp.name[1:]]
            if s is None:  # the gradient of an absent result (rms_norm's dh without residual)
                s, d = fwd_out[first]
        else:
            raise AssertionError(f"{bwd.op}: backward input {sp.name!r} follows no convention")
        b_shapes.append(s)
        b_dtypes.append(d)
    return b_shapes, b_dtypes


CHANGES = ("none", "none", "none", "dtype", "shape", "attr", "policy", "layout", "layout",
           "labels", "special", "env_policy")


@st.composite
def op_case(draw, frontend: str, specs=None, changes=CHANGES):
    """One case for ``frontend``: an op and direction from the specs, valid inputs, then
    at most one broken argument or one non-dense layout (a change drawn from ``changes``)."""
    fe = FRONTENDS[frontend]
    specs = specs or [s for s in _spec.all_specs() if s.direction in fe.directions]
    spec = draw(st.sampled_from(specs))
    fwd = _spec.get(spec.op, _spec.FORWARD)
    container = draw(st.sampled_from(fe.containers))
    shapes, n = forward_shapes(draw, fwd)
    dtypes = valid_dtypes(draw, fwd, shapes, container)
    sized = {o.attr for o in fwd.outputs if o.shape == "leading_and_attr"}
    case = {"frontend": frontend, "container": container, "op": spec.op,
            "direction": spec.direction, "seed": draw(st.integers(0, 2**31 - 1)),
            "expect": "valid", "names": [], "why": "", "attrs": {}}

    # Attributes: some given, each valid in an accepted type.
    attrs_plain = {}
    onnx_attrs = {}
    for a in fwd.attrs:
        must = a.name in sized and a.default is not None and a.min is not None and a.default < a.min
        if not must and not draw(st.booleans()):
            attrs_plain[a.name] = a.default
            continue
        if fe.onnx_attrs:
            v, _ = onnx_attr(draw, a, n, a.name in sized, True)
            onnx_attrs[a.onnx_name] = v
            attrs_plain[a.name] = {"FLOAT": float, "INT": int, "STRING": str}[v["type"]](v["value"])
            if a.type == "bool":
                attrs_plain[a.name] = bool(v["value"])
        else:
            v = valid_attr(draw, a, n, a.name in sized)
            case["attrs"][a.name] = v
            attrs_plain[a.name] = {"bool": bool, "int": int, "float": float, "str": str}[v["t"]](v["v"])
            if a.type == "float":
                attrs_plain[a.name] = float(attrs_plain[a.name])
            if a.type == "bool":
                attrs_plain[a.name] = bool(attrs_plain[a.name])
    case["plain_attrs"] = attrs_plain  # what the reference computes with

    if spec.direction == _spec.BACKWARD:
        # The forward a backward case differentiates takes no optional inputs: their
        # results' gradients (rms_norm's dh) are given against a zero input instead.
        shapes = [None if sp.optional else s for s, sp in zip(shapes, fwd.inputs)]
        dtypes = [None if s is None else d for s, d in zip(shapes, dtypes)]
        b_shapes, b_dtypes = _backward_inputs(fwd, spec, shapes, dtypes, attrs_plain)
        opt = [i for i, sp in enumerate(spec.inputs) if sp.optional]
        for i in opt:
            if not draw(st.booleans()):
                b_shapes[i] = None
                b_dtypes[i] = None
        case["forward_inputs"] = [None if s is None else _input(s, d, sp.role)
                                  for s, d, sp in zip(shapes, dtypes, fwd.inputs)]
        shapes, dtypes = b_shapes, b_dtypes
    case["inputs"] = [None if s is None else _input(s, d, sp.role)
                      for s, d, sp in zip(shapes, dtypes, spec.inputs)]

    if container == "numpy" and "bfloat16" in dtypes:
        # numpy's DLPack export has no bfloat16 (ml_dtypes): a clear refusal will do.
        either(case, [sp.name for sp, d in zip(spec.inputs, dtypes) if d == "bfloat16"],
               "bfloat16 numpy array")
    if n == 0:  # the forward's N (a backward's first input may be [..., k])
        either(case, [sp.name for sp in spec.inputs] + sorted(sized), "no columns")

    # At most one change from the valid case.
    kind = draw(st.sampled_from(changes))
    apply_change(draw, case, spec, kind, container, fe, n)
    if fe.onnx_attrs:
        case["onnx_attrs"] = onnx_attrs
        del case["attrs"]
        # Also the library alone, as a plain onnxruntime user gets it (no Python model check):
        # its C++ attribute parser must refuse what the check refuses, but ORT's kernel API
        # cannot list a node's attributes, so a misspelled name is the check's alone.
        case["raw_session"] = draw(st.booleans())
        if case["raw_session"] and case.pop("misspelled", False):
            case["expect"] = "either"
    # Autodiff frontends: also check the vjp (valid float results only).
    case["grad"] = fe.grad and draw(st.booleans())
    case["jit"] = frontend == "jax" and draw(st.booleans())
    case["return_stats"] = draw(st.booleans())
    return case


def either(case: dict, names: list, why: str) -> None:
    """The contract allows a clear refusal as well as the right answer."""
    if case["expect"] == "valid":
        case["expect"] = "either"
    case["names"] = sorted(set(case["names"]) | set(names))
    case["why"] = (case["why"] + "; " if case["why"] else "") + why


def invalid(case: dict, names: list, why: str) -> None:
    case["expect"] = "invalid"
    case["names"] = sorted(set(case["names"]) | set(names))
    case["why"] = (case["why"] + "; " if case["why"] else "") + why


def apply_change(draw, case, spec, kind, container, fe, n) -> None:
    inputs = case["inputs"]
    present = [i for i, d in enumerate(inputs) if d is not None]
    names = [sp.name for sp in spec.inputs]
    if kind == "dtype":
        i = draw(st.sampled_from(present))
        dtypes = [None if d is None else d["dtype"] for d in inputs]
        options = [d for d in CONTAINER_DTYPES[container] if d != dtypes[i]]
        new = draw(st.sampled_from(options))
        trial = list(dtypes)
        trial[i] = new
        if not dtypes_valid(spec, trial):
            inputs[i]["dtype"] = new
            group = [names[k] for k in present
                     if spec.inputs[k].dtype in ("float", "float_or_f32")
                     and spec.inputs[i].dtype in ("float", "float_or_f32")]
            invalid(case, [names[i]] + group, f"dtype of {names[i]!r} is {new}")
    elif kind == "shape":
        i = draw(st.sampled_from(present))
        shapes = [None if d is None else d["shape"] for d in inputs]
        new = bad_shape(draw, spec, i, shapes)
        if new is not None and math.prod(new) <= 4 * MAX_ELEMENTS:
            inputs[i]["shape"] = new
            k = anchor_index(spec, shapes)
            blame = [names[i], names[k]] if i != k else names
            invalid(case, blame, f"shape of {names[i]!r} is {new}")
    elif kind == "attr" and spec.attrs:
        a = draw(st.sampled_from(spec.attrs))
        sized = any(o.shape == "leading_and_attr" and o.attr == a.name
                    for o in _spec.get(spec.op).outputs)
        if fe.onnx_attrs:
            how = draw(st.sampled_from(["value", "value", "misspelled", "twice"]))
            if how == "value":
                v, why = onnx_attr(draw, a, n, sized, False)
                case.setdefault("onnx_bad", {})[a.onnx_name] = v
                invalid(case, [a.onnx_name], why)
            elif how == "misspelled":  # an error, not ignored (by the model check: see raw)
                wrong = a.onnx_name[:-1] if len(a.onnx_name) > 3 else a.onnx_name + "s"
                case.setdefault("onnx_bad", {})[wrong] = {"type": "FLOAT", "value": 1.0}
                invalid(case, [wrong], f"misspelled attribute {wrong!r}")
                case["misspelled"] = True
            else:  # the same attribute twice, two valid values: ambiguous, refused
                first, _ = onnx_attr(draw, a, n, sized, True)
                second, _ = onnx_attr(draw, a, n, sized, True)
                case.setdefault("onnx_bad", {})[a.onnx_name] = first
                case["onnx_extra"] = [[a.onnx_name, second]]
                invalid(case, [a.onnx_name], f"attribute {a.onnx_name} given twice")
        else:
            v, why = invalid_attr(draw, a, n, sized)
            case["attrs"][a.name] = v
            invalid(case, [a.name], why)
    elif kind == "policy":
        valid = draw(st.booleans())
        if valid:
            case["policy"] = enc("str", draw(st.sampled_from(POLICIES)))
        else:
            bogus = [enc("str", "bogus"), enc("str", ""), enc("str", "FAST"), enc("int", 3)]
            if not fe.onnx_attrs:  # (an ONNX STRING attribute holds bytes: b"fast" is valid)
                bogus.append(enc("bytes", "fast"))
            case["policy"] = draw(st.sampled_from(bogus))
            invalid(case, ["policy"], f"policy {case['policy']['v']!r}")
    elif kind == "env_policy":
        env = draw(st.sampled_from(POLICIES + ("bogus",)))
        case["env_policy"] = env
        if draw(st.booleans()):
            case["policy"] = enc("str", draw(st.sampled_from(POLICIES)))  # explicit wins
        elif env == "bogus":
            invalid(case, ["policy", "XPURUNTIME_POLICY"], "XPURUNTIME_POLICY=bogus")
    elif kind == "layout" and CONTAINER_LAYOUTS[container]:
        i = draw(st.sampled_from(present))
        inputs[i]["layout"] = layout = draw(st.sampled_from(CONTAINER_LAYOUTS[container]))
        inputs[i]["layout_axis"] = draw(st.integers(0, 11))
        if not fe.layouts_must_work:
            either(case, [names[i]], f"layout {layout} of {names[i]!r}")
    elif kind == "labels":
        lab = [i for i in present if spec.inputs[i].role == "labels"]
        if lab and math.prod(inputs[lab[0]]["shape"]) > 0 and n > 0:
            inputs[lab[0]]["values"] = "out_of_range"
            invalid(case, [names[lab[0]]], "a label outside [0, N) that is not ignore_index")
    elif kind == "special":
        rows = [i for i in present if spec.inputs[i].role == "rows"
                and inputs[i]["dtype"] in FLOATS]
        if rows:
            inputs[draw(st.sampled_from(rows))]["values"] = "special"
