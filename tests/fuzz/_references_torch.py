"""float64 references of every op of OPS.md for the fuzz suite (torch float64 autograd), one function per op, and their
gradients by autodiff (torch float64 autograd) of that same function.

``forward(op, inputs, attrs, dtype)`` returns every output of the op's forward
spec by name (results and saved statistics); ``vjp(op, inputs, attrs, dtype,
cotangents)`` returns the gradients of ``sum(result * cotangent)`` for the
float inputs, keyed ``"d" + input name`` as the backward specs name them. Inputs
are numpy arrays already rounded to the dtype the kernel saw (float32 / float64
holding f16 / bf16 values are fine) and integer labels / indices; ``dtype`` is
the call's float dtype (rms_norm rounds ``h = x + residual`` to it).

A new op adds one function to ``REFERENCES`` (tests/fuzz checks every op of
ffi/ops.def has one).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

Tensor = Any  # torch.Tensor; torch is imported lazily


def _torch():
    import torch
    return torch


def _round_to(t: Tensor, dtype: str) -> Tensor:
    """``t`` rounded to ``dtype`` with a straight-through gradient (rounding is the
    identity for autodiff, as in the kernels' backward)."""
    torch = _torch()
    tdt = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    return t + (t.detach().to(tdt).to(torch.float64) - t.detach())


# With DETACH_STATS (set by ``vjp(..., detach_stats=True)``) the row statistics carry no
# gradient: the vjp is then the sum of the "uncancelled" terms of the closed-form
# backward (rms_norm: rstd * w * dy), the scale against which a kernel's f32 error
# is measured where the true gradient cancels to almost nothing (rms_norm at N = 1).
DETACH_STATS = False


def _stat(t: Tensor) -> Tensor:
    """A row statistic (rstd, mean, lse): detached under DETACH_STATS."""
    return t.detach() if DETACH_STATS else t


def _mean_last(t: Tensor) -> Tensor:
    """Mean over the last axis; NaN for an empty axis (torch's own rule)."""
    return t.mean(-1)


# ---- the ops ------------------------------------------------------------------------------------

def rms_norm(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    x, w, r = t["x"], t["weight"], t.get("residual")
    h = x if r is None else _round_to(x + r, dtype)
    rstd = _stat(1.0 / (_mean_last(h * h) + a["eps"]).sqrt())
    out = {"y": h * rstd[..., None] * w, "rstd": rstd}
    if r is not None:
        out["h"] = h
    return out


def layer_norm(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    x, w, b = t["x"], t["weight"], t["bias"]
    mean = _stat(_mean_last(x))
    var = _mean_last((x - mean[..., None]) ** 2)
    rstd = _stat(1.0 / (var + a["eps"]).sqrt())
    return {"y": (x - mean[..., None]) * rstd[..., None] * w + b, "mean": mean, "rstd": rstd}


def softmax(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    s = t["x"] * a["scale"]
    return {"y": (s - _stat(_torch().logsumexp(s, -1, keepdim=True))).exp()}


def swiglu(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    g = t["gate"]
    return {"y": g * _torch().sigmoid(g) * t["up"]}


def geglu(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    g = t["gate"]
    inner = math.sqrt(2.0 / math.pi) * (g + 0.044715 * g ** 3)
    return {"y": 0.5 * g * (1.0 + _torch().tanh(inner)) * t["up"]}


def rope(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    torch = _torch()
    x = t["x"]  # [B, S, H, D]; tables [S, D/2] broadcast over B and H
    c, s = t["cos"][None, :, None, :], t["sin"][None, :, None, :]
    if a["interleaved"]:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        y = torch.stack((x1 * c - x2 * s, x2 * c + x1 * s), -1).reshape(x.shape)
    else:
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        y = torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), -1)
    return {"y": y}


def cross_entropy(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    torch = _torch()
    x, labels = t["logits"], t["labels"].to(torch.int64)
    ls = a["label_smoothing"]
    lse = _stat(torch.logsumexp(x, -1))
    counted = labels != a["ignore_index"]
    picked = x.gather(-1, torch.where(counted, labels, 0)[..., None])[..., 0]
    per_row = torch.where(counted, lse - (1.0 - ls) * picked - ls * _mean_last(x), 0.0)
    if a["reduction"] == "none":
        loss = per_row
    elif a["reduction"] == "sum":
        loss = per_row.sum()
    else:
        n = int(counted.sum())
        # Mean over no counted rows is NaN (as torch) and its gradient zero (OPS.md).
        loss = per_row.sum() / n if n else per_row.sum() * 0.0 + math.nan
    return {"loss": loss, "lse": torch.where(counted, lse, 0.0)}


def topk_softmax(t: Mapping[str, Tensor], a: Mapping[str, Any], dtype: str) -> dict:
    torch = _torch()
    x = t["logits"]
    k = int(a["k"])
    xn = x.detach().numpy()
    nan = np.isnan(xn)
    cols = np.broadcast_to(np.arange(xn.shape[-1]), xn.shape)
    # The k largest in descending order, ties to the lower index, NaN above everything.
    order = np.lexsort((cols, -np.where(nan, 0.0, xn), ~nan), axis=-1)[..., :k]
    idx = torch.as_tensor(np.ascontiguousarray(order), dtype=torch.int64)
    w = (x - _stat(torch.logsumexp(x, -1, keepdim=True))).exp().gather(-1, idx)
    if a["renormalize"]:
        w = w / _stat(w.sum(-1, keepdim=True))
    return {"weights": w, "indices": idx}


REFERENCES: dict[str, Callable[[Mapping[str, Tensor], Mapping[str, Any], str], dict]] = {
    "rms_norm": rms_norm,
    "layer_norm": layer_norm,
    "softmax": softmax,
    "swiglu": swiglu,
    "geglu": geglu,
    "rope": rope,
    "cross_entropy": cross_entropy,
    "topk_softmax": topk_softmax,
}


# ---- evaluation ---------------------------------------------------------------------------------

def _tensors(inputs: Mapping[str, Any], grad: bool) -> dict:
    torch = _torch()
    out = {}
    for name, a in inputs.items():
        if a is None:
            continue
        arr = np.asarray(a)
        if arr.dtype.kind == "f":
            out[name] = torch.tensor(arr.astype(np.float64), requires_grad=grad)
        else:
            out[name] = torch.tensor(arr.astype(np.int64))
    return out


def forward(op: str, inputs: Mapping[str, Any], attrs: Mapping[str, Any],
            dtype: str = "float32") -> dict[str, np.ndarray]:
    """Every forward output of ``op`` (by spec name) in float64 (integer outputs as int64)."""
    torch = _torch()
    with torch.no_grad():
        out = REFERENCES[op](_tensors(inputs, False), attrs, dtype)
    return {k: v.detach().numpy() for k, v in out.items()}


def vjp(op: str, inputs: Mapping[str, Any], attrs: Mapping[str, Any], dtype: str,
        cotangents: Mapping[str, Any], detach_stats: bool = False) -> dict[str, np.ndarray]:
    """Gradients ``"d" + name`` of ``sum(out * cotangent)`` (over the outputs given a
    cotangent) for every float input, by float64 autograd of the reference
    (``detach_stats``: with the row statistics held constant, see DETACH_STATS)."""
    global DETACH_STATS
    torch = _torch()
    ts = _tensors(inputs, True)
    DETACH_STATS = detach_stats
    try:
        outs = REFERENCES[op](ts, attrs, dtype)
    finally:
        DETACH_STATS = False
    total = sum((outs[k] * torch.tensor(np.asarray(c, dtype=np.float64))).sum()
                for k, c in cotangents.items() if c is not None)
    floats = [n for n, v in ts.items() if v.is_floating_point()]
    if not torch.is_tensor(total) or not total.requires_grad:
        return {f"d{n}": np.zeros(ts[n].shape) for n in floats}
    grads = torch.autograd.grad(total, [ts[n] for n in floats], allow_unused=True)
    return {f"d{n}": (np.zeros(ts[n].shape) if g is None else g.numpy())
            for n, g in zip(floats, grads)}
