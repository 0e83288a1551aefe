"""One float64 reference per op of OPS.md, forward and backward: each op is one function
of torch float64 tensors (``REFERENCES``), and its gradients are torch autograd of that
same function; no formula is written twice. Used by the op tests, the fuzz suite and the
regression tests; tests/test_references.py checks the references themselves.

Positional API (inputs in spec order, or by their spec names as keywords; ``None``: an
absent optional input; attributes default to the spec's)::

    forward(op, *inputs, dtype="float32", **attrs)   -> {output name: float64 / int64 numpy}
    vjp(op, *inputs, cotangents={"d" + output: array}, dtype=, **attrs)
                                                     -> {"d" + input: float64 numpy}
    <op>(*inputs, **attrs)                           = forward(op, ...)
    <op>_vjp(*inputs, d<output>=..., **attrs)        = vjp(op, ...)

``forward`` gives every output of the forward spec, results and saved statistics, with
``None`` for one absent by the spec (rms_norm's ``h`` without a residual). ``vjp`` gives
the gradients of ``sum(output * cotangent)`` over the outputs given a cotangent (one for an
output absent by the spec still counts: rms_norm's ``dh`` without a residual adds to dx)
for every present float ``rows`` / ``parameter`` input, as the backward specs name them.
An integer output given by name (topk_softmax's ``indices``) is held fixed: the reference
uses that selection instead of its own. Inputs are arrays of the values the kernel saw
(already rounded to its dtype; float inputs of any dtype, integer labels / indices);
``dtype`` is the call's float dtype (rms_norm rounds ``h = x + residual`` to it; "float64":
no rounding). ``outputs`` / ``gradients`` take the inputs as a dict by name instead.

With ``detach_stats=True`` the row statistics carry no gradient: the vjp is then the sum of
the "uncancelled" terms of the closed-form backward (rms_norm: rstd * w * dy), the scale
against which a kernel's f32 error is measured where the true gradient cancels to almost
nothing (rms_norm at N = 1; the fuzz suite uses it).

A new op adds one function to ``REFERENCES`` (a test fails for an op of ffi/ops.def
without one).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

from xpuruntime import _spec

Tensor = Any  # torch.Tensor (torch is imported lazily, on the first evaluation)


def _torch():
    import torch
    return torch


def _round_to(t: Tensor, dtype: str) -> Tensor:
    """``t`` rounded (to nearest even) to ``dtype`` with a straight-through gradient:
    rounding is the identity for autodiff, as in the kernels' backward."""
    if dtype == "float64":
        return t
    torch = _torch()
    low = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    return t + (t.detach().to(low).to(torch.float64) - t.detach())


_DETACH_STATS = False  # set for one evaluation by gradients(..., detach_stats=True)


def _stat(t: Tensor) -> Tensor:
    """A row statistic (rstd, mean, lse, a renormalizing sum): detached under detach_stats."""
    return t.detach() if _DETACH_STATS else t


# ---- the ops: (tensors by input name, attributes, dtype) -> every output by name ------------------

def rms_norm_ref(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    x, w, r = t["x"], t["weight"], t.get("residual")
    h = x if r is None else _round_to(x + r, dtype)  # h is x without a residual
    rstd = _stat(1.0 / ((h * h).mean(-1) + a["eps"]).sqrt())
    return {"y": h * rstd[..., None] * w, "h": h}


def layer_norm_ref(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    x, w, b = t["x"], t["weight"], t["bias"]
    mean = _stat(x.mean(-1))
    rstd = _stat(1.0 / (((x - mean[..., None]) ** 2).mean(-1) + a["eps"]).sqrt())
    return {"y": (x - mean[..., None]) * rstd[..., None] * w + b, "mean": mean, "rstd": rstd}


def softmax_ref(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    s = t["x"] * a["scale"]
    return {"y": (s - _stat(_torch().logsumexp(s, -1, keepdim=True))).exp()}


def swiglu_ref(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    g = t["gate"]
    return {"y": g * _torch().sigmoid(g) * t["up"]}


def geglu_ref(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    g = t["gate"]  # GELU, tanh approximation
    inner = math.sqrt(2.0 / math.pi) * (g + 0.044715 * g ** 3)
    return {"y": 0.5 * g * (1.0 + _torch().tanh(inner)) * t["up"]}


def rope_ref(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    torch = _torch()
    x = t["x"]  # [B, S, H, D], rotated by the angles of the tables [S, D/2] (over B and H)
    c, s = t["cos"][None, :, None, :], t["sin"][None, :, None, :]
    if a["interleaved"]:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        y = torch.stack((x1 * c - x2 * s, x2 * c + x1 * s), -1).reshape(x.shape)
    else:
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        y = torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), -1)
    return {"y": y}


def cross_entropy_ref(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    """loss (0-d, or the labels' shape for "none") and lse (0 for ignored rows). In
    log-softmax terms, so that a one-class row is exactly 0; the mean over no counted
    row is NaN (as torch) with a zero gradient (OPS.md)."""
    torch = _torch()
    x, labels = t["logits"], t["labels"]
    ls = a["label_smoothing"]
    counted = labels != a["ignore_index"]
    lse = _stat(torch.logsumexp(x, -1))
    if x.shape[-1]:
        picked = x.gather(-1, torch.where(counted, labels, 0)[..., None])[..., 0]
    else:  # rows without columns: no label can be counted
        picked = torch.zeros(labels.shape, dtype=x.dtype)
    per_row = torch.where(counted, (1 - ls) * (lse - picked) + ls * (lse - x.mean(-1)), 0.0)
    if a["reduction"] == "none":
        loss = per_row
    elif a["reduction"] == "sum":
        loss = per_row.sum()
    else:
        n = int(counted.sum())
        loss = per_row.sum() / n if n else per_row.sum() * 0.0 + math.nan
    return {"loss": loss, "lse": torch.where(counted, lse, 0.0)}


def topk_order(logits, k: int) -> np.ndarray:
    """The k largest logits of each row in descending order, ties to the lower index, NaN
    above everything (-0.0 and 0.0 tie), as int64 numpy."""
    x = np.asarray(logits, dtype=np.float64)
    nan = np.isnan(x)
    cols = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    # lexsort sorts by the last key first: NaN first, then larger values, then lower indices.
    return np.lexsort((cols, -np.where(nan, 0.0, x), ~nan), axis=-1)[..., :k]


def topk_softmax_ref(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    """weights = softmax(logits) at the top-k (divided by their sum with renormalize) and
    the indices; an ``indices`` input holds the selection fixed."""
    torch = _torch()
    x = t["logits"]
    idx = t.get("indices")
    if idx is None:
        order = topk_order(x.detach().numpy(), int(a["k"]))
        idx = torch.as_tensor(np.ascontiguousarray(order), dtype=torch.int64)
    w = (x - _stat(torch.logsumexp(x, -1, keepdim=True))).exp().gather(-1, idx)
    if a["renormalize"]:
        w = w / _stat(w.sum(-1, keepdim=True))
    return {"weights": w, "indices": idx}


REFERENCES: dict[str, Callable[[Mapping[str, Tensor], Mapping[str, Any], str], dict]] = {
    "rms_norm": rms_norm_ref,
    "layer_norm": layer_norm_ref,
    "softmax": softmax_ref,
    "swiglu": swiglu_ref,
    "geglu": geglu_ref,
    "rope": rope_ref,
    "cross_entropy": cross_entropy_ref,
    "topk_softmax": topk_softmax_ref,
}


# ---- evaluation ---------------------------------------------------------------------------------

def differentiable(spec: _spec.OpSpec, present) -> list[str]:
    """Names of the inputs a gradient is taken for: present float rows and parameters."""
    return [s.name for s in spec.inputs
            if s.name in present and s.role in ("rows", "parameter") and s.dtype == "float"]


def _as_numpy(a) -> np.ndarray:
    if hasattr(a, "detach"):  # a torch tensor (bfloat16 has no numpy type)
        a = a.detach().cpu()
        return (a.double() if a.is_floating_point() else a.long()).numpy()
    return np.asarray(a)


def _tensors(spec: _spec.OpSpec, inputs: Mapping[str, Any], grad: bool) -> dict:
    """Float inputs as float64 tensors (rows and parameters requiring a gradient when
    ``grad``), integer and bool ones as int64; absent ones left out."""
    torch = _torch()
    wanted = differentiable(spec, {k for k, v in inputs.items() if v is not None}) if grad else ()
    out = {}
    for name, a in inputs.items():
        if a is None:
            continue
        arr = _as_numpy(a)
        if arr.dtype.kind in "iub":
            out[name] = torch.tensor(arr.astype(np.int64))
        else:
            out[name] = torch.tensor(arr.astype(np.float64), requires_grad=name in wanted)
    return out


def _attrs(spec: _spec.OpSpec, attrs: Mapping[str, Any]) -> dict:
    unknown = set(attrs) - {a.name for a in spec.attrs}
    if unknown:
        raise TypeError(f"references.{spec.op}: unknown attribute(s) {sorted(unknown)}")
    return {**spec.defaults, **attrs}


def _check_inputs(spec: _spec.OpSpec, inputs: Mapping[str, Any]) -> None:
    fixed = {o.name for o in spec.outputs}
    unknown = set(inputs) - set(spec.input_names) - fixed
    if unknown:
        raise TypeError(f"references.{spec.op}: unknown input(s) {sorted(unknown)}")


def outputs(op: str, inputs: Mapping[str, Any], attrs: Mapping[str, Any] | None = None,
            dtype: str = "float32") -> dict[str, np.ndarray | None]:
    """Every forward output of ``op`` by spec name (float64; integer outputs int64; None
    for one the spec leaves out for these inputs) from the inputs by name."""
    torch = _torch()
    spec = _spec.get(op)
    _check_inputs(spec, inputs)
    with torch.no_grad():
        out = REFERENCES[op](_tensors(spec, inputs, False), _attrs(spec, attrs or {}), dtype)
    result = {}
    for o in spec.outputs:
        absent = o.present_if is not None and inputs.get(spec.inputs[o.present_if].name) is None
        result[o.name] = None if absent else out[o.name].numpy()
    return result


def gradients(op: str, inputs: Mapping[str, Any], cotangents: Mapping[str, Any],
              attrs: Mapping[str, Any] | None = None, dtype: str = "float32",
              detach_stats: bool = False) -> dict[str, np.ndarray]:
    """``{"d" + input: float64 numpy}``: the gradients of ``sum(output * cotangent)`` over
    the outputs given a cotangent (``{"d" + output: array}``; None: none) for every
    present float rows / parameter input, by float64 autograd of the reference."""
    global _DETACH_STATS
    torch = _torch()
    spec = _spec.get(op)
    _check_inputs(spec, inputs)
    unknown = {k for k in cotangents if k[1:] not in spec.output_names or not k.startswith("d")}
    if unknown:
        raise TypeError(f"references.{op}: cotangents for no output: {sorted(unknown)}")
    ts = _tensors(spec, inputs, True)
    _DETACH_STATS = detach_stats
    try:
        outs = REFERENCES[op](ts, _attrs(spec, attrs or {}), dtype)
    finally:
        _DETACH_STATS = False
    total = sum((outs[k[1:]] * torch.tensor(_as_numpy(c).astype(np.float64))).sum()
                for k, c in cotangents.items() if c is not None)
    wanted = differentiable(spec, ts)
    if not torch.is_tensor(total) or not total.requires_grad:
        return {f"d{n}": np.zeros(ts[n].shape) for n in wanted}
    grads = torch.autograd.grad(total, [ts[n] for n in wanted], allow_unused=True)
    return {f"d{n}": (np.zeros(ts[n].shape) if g is None else g.numpy())
            for n, g in zip(wanted, grads)}


def _by_name(spec: _spec.OpSpec, args: tuple, kwargs: dict) -> tuple[dict, dict]:
    """(inputs by name, the rest) from positional inputs in spec order and keywords."""
    if len(args) > len(spec.inputs):
        raise TypeError(f"references.{spec.op}: {len(args)} inputs, the op takes "
                        f"{len(spec.inputs)}")
    inputs = dict(zip(spec.input_names, args))
    rest = {}
    for k, v in kwargs.items():
        (inputs if k in spec.input_names or k in spec.output_names else rest)[k] = v
    return inputs, rest


def forward(op: str, *inputs, dtype: str = "float32", **attrs) -> dict:
    """Every output of ``op`` by its spec name, from inputs in spec order."""
    by_name, attrs = _by_name(_spec.get(op), inputs, attrs)
    return outputs(op, by_name, attrs, dtype)


def vjp(op: str, *inputs, cotangents: Mapping[str, Any], dtype: str = "float32",
        detach_stats: bool = False, **attrs) -> dict:
    """Gradients ``{"d" + input: array}`` for the cotangents ``{"d" + output: array}``."""
    by_name, attrs = _by_name(_spec.get(op), inputs, attrs)
    return gradients(op, by_name, cotangents, attrs, dtype, detach_stats)


def _public(op: str) -> tuple[Callable, Callable]:
    """``<op>`` and ``<op>_vjp``: forward / vjp of one op, cotangents as ``d<output>=``."""
    outs = {"d" + name for name in _spec.get(op).output_names}

    def fwd(*inputs, dtype: str = "float32", **attrs) -> dict:
        return forward(op, *inputs, dtype=dtype, **attrs)

    def grad(*inputs, dtype: str = "float32", **kwargs) -> dict:
        cotangents = {k: kwargs.pop(k) for k in list(kwargs) if k in outs}
        return vjp(op, *inputs, cotangents=cotangents, dtype=dtype, **kwargs)

    fwd.__name__, grad.__name__ = op, f"{op}_vjp"
    fwd.__doc__ = f"forward('{op}', ...): every output of {op} by its spec name."
    grad.__doc__ = f"vjp('{op}', ...) with the cotangents as d<output>= keywords."
    return fwd, grad


for _op in REFERENCES:
    globals()[_op], globals()[f"{_op}_vjp"] = _public(_op)
del _op
