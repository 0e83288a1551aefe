"""The float64 references of tests/references.py: every op's analytic gradient is the
derivative of its forward (central differences along a random direction), for every
attribute choice, optional inputs absent and present."""

from __future__ import annotations

import numpy as np
import pytest

import references
from _spec_examples import attr_cases, example
from xpuruntime import _spec



def variants(op):
    """The default attributes, every choice, the other bool, and a float off its default."""
    cases = attr_cases(op)
    for a in _spec.get(op).attrs:
        if a.type == "bool":
            cases.append({a.name: not a.default})
        elif a.type == "float":
            cases.append({a.name: 0.3 if a.max is not None else -0.7 if a.min is None else 0.5})
    return cases


CASES = [(op, attrs, optional) for op in _spec.op_names() for attrs in variants(op)
         for optional in (False, True)
         if optional is False or any(s.optional for s in _spec.get(op).inputs)]


@pytest.mark.parametrize("op,attrs,optional", CASES,
                         ids=[f"{op}-{a}-{'optional' if o else 'required'}" for op, a, o in CASES])
def test_reference_vjp_is_the_derivative_of_the_forward(op, attrs, optional):
    spec = _spec.get(op)
    inputs, attrs = example(op, (3, 2), optional=optional, attrs=attrs, seed=5)
    inputs = [None if a is None else a.astype(np.float64) if a.dtype.kind == "f" else a
              for a in inputs]
    rng = np.random.default_rng(9)
    out = references.forward(op, *inputs, dtype="float64", **attrs)
    results = [spec.outputs[j].name for j in spec.result_indices if out[spec.outputs[j].name] is not None]
    floats = [r for r in results if out[r].dtype.kind == "f"]
    cotangents = {"d" + r: rng.standard_normal(np.shape(out[r])) for r in floats}
    extra = {r: out[r] for r in results if r not in floats}  # e.g. topk's selection, held fixed
    grads = references.vjp(op, *inputs, cotangents=cotangents, dtype="float64", **attrs, **extra)
    diff = [k for k, (s, a) in enumerate(zip(spec.inputs, inputs))
            if a is not None and s.role in ("rows", "parameter") and s.dtype == "float"]
    assert sorted(grads) == sorted("d" + spec.inputs[k].name for k in diff)
    direction = {k: rng.standard_normal(inputs[k].shape) for k in diff}

    def along(t):
        moved = [a + t * direction[k] if k in direction else a for k, a in enumerate(inputs)]
        o = references.forward(op, *moved, dtype="float64", **attrs)
        return sum(float(np.sum(o[r] * cotangents["d" + r])) for r in floats)

    eps = 1e-6
    numeric = (along(eps) - along(-eps)) / (2 * eps)
    analytic = sum(float(np.sum(grads["d" + spec.inputs[k].name] * direction[k])) for k in diff)
    assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), (numeric, analytic)
