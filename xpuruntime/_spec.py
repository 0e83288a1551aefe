"""The op specs of the C++ core as small frozen dataclasses, and the evaluators
every Python frontend uses for output shapes and dtypes.

The specs are read once from ``_core.op_specs()`` (ffi/kernels/<family>/spec.cc
is the one place an op's operands, outputs and attributes are written). The shape
evaluator uses only indexing, slicing and tuple concatenation, so it works on plain
ints and on symbolic dimensions alike (torch ``SymInt`` in fake kernels, JAX
shape-polymorphic dims).

Conventions (see ffi/include/xpuruntime/op_spec.h): forward outputs are the
results, then the saved tensors; a backward takes the gradient of the first
result, the forward inputs it reads, the forward outputs it reads, then gradients
of further optional results, and returns the gradients of the forward inputs; a
backward takes the same attributes as its forward.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ._native import InvalidArgumentError, core

FORWARD = "forward"
BACKWARD = "backward"


@dataclass(frozen=True)
class InputSpec:
    name: str        # as in OPS.md and the error messages
    role: str        # "rows", "parameter", "table", "labels", "row_stat", "scalar"
    dtype: str       # "float", "float_or_f32", "index", "f32", "i32"
    optional: bool
    strided: bool = False  # read through any leading strides (last axis contiguous), no copy


@dataclass(frozen=True)
class OutputSpec:
    name: str
    shape: str              # "like", "leading", "leading_and_attr", "loss"
    ref: int                # index of the input the rule reads
    dtype: str              # "like_ref", "f32", "i32"
    use: str                # "result" (returned) or "saved" (feeds the backward)
    present_if: int | None  # exists only when that optional input is given
    attr: str | None        # the attribute read by "leading_and_attr" / "loss"


@dataclass(frozen=True)
class AttrSpec:
    name: str            # Python / JAX / torch keyword
    onnx_name: str       # ONNX attribute / TensorRT field
    type: str            # "float", "int", "bool", "string"
    default: Any
    min: float | None    # inclusive; None: unbounded
    max: float | None
    choices: tuple[str, ...] | None
    required: bool = False  # default outside the range (topk's k): must be given


@dataclass(frozen=True)
class OpSpec:
    op: str
    onnx_type: str
    direction: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    attrs: tuple[AttrSpec, ...]
    has_workspace: bool
    revision: int  # bumped when the operands change meaning (op_spec.h)
    xla_target: str  # the XLA custom-call target (its name carries the revision)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(i.name for i in self.inputs)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outputs)

    @property
    def result_indices(self) -> tuple[int, ...]:
        """Indices of the outputs the op returns (ONNX / TensorRT outputs, in order)."""
        return tuple(i for i, o in enumerate(self.outputs) if o.use == "result")

    @property
    def saved_indices(self) -> tuple[int, ...]:
        """Indices of the outputs that exist only to feed the backward."""
        return tuple(i for i, o in enumerate(self.outputs) if o.use == "saved")

    @property
    def defaults(self) -> dict[str, Any]:
        return {a.name: a.default for a in self.attrs}


def _from_dict(d: Mapping[str, Any]) -> OpSpec:
    return OpSpec(
        op=d["op"], onnx_type=d["onnx_type"], direction=d["direction"],
        inputs=tuple(InputSpec(**i) for i in d["inputs"]),
        outputs=tuple(OutputSpec(**o) for o in d["outputs"]),
        attrs=tuple(AttrSpec(**a) for a in d["attrs"]),
        has_workspace=bool(d["has_workspace"]),
        revision=int(d["revision"]),
        xla_target=d["xla_target"],
    )


@functools.cache
def all_specs() -> tuple[OpSpec, ...]:
    """Every spec, forward and backward of each op of ffi/ops.def, in that order."""
    return tuple(_from_dict(d) for d in core.op_specs())


@functools.cache
def op_names() -> tuple[str, ...]:
    """The ops of ffi/ops.def, in order."""
    return tuple(s.op for s in all_specs() if s.direction == FORWARD)


@functools.cache
def get(op: str, direction: str = FORWARD) -> OpSpec:
    """The spec of one op and direction; ``InvalidArgumentError`` (a ``ValueError``)
    naming the known ops otherwise."""
    for s in all_specs():
        if s.op == op and s.direction == direction:
            return s
    if direction not in (FORWARD, BACKWARD):
        raise InvalidArgumentError(
            f"unknown direction {direction!r}; expected forward or backward")
    raise InvalidArgumentError(f"unknown op {op!r}; known ops: {', '.join(op_names())}")


def by_onnx_type(onnx_type: str) -> OpSpec:
    """The forward spec whose ONNX op type (TensorRT plugin name) is ``onnx_type``."""
    for s in all_specs():
        if s.direction == FORWARD and s.onnx_type == onnx_type:
            return s
    raise InvalidArgumentError(f"unknown ONNX op type {onnx_type!r}")


def normalize_attrs(spec: OpSpec, attrs: Mapping[str, Any], *,
                    onnx_names: bool = False) -> dict[str, Any]:
    """Every attribute of ``spec`` as its Python type (float, int, bool, str), defaults
    filled in, after the core's one attribute rule: an unknown name, a wrong type, NaN,
    a number out of range or a string not among the choices raises
    ``InvalidArgumentError`` (a ``ValueError``) naming the op and the attribute.
    A ``"policy"`` entry is checked and kept. Keys are Python keywords, or the ONNX
    attribute names with ``onnx_names=True``."""
    return core.parse_attrs(spec.op, spec.direction, dict(attrs), onnx_names)


@functools.cache
def rule_dtypes(rule: str) -> tuple[str, ...]:
    """The dtype names an input's dtype rule admits on its own (``"float"``: float32,
    float16, bfloat16; ``"index"``: int32, int64), as the core defines them."""
    return tuple(core.dtype_rules()[rule])


@functools.lru_cache(maxsize=4096)
def dtype_error(op: str, direction: str, dtypes: tuple) -> str | None:
    """The core's error for input dtype names (``None``: absent; a prefix of the inputs
    will do) that break the spec's dtype rules, or ``None`` when they fit: each input's
    rule, every "float" input of one dtype, "float_or_f32" ones float32 or that dtype."""
    return core.dtype_error(op, direction, list(dtypes))


def _attr(attrs: Mapping[str, Any], spec: OpSpec, name: str) -> Any:
    if name in attrs:
        return attrs[name]
    return next(a.default for a in spec.attrs if a.name == name)


def output_shapes(spec: OpSpec, input_shapes: Sequence[Sequence[Any] | None],
                  attrs: Mapping[str, Any] | None = None) -> list[tuple | None]:
    """Output shapes (``None``: an absent output) from the input shapes (``None``:
    absent input) by the spec's rules. Dims may be ints or symbolic dims: only
    indexing, slicing and tuple concatenation are applied to them. ``attrs`` are
    normalized attributes (missing ones take their defaults)."""
    attrs = {} if attrs is None else attrs
    out: list[tuple | None] = []
    for o in spec.outputs:
        if o.present_if is not None and input_shapes[o.present_if] is None:
            out.append(None)
            continue
        ref = input_shapes[o.ref]
        if ref is None:
            raise InvalidArgumentError(
                f"{spec.op}: argument '{spec.inputs[o.ref].name}' is required")
        ref = tuple(ref)
        if o.shape == "like":
            out.append(ref)
            continue
        if len(ref) < 1:
            raise InvalidArgumentError(f"{spec.op}: '{spec.inputs[o.ref].name}' must have at "
                                       "least 1 dimension, got a 0-d tensor")
        if o.shape == "leading":
            out.append(ref[:-1])
        elif o.shape == "leading_and_attr":
            out.append(ref[:-1] + (int(_attr(attrs, spec, o.attr)),))
        elif o.shape == "loss":
            out.append(ref[:-1] if _attr(attrs, spec, o.attr) == "none" else ())
        else:
            raise AssertionError(f"unknown shape rule {o.shape!r}")
    return out


def output_dtypes(spec: OpSpec, input_dtypes: Sequence[Any], *, f32: Any = "float32",
                  i32: Any = "int32", input_present: Sequence[bool] | None = None) -> list[Any]:
    """Output dtypes by the spec's rules, in the caller's dtype vocabulary: an output
    "like" its reference input gets that input's dtype object; the fixed dtypes are
    ``f32`` / ``i32`` (pass ``torch.float32`` or ``jnp.float32`` ...). Absent outputs
    (``present_if`` an absent input, by ``input_present`` or a ``None`` dtype) give ``None``."""
    present = ([d is not None for d in input_dtypes] if input_present is None
               else list(input_present))
    out: list[Any] = []
    for o in spec.outputs:
        if o.present_if is not None and not present[o.present_if]:
            out.append(None)
        elif o.dtype == "like_ref":
            out.append(input_dtypes[o.ref])
        else:
            out.append(f32 if o.dtype == "f32" else i32)
    return out


def workspace_bytes(spec: OpSpec, input_shapes: Sequence[Sequence[int] | None],
                    attrs: Mapping[str, Any] | None = None) -> int:
    """Scratch bytes of one call (concrete shapes; 0 when the spec has no workspace)."""
    if not spec.has_workspace:
        return 0
    shapes = [None if s is None else [int(d) for d in s] for s in input_shapes]
    return int(core.workspace_bytes(spec.op, spec.direction, shapes, dict(attrs or {})))
