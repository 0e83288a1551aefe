"""Sharding rules for the row-wise ops: under jax.jit with sharded inputs, the
rows (every axis but the last) stay sharded and each device runs the kernel on
its own rows; nothing is gathered. An input sharded along the reduced last axis
is gathered, with a warning saying so.

Operand kinds:
  "row"    [..., N]: leading axes sharded like the first row operand, last axis whole
  "lead"   [...]:    the row operand's leading axes (per-row statistics, labels)
  "param"  [N]:      replicated
  "other:<factors>": replicated, with its own Shardy factors (e.g. rope's cos/sin: "other:p q")
Result kinds add "param_sum": a per-device partial sum over rows, summed across
the devices that hold different rows (weight gradients).
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import jax
from jax.experimental.custom_partitioning import custom_partitioning
from jax.sharding import NamedSharding, PartitionSpec as P


def _spec_entries(sharding, rank: int) -> list:
    spec = list(getattr(sharding, "spec", ()) or ())
    return (spec + [None] * rank)[:rank]


def _axis_names(entries) -> tuple:
    names = []
    for e in entries:
        if e is None:
            continue
        names.extend(e if isinstance(e, tuple) else (e,))
    return tuple(names)


def row_partitioned(fn: Callable, op: str, in_kinds: Sequence[str], out_kinds: Sequence[str],
                    whole_lead_axes: Sequence[int] = ()) -> Callable:
    """``fn(*arrays) -> tuple`` wrapped so that XLA partitions it along rows.

    ``whole_lead_axes`` lists leading axes of the row operand that must not be
    sharded (rope's sequence axis, which indexes the unsharded cos/sin tables).
    """
    row_index = [k.split(":")[0] for k in in_kinds].index("row")

    def lead_entries(arg_shapes):
        row = arg_shapes[row_index]
        rank = len(row.shape)
        entries = _spec_entries(row.sharding, rank)
        if entries and entries[-1] is not None:
            warnings.warn(f"xpuruntime.{op}: an operand is sharded along its last (reduced) axis; "
                          "it is gathered so that each device holds whole rows", stacklevel=2)
        lead = entries[:-1]
        for axis in whole_lead_axes:
            if lead[axis] is not None:
                warnings.warn(f"xpuruntime.{op}: axis {axis} of the input cannot stay sharded; "
                              "it is gathered", stacklevel=2)
                lead[axis] = None
        return lead

    def spec_for(kind: str, lead: list, shape) -> P:
        if kind == "row":
            return P(*lead, None)
        if kind == "lead":
            return P(*lead[:len(shape)])
        return P()

    def shardings(mesh, lead, kinds, shapes):
        return tuple(NamedSharding(mesh, spec_for(k, lead, s.shape)) for k, s in zip(kinds, shapes))

    def infer(mesh, arg_shapes, result_shape):
        lead = lead_entries(arg_shapes)
        return shardings(mesh, lead, out_kinds, result_shape)

    def partition(mesh, arg_shapes, result_shape):
        lead = lead_entries(arg_shapes)
        row_axes = _axis_names(lead)

        def lower(*args):
            outs = fn(*args)
            return tuple(jax.lax.psum(o, row_axes) if k == "param_sum" and row_axes else o
                         for o, k in zip(outs, out_kinds))

        return (mesh, lower, shardings(mesh, lead, out_kinds, result_shape),
                shardings(mesh, lead, in_kinds, arg_shapes))

    def factors(kind: str) -> str:
        # Einsum-like notation for Shardy: "..." the leading axes, n the last one.
        if kind.startswith("other:"):
            return kind[len("other:"):]
        return {"row": "... n", "lead": "...", "param": "n", "param_sum": "n"}[kind]

    rule = (", ".join(factors(k) for k in in_kinds) + " -> "
            + ", ".join(factors(k) for k in out_kinds))
    in_kinds = [k.split(":")[0] for k in in_kinds]

    wrapped = custom_partitioning(fn)
    wrapped.def_partition(infer_sharding_from_operands=infer, partition=partition,
                          sharding_rule=rule)
    return wrapped
