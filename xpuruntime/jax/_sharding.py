"""Sharding rules from the operand roles of an op spec: under ``jax.jit`` with
sharded inputs the rows (every axis but the last of the rows operands) stay sharded
and each device runs the kernel on its own rows; nothing is gathered.

- rows, labels, row statistics: sharded like the first rows operand's leading axes;
  its last axis is whole (an operand sharded along it is gathered, with a warning).
- parameters: replicated; their gradients (backward outputs shaped like a parameter)
  are per-device partial sums over rows, summed across the devices holding rows.
- tables (rope's cos/sin, ``[S, D/2]``): sharded like the rows' sequence axis, so a
  replicated table is sliced locally on each device (no all-gather).
- a loss reduced over all rows (shape rule "loss" with a reduction) keeps every
  operand whole, since the kernel reduces across rows.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping, Sequence

import jax
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec as P

from .._spec import BACKWARD, OpSpec
from . import _roles


def _entries(sharding, rank: int) -> list:
    spec = list(getattr(sharding, "spec", ()) or ())
    return (spec + [None] * rank)[:rank]


def _axis_names(entries) -> tuple:
    names = []
    for e in entries:
        if e is not None:
            names.extend(e if isinstance(e, tuple) else (e,))
    return tuple(names)


def _kinds(spec: OpSpec, present: Sequence[bool], attrs: Mapping[str, Any],
           in_shapes: Sequence[tuple]) -> tuple[list[str], list[str], bool]:
    """Kinds of the present operands and outputs: "row", "lead", "table", "param_sum"
    or "whole"; and whether an output reduces over every row."""
    index = [i for i, p in enumerate(present) if p]
    ref_rank = len(in_shapes[index.index(_roles.ref_index(spec))])
    in_kinds = []
    for i, shape in zip(index, in_shapes):
        role = spec.inputs[i].role
        if role in ("rows", "table"):
            in_kinds.append("row" if role == "rows" else "table")
        else:
            in_kinds.append("lead" if _roles.per_row(spec, i, len(shape), ref_rank) else "whole")
    kinds = [_roles.output_kind(spec, o, attrs) for o in _roles.present_outputs(spec, present)]
    reduces = "reduced" in kinds
    out_kinds = [{"reduced": "whole", "param": "param_sum" if spec.direction == BACKWARD else "whole"}
                 .get(k, k) for k in kinds]
    return in_kinds, out_kinds, reduces


def _sharding_rule(kinds: Sequence[str], shapes: Sequence[tuple], n, table: bool, tag: str) -> list:
    """Einsum-like Shardy factors of each operand: the rows' leading axes ("..." or, with
    a table, "b s h"), then the last axis: "n" where it is the reference's N."""
    lead = "b s h" if table else "..."
    out = []
    for j, (kind, shape) in enumerate(zip(kinds, shapes)):
        own = lambda k: f"{tag}{j}_{k}"  # noqa: E731  (a factor of this operand alone)
        last = "n" if shape and str(shape[-1]) == str(n) else own(0)
        if kind == "row":
            out.append(f"{lead} {last}")
        elif kind == "lead":
            out.append(lead)
        elif kind == "table":
            out.append("s t")
        elif kind == "param_sum" or (len(shape) == 1 and last == "n"):
            out.append(last)
        else:
            out.append(" ".join(own(k) for k in range(len(shape))))
    return out


def partitioned(fn: Callable, spec: OpSpec, present: Sequence[bool], attrs: Mapping[str, Any],
                in_shapes: Sequence[tuple], out_shapes: Sequence[tuple]) -> Callable:
    """``fn(*present_operands) -> tuple`` (operands and results of these shapes) wrapped
    so that XLA partitions it along rows."""
    op = spec.op
    in_kinds, out_kinds, reduces = _kinds(spec, present, attrs, in_shapes)
    ref = in_kinds.index("row")
    table = _roles.has_table(spec)

    def lead_entries(arg_shapes) -> list:
        x = arg_shapes[ref]
        entries = _entries(x.sharding, len(x.shape))
        if reduces:
            return [None] * (len(x.shape) - 1)
        if entries and entries[-1] is not None:
            warnings.warn(f"xpuruntime.{op}: an operand is sharded along its last (reduced) axis; "
                          "it is gathered so that each device holds whole rows", stacklevel=2)
        return entries[:-1]

    def spec_for(kind: str, lead: list, rank: int) -> P:
        if kind == "row":
            return P(*lead, None)
        if kind == "lead":
            return P(*lead[:rank])
        if kind == "table":
            return P(lead[_roles.TABLE_ROW_AXIS], None)
        return P()

    def shardings(mesh, lead, kinds, shapes):
        return tuple(NamedSharding(mesh, spec_for(k, lead, len(s.shape))) for k, s in zip(kinds, shapes))

    def as_tuple(result_shape):
        return result_shape if isinstance(result_shape, (tuple, list)) else (result_shape,)

    def infer(mesh, arg_shapes, result_shape):
        return shardings(mesh, lead_entries(arg_shapes), out_kinds, as_tuple(result_shape))

    def partition(mesh, arg_shapes, result_shape):
        lead = lead_entries(arg_shapes)
        row_axes = _axis_names(lead)

        def lower(*args):
            outs = fn(*args)
            return tuple(jax.lax.psum(o, row_axes) if k == "param_sum" and row_axes else o
                         for o, k in zip(outs, out_kinds))

        return (mesh, lower, shardings(mesh, lead, out_kinds, as_tuple(result_shape)),
                shardings(mesh, lead, in_kinds, arg_shapes))

    n = in_shapes[ref][-1]
    rule = (", ".join(_sharding_rule(in_kinds, in_shapes, n, table, "i")) + " -> "
            + ", ".join(_sharding_rule(out_kinds, out_shapes, n, table, "o")))
    wrapped = custom_partitioning(fn)
    wrapped.def_partition(infer_sharding_from_operands=infer, partition=partition,
                          sharding_rule=rule)
    return wrapped
