"""The float64 references of tests/references.py, checked against what they do not share:

- every forward against an independent oracle (torch's own functions, or a different
  formulation: rope as a complex rotation), for every attribute choice, optional inputs
  absent and present;
- every gradient (autograd of the forward) against central differences of the forward,
  so that nothing in a reference breaks its graph (a detached statistic, the
  straight-through rounding of rms_norm's h, topk's held selection);
- the contract's corner cases the references must encode (OPS.md): a one-class row of
  cross_entropy is exactly 0, a mean over no counted row is NaN with a zero gradient, topk's
  order (ties to the lower index, NaN first), rms_norm's h rounded to the call's dtype.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import references
from _spec_examples import attr_cases, example
from xpuruntime import _spec

torch = pytest.importorskip("torch")
F = torch.nn.functional


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
IDS = [f"{op}-{a}-{'optional' if o else 'required'}" for op, a, o in CASES]


def f64_inputs(op, attrs, optional, seed=5):
    inputs, attrs = example(op, (3, 2), optional=optional, attrs=attrs, seed=seed)
    return [None if a is None else a.astype(np.float64) if a.dtype.kind == "f" else a
            for a in inputs], attrs


def test_every_op_has_a_reference():
    missing = [op for op in _spec.op_names() if op not in references.REFERENCES]
    assert not missing, f"add a float64 reference to tests/references.py for {missing}"


# ---- forward against independent oracles ------------------------------------------------------

def _t(a):
    return None if a is None else torch.from_numpy(np.asarray(a))


def _rms_norm(x, w, r, *, eps, dtype):
    h = x if r is None else x + r  # (float64 calls: no rounding of h)
    return {"y": F.rms_norm(h, (h.shape[-1],), w, eps), "h": None if r is None else h}


def _layer_norm(x, w, b, *, eps, dtype):
    var, mean = torch.var_mean(x, -1, unbiased=False)
    return {"y": F.layer_norm(x, (x.shape[-1],), w, b, eps), "mean": mean,
            "rstd": torch.rsqrt(var + eps)}


def _rope(x, cos, sin, *, interleaved, dtype):
    """Each pair (x1, x2) as the complex number x1 + i x2, times exp(i angle)."""
    d = x.shape[-1]
    pairs = x.reshape(*x.shape[:-1], d // 2, 2) if interleaved else \
        torch.stack((x[..., : d // 2], x[..., d // 2:]), -1)
    z = torch.view_as_complex(pairs.contiguous()) * torch.complex(cos, sin)[None, :, None, :]
    y = torch.view_as_real(z)
    return {"y": y.reshape(x.shape) if interleaved else torch.cat((y[..., 0], y[..., 1]), -1)}


def _cross_entropy(logits, labels, *, ignore_index, label_smoothing, reduction, dtype):
    n = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, n), labels.reshape(-1).long(),
                           ignore_index=ignore_index, label_smoothing=label_smoothing,
                           reduction=reduction)
    lse = torch.where(labels != ignore_index, torch.logsumexp(logits, -1), 0.0)
    return {"loss": loss.reshape(labels.shape) if reduction == "none" else loss, "lse": lse}


def _topk_softmax(logits, *, k, renormalize, dtype):
    weights, indices = torch.softmax(logits, -1).topk(k, -1)  # (distinct random values)
    if renormalize:
        weights = weights / weights.sum(-1, keepdim=True)
    return {"weights": weights, "indices": indices}


ORACLES = {
    "rms_norm": _rms_norm,
    "layer_norm": _layer_norm,
    "softmax": lambda x, *, scale, dtype: {"y": torch.softmax(scale * x, -1)},
    "swiglu": lambda gate, up, *, dtype: {"y": F.silu(gate) * up},
    "geglu": lambda gate, up, *, dtype: {"y": F.gelu(gate, approximate="tanh") * up},
    "rope": _rope,
    "cross_entropy": _cross_entropy,
    "topk_softmax": _topk_softmax,
}


@pytest.mark.parametrize("op,attrs,optional", CASES, ids=IDS)
def test_reference_forward_matches_an_independent_oracle(op, attrs, optional):
    if op not in ORACLES:
        pytest.skip(f"no independent oracle for {op} in ORACLES (the gradient check still runs)")
    spec = _spec.get(op)
    inputs, attrs = f64_inputs(op, attrs, optional)
    got = references.forward(op, *inputs, dtype="float64", **attrs)
    want = ORACLES[op](*map(_t, inputs), **{**spec.defaults, **attrs}, dtype="float64")
    assert sorted(got) == sorted(spec.output_names)
    for name in spec.output_names:
        if want.get(name) is None:
            assert got[name] is None, name
            continue
        np.testing.assert_allclose(got[name], want[name].numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=f"{op} {name}")


# ---- gradients against central differences ------------------------------------------------------

@pytest.mark.parametrize("op,attrs,optional", CASES, ids=IDS)
def test_reference_vjp_is_the_derivative_of_the_forward(op, attrs, optional):
    spec = _spec.get(op)
    inputs, attrs = f64_inputs(op, attrs, optional)
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
        o = references.forward(op, *moved, dtype="float64", **attrs, **extra)
        return sum(float(np.sum(o[r] * cotangents["d" + r])) for r in floats)

    eps = 1e-6
    numeric = (along(eps) - along(-eps)) / (2 * eps)
    analytic = sum(float(np.sum(grads["d" + spec.inputs[k].name] * direction[k])) for k in diff)
    assert abs(numeric - analytic) <= 1e-6 * max(1.0, abs(analytic)), (numeric, analytic)


# ---- the contract's corner cases --------------------------------------------------------------------

def test_cross_entropy_of_one_class_is_exactly_zero():
    x = np.random.default_rng(1).standard_normal((5, 1))
    out = references.cross_entropy(x, np.zeros(5, np.int64), label_smoothing=0.7, reduction="none")
    assert np.all(out["loss"] == 0.0)


def test_cross_entropy_mean_over_no_counted_row_is_nan_with_zero_gradient():
    x = np.random.default_rng(2).standard_normal((3, 4))
    labels = np.full(3, -100)
    assert math.isnan(float(references.cross_entropy(x, labels)["loss"]))
    grads = references.cross_entropy_vjp(x, labels, dloss=np.float64(1.0))
    assert np.all(grads["dlogits"] == 0.0)


def test_topk_order_ties_to_the_lower_index_and_nan_first():
    x = np.array([[1.0, 3.0, 3.0, -0.0, 0.0, np.nan]])
    np.testing.assert_array_equal(references.topk_order(x, 6), [[5, 1, 2, 0, 3, 4]])
    got = references.topk_softmax(np.array([[0.5, 2.0, 2.0, 1.0]]), k=2)["indices"]
    np.testing.assert_array_equal(got, [[1, 2]])


def test_rms_norm_rounds_h_to_the_call_dtype():
    rng = np.random.default_rng(3)
    x, r = rng.standard_normal((2, 8)), rng.standard_normal((2, 8)) * 1e-3
    w = np.ones(8)
    h16 = references.rms_norm(x, w, r, dtype="float16")["h"]
    np.testing.assert_array_equal(h16, (x + r).astype(np.float16).astype(np.float64))
    np.testing.assert_array_equal(references.rms_norm(x, w, r, dtype="float64")["h"], x + r)
    # dh without a residual: h is x, so dh adds to dx.
    dy, dh = rng.standard_normal((2, 8)), rng.standard_normal((2, 8))
    with_dh = references.rms_norm_vjp(x, w, dy=dy, dh=dh)["dx"]
    np.testing.assert_allclose(with_dh - references.rms_norm_vjp(x, w, dy=dy)["dx"], dh, atol=1e-12)
    assert references.rms_norm(x, w)["h"] is None  # absent by the spec without a residual
