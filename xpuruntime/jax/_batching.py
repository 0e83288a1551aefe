"""vmap of any op from its operand roles: the batch axis is one more leading axis of
the operands that carry the rows' leading axes (rows, labels, row statistics), so a
vmapped call is one kernel launch over more rows. Rows of fixed rank (``[B, S, H, D]``
with a table) take the batch into B instead.

The kernel cannot fold the batch when a shared operand (a parameter, a table, a 0-d
scalar) is batched, when an output is a reduction over every row (a reduced loss), or
when an output is a parameter gradient (a sum over each example's rows): those calls
run once per example (``lax.map``), which is correct for any op. An op's glue module
may give its parameter gradients per example (``PER_EXAMPLE``: output name ->
function of the backward's named, batched inputs and the op's attributes); then the
kernel still runs once over all rows for the other outputs.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from .._spec import OpSpec
from . import _roles


def _batch_front(a, batched: bool, size: int):
    """Batched operands arrive with their batch axis first; broadcast unbatched ones."""
    return a if batched else jnp.broadcast_to(a, (size,) + a.shape)


def sum_per_example(a):
    """Sums batched ``[V, ..., N]`` over every axis but the batch and the last, in f32
    (a parameter gradient per example, for the glue modules' ``PER_EXAMPLE``)."""
    return jnp.sum(a.astype(jnp.float32), axis=tuple(range(1, a.ndim - 1)))


def _folds_outputs(spec: OpSpec, present: Sequence[bool], attrs: Mapping[str, Any],
                   per_example: Mapping[str, Callable]) -> bool:
    kinds = [(o.name, _roles.output_kind(spec, o, attrs)) for o in _roles.present_outputs(spec, present)]
    return all(k in ("row", "lead") or (k == "param" and n in per_example) for n, k in kinds)


def batched(call: Callable, spec: OpSpec, present: Sequence[bool], attrs: Mapping[str, Any],
            per_example: Mapping[str, Callable] | None = None):
    """``call(*present_operands) -> tuple`` with a batching rule from the spec's roles;
    ``per_example``: the op's glue for parameter gradients (see above)."""
    per_example = dict(per_example or {})
    index = [i for i, p in enumerate(present) if p]
    ref = index.index(_roles.ref_index(spec))
    table = _roles.has_table(spec)
    folds_outputs = _folds_outputs(spec, present, attrs, per_example)
    outputs = [o.name for o in _roles.present_outputs(spec, present)]

    @custom_vmap
    def fn(*args):
        return call(*args)

    def sequential(in_batched, args):
        def one(slices):
            it = iter(slices)
            return fn(*(next(it) if b else a for a, b in zip(args, in_batched)))
        outs = jax.lax.map(one, tuple(a for a, b in zip(args, in_batched) if b))
        return tuple(outs), (True,) * len(outs)

    @fn.def_vmap
    def rule(size, in_batched, *args):
        ref_ndim = args[ref].ndim - in_batched[ref]
        rowwise = [_roles.per_row(spec, i, a.ndim - b, ref_ndim)
                   for i, a, b in zip(index, args, in_batched)]
        if not folds_outputs or any(b and not r for b, r in zip(in_batched, rowwise)):
            return sequential(in_batched, args)
        args = [_batch_front(a, b, size) if r else a for a, b, r in zip(args, in_batched, rowwise)]
        if not table:
            outs = fn(*args)
            if per_example:
                named = {spec.inputs[i].name: a for i, a in zip(index, args)}
                outs = [per_example[n](named, attrs) if n in per_example else o
                        for n, o in zip(outputs, outs)]
            return tuple(outs), (True,) * len(outs)
        # Fixed-rank rows: the batch joins B (every output is shaped like the rows).
        merge = lambda a: a.reshape((size * a.shape[1],) + a.shape[2:])  # noqa: E731
        outs = fn(*(merge(a) if r else a for a, r in zip(args, rowwise)))
        return tuple(o.reshape((size, -1) + o.shape[1:]) for o in outs), (True,) * len(outs)

    return fn
