"""The generic custom_vjp of an op, from the spec conventions (op_spec.h): the
backward takes the gradient of the forward's first result ("d" + its name), the
forward inputs and outputs it names, then gradients of further results; it returns
"d" + the name of each forward input that gets a gradient. Inputs without one get
zeros (float) or float0 (integer)."""

from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp

from .. import _spec
from .._spec import BACKWARD, FORWARD
from ._call import call
from ._roles import present_outputs


def zero_cotangent(a):
    """The cotangent of an input that gets no gradient (``None``, a zero cotangent to
    custom_vjp, for integer inputs: float0 arrays cannot take symbolic shapes)."""
    if a is None or not jnp.issubdtype(a.dtype, jnp.floating):
        return None
    return jnp.zeros_like(a)


def results_of(op: str, outs: list):
    """The forward's results (what the op returns): one array or a tuple."""
    spec = _spec.get(op, FORWARD)
    res = tuple(outs[i] for i in spec.result_indices if outs[i] is not None)
    return res[0] if len(res) == 1 else res


def differentiable(op: str) -> Callable:
    """``fn(attrs_items, *inputs) -> results`` for ``op``, differentiable by its backward."""
    fwd, bwd = _spec.get(op, FORWARD), _spec.get(op, BACKWARD)
    in_names, out_names = fwd.input_names, fwd.output_names
    results = [out_names[i] for i in fwd.result_indices]

    def source(name: str) -> tuple[str, int]:
        """Where a backward input comes from: ("ct", result), ("in", i) or ("out", i)."""
        if name.startswith("d") and name[1:] in results:
            return "ct", results.index(name[1:])
        if name in in_names:
            return "in", in_names.index(name)
        if name in out_names:
            return "out", out_names.index(name)
        raise AssertionError(f"{op}: backward input '{name}' names no forward input or output")

    sources = [source(s.name) for s in bwd.inputs]
    saved_in = sorted({i for k, i in sources if k == "in"})
    saved_out = sorted({i for k, i in sources if k == "out"})
    # Inputs without a gradient: their zeros need their shapes and dtypes.
    no_grad = [i for i, n in enumerate(in_names) if "d" + n not in bwd.output_names]

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
    def apply(attrs, present, *inputs):
        return results_of(op, call(op, FORWARD, dict(attrs), *inputs))

    def apply_fwd(attrs, present, *inputs):
        outs = call(op, FORWARD, dict(attrs), *inputs)
        saved = tuple({i: group[i] for i in idx} for group, idx in
                      ((inputs, saved_in), (outs, saved_out), (inputs, no_grad)))
        return results_of(op, outs), saved

    def apply_bwd(attrs, present, saved, cts):
        ins, outs, zeros_for = saved
        # The cotangents of the results the forward returned (absent ones excluded).
        given = present_outputs(fwd, present)
        returned = [i for i in fwd.result_indices if fwd.outputs[i] in given]
        ct_of = dict(zip(returned, cts if isinstance(cts, tuple) else (cts,)))
        args = []
        for kind, i in sources:
            if kind == "ct":
                ct = ct_of.get(fwd.result_indices[i])
                args.append(None if ct is None or ct.dtype == jax.dtypes.float0 else ct)
            else:
                args.append(ins[i] if kind == "in" else outs[i])
        grads = dict(zip(bwd.output_names, call(op, BACKWARD, dict(attrs), *args)))
        return tuple(zero_cotangent(zeros_for.get(i)) if i in zeros_for else
                     (grads["d" + n] if present[i] else None) for i, n in enumerate(in_names))

    apply.defvjp(apply_fwd, apply_bwd)
    return apply
