"""Random inputs for any op, made from its spec's operand roles, so that tests over
every op of ffi/ops.def pick up a new op without a list to extend."""

from __future__ import annotations

import numpy as np

from xpuruntime import _spec

N = 16           # the last axis of row operands (and rope's head dimension)
SEQ, HEADS = 8, 2  # rope's S and H


def has_table(op: str) -> bool:
    return any(s.role == "table" for s in _spec.get(op).inputs)


def example(op: str, lead: tuple, *, optional: bool = False, seed: int = 0,
            attrs: dict | None = None) -> tuple[list, dict]:
    """(forward inputs as float32 / int32 numpy, ``None`` for absent optional ones;
    attrs). Rows are ``lead + (N,)``, or ``lead[:1] + (SEQ, HEADS, N)`` with a table
    (rope's ``[B, S, H, D]``)."""
    spec = _spec.get(op)
    rng = np.random.default_rng(seed)
    rows = lead[:1] + (SEQ, HEADS, N) if has_table(op) else lead + (N,)
    out = []
    for s in spec.inputs:
        if s.optional and not optional:
            out.append(None)
        elif s.role == "rows":
            out.append(rng.standard_normal(rows).astype(np.float32))
        elif s.role == "parameter":
            out.append(rng.standard_normal(N).astype(np.float32))
        elif s.role == "table":
            out.append(rng.standard_normal((SEQ, N // 2)).astype(np.float32))
        elif s.role == "labels":
            out.append(rng.integers(0, N, rows[:-1]).astype(np.int32))
        else:
            raise AssertionError(f"{op}: no example for a forward input of role {s.role}")
    # Attributes without a default (their default lies outside their range, as topk's k).
    given = {a.name: int(min(a.max, max(a.min, 2))) for a in spec.attrs
             if a.type == "int" and a.min is not None and a.default < a.min}
    return out, {**given, **(attrs or {})}


def float_inputs(op: str, inputs: list) -> tuple[int, ...]:
    """Indices of the given inputs that get gradients (float dtype rules)."""
    return tuple(i for i, (s, a) in enumerate(zip(_spec.get(op).inputs, inputs))
                 if a is not None and s.dtype in ("float", "float_or_f32"))


def attr_cases(op: str) -> list[dict]:
    """Attribute settings worth covering: defaults, and every choice of a string attr."""
    cases = [{}]
    for a in _spec.get(op).attrs:
        if a.choices:
            cases += [{a.name: c} for c in a.choices if c != a.default]
    return cases
