"""What the operand roles of the op specs mean for JAX arrays: which operands carry
the rows' leading axes (batching folds into them, sharding keeps them sharded), and
the trace-time check of a call, which is the core's own validation (``core.validate``:
the spec's dtype rules, then every check of the op's entry point) on the operands'
shapes and dtypes, so an error at trace time reads as it would at run time and no
rule is written here.

Roles (ffi/include/xpuruntime/op_spec.h):
  rows       ``[..., N]``; with a table operand exactly ``[B, S, H, D]`` (rope)
  parameter  ``[N]`` of the first rows operand
  table      ``[S, D/2]``: axis 0 indexes the rows' axis 1 (the sequence)
  labels, row_stat  the rows' leading axes
  scalar     the rows' leading axes or ``[]`` (a reduced loss's gradient)
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Sequence

import jax.numpy as jnp

from .._native import InvalidArgumentError, core
from .._spec import OpSpec

TABLE_ROW_AXIS = 1  # the axis of a [B, S, H, D] rows operand that a table's axis 0 indexes


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


def _concrete(shapes: Sequence[tuple | None]) -> tuple[list[tuple | None], dict[str, int]]:
    """Shapes with each symbolic dimension (``jax.export``) replaced by a value the
    core can check: one value per distinct dimension expression, so that dims written
    alike stay equal and dims written apart differ. Rules on sizes rather than
    equalities are checked at these values, chosen to pass them (even: rope's D; a
    last axis large: topk's k <= E <= 4096); the run-time check, in the same words,
    decides for the real sizes."""
    symbols: dict[str, int] = {}
    last = {str(s[-1]) for s in shapes if s and not isinstance(s[-1], int)}
    for s in shapes:
        for d in s or ():
            key = str(d)
            if not isinstance(d, int) and key not in symbols:
                symbols[key] = (1024 if key in last else 2) + 2 * len(symbols)
    return [None if s is None else tuple(d if isinstance(d, int) else symbols[str(d)] for d in s)
            for s in shapes], symbols


@functools.lru_cache(maxsize=4096)
def _validate(op: str, direction: str, shapes: tuple, dtypes: tuple, attrs: tuple) -> None:
    core.validate(op, direction, list(shapes), list(dtypes), dict(attrs))


def check_inputs(spec: OpSpec, inputs: Sequence, attrs: Mapping[str, Any]) -> None:
    """Trace-time checks of one call's inputs (``None``: absent) and normalized
    attributes by the core: ``InvalidArgumentTypeError`` (also a ``TypeError``) for a
    dtype the spec's rules refuse, ``InvalidArgumentError`` for the rest, naming the
    op and the argument."""
    shapes, symbols = _concrete([None if a is None else tuple(a.shape) for a in inputs])
    dtypes = tuple("" if a is None else str(jnp.dtype(a.dtype)) for a in inputs)
    try:
        _validate(spec.op, spec.direction, tuple(shapes), dtypes, tuple(sorted(attrs.items())))
    except InvalidArgumentError as e:
        if not symbols:
            raise
        stand_ins = ", ".join(f"{k}={v}" for k, v in symbols.items())
        raise type(e)(f"{e} (symbolic dimensions checked at {stand_ins})") from None
