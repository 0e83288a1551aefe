"""What the operand roles of the op specs mean for JAX arrays: which operands carry
the rows' leading axes (batching folds into them, sharding keeps them sharded), and
the trace-time checks the spec's data allows (dtype rules, role shapes). Everything
an op checks beyond its roles is the core's, at run time, with the same text.

Roles (ffi/include/xpuruntime/op_spec.h):
  rows       ``[..., N]``; with a table operand exactly ``[B, S, H, D]`` (rope)
  parameter  ``[N]`` of the first rows operand
  table      ``[S, D/2]``: axis 0 indexes the rows' axis 1 (the sequence)
  labels, row_stat  the rows' leading axes
  scalar     the rows' leading axes or ``[]`` (a reduced loss's gradient)
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp

from .._native import InvalidArgumentError
from .._spec import OpSpec

FLOAT_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.float16), jnp.dtype(jnp.bfloat16))
TABLE_ROW_AXIS = 1  # the axis of a [B, S, H, D] rows operand that a table's axis 0 indexes


class DTypeError(InvalidArgumentError, TypeError):
    """A dtype the op does not take: an ``InvalidArgumentError`` that is also a ``TypeError``."""


def ref_index(spec: OpSpec) -> int:
    """The first rows operand: the one whose shape the others are read against."""
    return next(i for i, s in enumerate(spec.inputs) if s.role == "rows")


def has_table(spec: OpSpec) -> bool:
    return any(s.role == "table" for s in spec.inputs)


def per_row(spec: OpSpec, index: int, ndim: int, ref_ndim: int) -> bool:
    """Whether input ``index`` (of ``ndim`` axes) carries the rows' leading axes."""
    role = spec.inputs[index].role
    if role in ("rows", "labels", "row_stat"):
        return True
    return role == "scalar" and ndim == ref_ndim - 1


def present_outputs(spec: OpSpec, present: Sequence[bool]) -> list:
    """The spec's outputs that exist when these inputs are given."""
    return [o for o in spec.outputs if o.present_if is None or present[o.present_if]]


def output_kind(spec: OpSpec, o, attrs) -> str:
    """What an output is to the rows: "reduced" (a loss over every row), "lead" (one
    value per row), "param" (shaped like a parameter or table: in a backward, a sum
    over rows) or "row" (rows of its own)."""
    if o.shape == "loss" and attrs.get(o.attr) != "none":
        return "reduced"
    if o.shape in ("leading", "loss"):
        return "lead"
    if o.shape == "like" and spec.inputs[o.ref].role in ("parameter", "table"):
        return "param"
    return "row"


def _dtype_name(d) -> str:
    return str(jnp.dtype(d))


def _check_dtypes(spec: OpSpec, inputs: Sequence) -> None:
    op = spec.op
    float_dtype = next((a.dtype for s, a in zip(spec.inputs, inputs)
                        if a is not None and s.dtype == "float" and a.dtype in FLOAT_DTYPES), None)
    for s, a in zip(spec.inputs, inputs):
        if a is None:
            continue
        got = _dtype_name(a.dtype)
        if s.dtype == "float":
            if a.dtype not in FLOAT_DTYPES:
                raise DTypeError(f"{op}: '{s.name}' must be float32, float16 or bfloat16, got {got}")
            if a.dtype != float_dtype:
                raise DTypeError(f"{op}: '{s.name}' must be {_dtype_name(float_dtype)}, got {got}")
        elif s.dtype == "float_or_f32":
            allowed = {"float32"} | ({_dtype_name(float_dtype)} if float_dtype is not None else set())
            if got not in allowed:
                raise DTypeError(f"{op}: '{s.name}' must be {' or '.join(sorted(allowed))}, got {got}")
        elif s.dtype == "index":
            if got not in ("int32", "int64"):
                raise DTypeError(f"{op}: '{s.name}' must be int32 or int64, got {got}")
        elif got != {"f32": "float32", "i32": "int32"}[s.dtype]:
            raise DTypeError(f"{op}: '{s.name}' must be {'float32' if s.dtype == 'f32' else 'int32'}, "
                             f"got {got}")


def _shape(a) -> list:
    return list(a.shape)


def _check_table_rows(spec: OpSpec, x, name: str, inputs: Sequence) -> None:
    op = spec.op
    if x.ndim != 4:
        raise InvalidArgumentError(f"{op}: '{name}' must be 4-d [B, S, H, D], got shape {_shape(x)}")
    d = x.shape[3]
    if isinstance(d, int) and d % 2:
        raise InvalidArgumentError(f"{op}: the head dimension D must be even, got {d}")
    want = [x.shape[TABLE_ROW_AXIS], d // 2]
    for s, a in zip(spec.inputs, inputs):
        if s.role == "table" and a is not None and _shape(a) != want:
            raise InvalidArgumentError(f"{op}: '{s.name}' must have shape {want}, got {_shape(a)}")


def check_inputs(spec: OpSpec, inputs: Sequence) -> None:
    """Trace-time checks of one call's inputs (``None``: absent) from the spec's data;
    raises ``InvalidArgumentError`` (``DTypeError`` for dtypes) naming the op and argument."""
    op = spec.op
    for s, a in zip(spec.inputs, inputs):
        if a is None and not s.optional:
            raise InvalidArgumentError(f"{op}: argument '{s.name}' is required")
    _check_dtypes(spec, inputs)
    r = ref_index(spec)
    x, x_name = inputs[r], spec.inputs[r].name
    if x.ndim < 1:
        raise InvalidArgumentError(f"{op}: '{x_name}' must have at least 1 dimension, got a 0-d array")
    if has_table(spec):
        _check_table_rows(spec, x, x_name, inputs)
    lead, n = _shape(x)[:-1], x.shape[-1]
    for i, (s, a) in enumerate(zip(spec.inputs, inputs)):
        if a is None or i == r:
            continue
        shape = _shape(a)
        if s.role == "rows":
            if s.dtype == spec.inputs[r].dtype and shape != _shape(x):
                raise InvalidArgumentError(f"{op}: '{s.name}' must have the shape of '{x_name}' "
                                           f"{_shape(x)}, got {shape}")
            if shape[:-1] != lead or a.ndim < 1:
                raise InvalidArgumentError(f"{op}: '{s.name}' must have the leading axes of "
                                           f"'{x_name}' {lead}, got {shape}")
        elif s.role == "parameter" and shape != [n]:
            raise InvalidArgumentError(f"{op}: '{s.name}' must have shape {[n]}, got {shape}")
        elif s.role in ("labels", "row_stat") and shape != lead:
            raise InvalidArgumentError(f"{op}: '{s.name}' must have shape {lead}, got {shape}")
        elif s.role == "scalar" and shape not in (lead, []):
            raise InvalidArgumentError(f"{op}: '{s.name}' must have shape {lead} or [], got {shape}")
