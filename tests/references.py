"""One float64 numpy reference per op (OPS.md), forward and backward.

``<op>(*inputs, **attrs)`` returns every output of the op by its spec name (results
and saved tensors; ``None`` for an absent optional one), ``<op>_vjp(*inputs,
<cotangents>, **attrs)`` the gradients by their spec names (``"d" + input``) from
the analytic formula. Inputs are numpy arrays holding the values the kernel saw
(already rounded to its dtype). tests/test_references.py checks every ``_vjp``
against central differences of its forward. ``forward`` / ``vjp`` dispatch by op name.
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from helpers import round_to

GELU_K = math.sqrt(2 / math.pi)


def _f64(*arrays):
    return [None if a is None else np.asarray(a, dtype=np.float64) for a in arrays]


def _lead_sum(a):
    """Sum over every axis but the last (a parameter's gradient)."""
    return a.reshape(-1, a.shape[-1]).sum(0)


# ---- rms_norm ----------------------------------------------------------------------------------

def _rms_h(x, residual, dtype):
    """h = x + residual, rounded to the inputs' dtype (OPS.md); x without a residual."""
    if residual is None:
        return x
    return round_to(x + residual, dtype).astype(np.float64)


def rms_norm(x, weight, residual=None, *, eps=1e-6, dtype="float32"):
    x, weight, residual = _f64(x, weight, residual)
    h = _rms_h(x, residual, dtype)
    rstd = 1.0 / np.sqrt((h * h).mean(-1) + eps)
    return {"y": h * rstd[..., None] * weight, "h": None if residual is None else h, "rstd": rstd}


def rms_norm_vjp(x, weight, residual=None, *, dy, dh=None, eps=1e-6, dtype="float32"):
    """Rounding h is a straight-through step: dx = dresidual = dh + d(rms_norm)/dh."""
    x, weight, residual, dy, dh = _f64(x, weight, residual, dy, dh)
    h = _rms_h(x, residual, dtype)
    r = 1.0 / np.sqrt((h * h).mean(-1, keepdims=True) + eps)
    g = dy * weight
    dx = r * g - h * r ** 3 * (g * h).mean(-1, keepdims=True)
    if dh is not None:
        dx = dx + dh
    out = {"dx": dx, "dweight": _lead_sum(dy * h * r)}
    if residual is not None:
        out["dresidual"] = dx
    return out


# ---- layer_norm --------------------------------------------------------------------------------

def _ln_stats(x, eps):
    """Per-row mean and rstd = rsqrt(population variance + eps)."""
    mean = x.mean(-1)
    return mean, 1.0 / np.sqrt(((x - mean[..., None]) ** 2).mean(-1) + eps)


def layer_norm(x, weight, bias, *, eps=1e-5):
    x, weight, bias = _f64(x, weight, bias)
    mean, rstd = _ln_stats(x, eps)
    y = (x - mean[..., None]) * rstd[..., None] * weight + bias
    return {"y": y, "mean": mean, "rstd": rstd}


def layer_norm_vjp(x, weight, bias, *, dy, eps=1e-5):
    """(The gradients do not depend on the bias: it may be None.)"""
    x, weight, dy = _f64(x, weight, dy)
    mean, rstd = _ln_stats(x, eps)
    rstd = rstd[..., None]
    xhat = (x - mean[..., None]) * rstd
    g = dy * weight
    dx = rstd * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
    return {"dx": dx, "dweight": _lead_sum(dy * xhat), "dbias": _lead_sum(dy)}


# ---- softmax -----------------------------------------------------------------------------------

def softmax(x, *, scale=1.0):
    (x,) = _f64(x)
    s = scale * x
    with np.errstate(invalid="ignore", divide="ignore"):
        e = np.exp(s - s.max(-1, keepdims=True)) if s.size else s
        return {"y": e / e.sum(-1, keepdims=True) if s.size else s}


def softmax_vjp(x, *, dy, scale=1.0):
    (dy,) = _f64(dy)
    y = softmax(x, scale=scale)["y"]
    return {"dx": softmax_backward(dy, y, scale=scale)}


def softmax_backward(dy, y, *, scale=1.0):
    """The backward formula from the forward's output (as the backward op takes it)."""
    dy, y = _f64(dy, y)
    return scale * y * (dy - (dy * y).sum(-1, keepdims=True))


# ---- swiglu / geglu ----------------------------------------------------------------------------

def _sigmoid(g):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-g))


def swiglu(gate, up):
    gate, up = _f64(gate, up)
    return {"y": gate * _sigmoid(gate) * up}


def swiglu_vjp(gate, up, *, dy):
    gate, up, dy = _f64(gate, up, dy)
    s = _sigmoid(gate)
    return {"dgate": dy * up * s * (1 + gate * (1 - s)), "dup": dy * gate * s}


def gelu_tanh(g):
    return 0.5 * g * (1 + np.tanh(GELU_K * (g + 0.044715 * g ** 3)))


def gelu_tanh_grad(g):
    t = np.tanh(GELU_K * (g + 0.044715 * g ** 3))
    return 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * GELU_K * (1 + 3 * 0.044715 * g * g)


def geglu(gate, up):
    gate, up = _f64(gate, up)
    with np.errstate(over="ignore", invalid="ignore"):
        return {"y": gelu_tanh(gate) * up}


def geglu_vjp(gate, up, *, dy):
    gate, up, dy = _f64(gate, up, dy)
    return {"dgate": dy * up * gelu_tanh_grad(gate), "dup": dy * gelu_tanh(gate)}


# ---- rope --------------------------------------------------------------------------------------

def rope(x, cos, sin, *, interleaved=False):
    """x [B, S, H, D] rotated by the angles of cos / sin [S, D/2]."""
    x, cos, sin = _f64(x, cos, sin)
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    y = np.empty_like(x)
    if interleaved:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        y[..., 0::2], y[..., 1::2] = x1 * c - x2 * s, x2 * c + x1 * s
    else:
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        y[..., :half], y[..., half:] = x1 * c - x2 * s, x2 * c + x1 * s
    return {"y": y}


def rope_vjp(x, cos, sin, *, dy, interleaved=False):
    """The transpose of a rotation: dy rotated by the negative angle (cos, sin get none)."""
    (sin,) = _f64(sin)
    return {"dx": rope(dy, cos, -sin, interleaved=interleaved)["y"]}


# ---- cross_entropy -----------------------------------------------------------------------------

def _ce_parts(logits, labels, ignore_index):
    x = np.asarray(logits, dtype=np.float64)
    lab = np.asarray(labels).astype(np.int64)
    keep = lab != ignore_index
    safe = np.where(keep, lab, 0)
    m = x.max(-1, keepdims=True) if x.size else np.zeros(x.shape[:-1] + (1,))
    with np.errstate(invalid="ignore", over="ignore"):
        lse = (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]
    picked = np.take_along_axis(x, safe[..., None], -1)[..., 0] if x.size else lse
    return x, lab, keep, safe, lse, picked


def cross_entropy(logits, labels, *, ignore_index=-100, label_smoothing=0.0, reduction="mean"):
    """loss (0-d or labels' shape) and lse (0 for ignored rows); mean over no counted
    row is NaN, as in torch."""
    x, _, keep, _, lse, picked = _ce_parts(logits, labels, ignore_index)
    smooth = x.mean(-1) if x.shape[-1] else lse
    # In log-softmax terms, exact where they vanish (one class: lse == picked == smooth).
    per_row = np.where(keep, (1 - label_smoothing) * (lse - picked)
                       + label_smoothing * (lse - smooth), 0.0)
    if reduction == "none":
        loss = per_row
    elif reduction == "sum":
        loss = np.asarray(per_row.sum())
    else:
        with np.errstate(invalid="ignore", divide="ignore"):
            loss = np.asarray(per_row.sum() / keep.sum())
    return {"loss": loss, "lse": np.where(keep, lse, 0.0)}


def cross_entropy_vjp(logits, labels, *, dloss, ignore_index=-100, label_smoothing=0.0,
                      reduction="mean"):
    x, _, keep, safe, lse, _ = _ce_parts(logits, labels, ignore_index)
    dloss = np.asarray(dloss, dtype=np.float64)
    if reduction == "none":
        g = dloss
    elif reduction == "sum":
        g = np.broadcast_to(dloss, keep.shape)
    else:
        g = np.broadcast_to(dloss / max(int(keep.sum()), 1), keep.shape)
    v = x.shape[-1]
    p = np.exp(x - lse[..., None])
    onehot = np.zeros_like(x)
    if x.size:
        np.put_along_axis(onehot, safe[..., None], 1.0, -1)
    d = (1 - label_smoothing) * (p - onehot) + label_smoothing * (p - 1 / max(v, 1))
    return {"dlogits": np.where(keep[..., None], g[..., None] * d, 0.0)}


# ---- topk_softmax ------------------------------------------------------------------------------

def topk_order(logits, k):
    """The k largest logits of each row in descending order, ties to the lower index, NaN
    above everything (-0.0 and 0.0 tie)."""
    x = np.asarray(logits, dtype=np.float64)
    nan = np.isnan(x)
    cols = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    # lexsort: the last key first. NaN first, then larger values, then lower indices.
    return np.lexsort((cols, -np.where(nan, 0.0, x), ~nan), axis=-1)[..., :k]


def topk_softmax(logits, *, k, renormalize=True, indices=None):
    """weights = softmax(logits)[indices] (divided by their sum when ``renormalize``) and
    the indices; ``indices`` given: that selection instead of topk_order's."""
    x = np.asarray(logits, dtype=np.float64)
    order = topk_order(x, k) if indices is None else np.asarray(indices).astype(np.int64)
    with np.errstate(invalid="ignore"):
        m = x.max(axis=-1, keepdims=True) if x.size else x[..., :1]
        e = np.exp(x - m)
        p = e / e.sum(axis=-1, keepdims=True)
        w = np.take_along_axis(p, order, axis=-1)
        if renormalize:
            w = w / w.sum(axis=-1, keepdims=True)
    return {"weights": w, "indices": order}


def topk_softmax_vjp(logits, *, dweights, indices, k=None, renormalize=True):
    """dlogits of sum(weights * dweights), the selection ``indices`` held fixed."""
    x = np.asarray(logits, dtype=np.float64)
    idx = np.asarray(indices).astype(np.int64)
    (dw,) = _f64(dweights)
    p = topk_softmax(x, k=idx.shape[-1], renormalize=False, indices=idx)["weights"]
    full = np.exp(x - x.max(-1, keepdims=True)) if x.size else x
    full = full / full.sum(-1, keepdims=True) if x.size else full
    if renormalize:
        total = p.sum(-1, keepdims=True)
        w = p / total
        dp = (dw - (dw * w).sum(-1, keepdims=True)) / total  # d loss / d p at the chosen
    else:
        dp = dw
    dx = np.zeros_like(x)
    if x.size:
        np.put_along_axis(dx, idx, dp * p, -1)
    return {"dlogits": dx - full * (dp * p).sum(-1, keepdims=True)}


# ---- dispatch ----------------------------------------------------------------------------------

def _call(fn, args, attrs, dtype):
    if "dtype" in inspect.signature(fn).parameters:
        attrs = {**attrs, "dtype": dtype}
    return fn(*args, **attrs)


def forward(op: str, *inputs, dtype: str = "float32", **attrs) -> dict:
    """Every output of ``op`` by its spec name, from inputs in spec order."""
    return _call(globals()[op], inputs, attrs, dtype)


def vjp(op: str, *inputs, cotangents: dict, dtype: str = "float32", **attrs) -> dict:
    """Gradients ``{"d" + input: array}`` for the cotangents ``{"d" + result: array}``."""
    return _call(globals()[f"{op}_vjp"], inputs, {**cotangents, **attrs}, dtype)
