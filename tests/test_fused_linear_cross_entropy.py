"""fused_linear_cross_entropy (torch): loss and gradients of hidden, weight and bias
against float64 autodiff of the unfused ``cross_entropy(hidden @ weight.T + bias)``,
in float32 and bfloat16; the logits are never materialised beyond one chunk."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

import xpuruntime.interop.torch as xt  # noqa: E402
from xpuruntime.interop.torch import _fused_linear_cross_entropy as flce  # noqa: E402
from conftest import TORCH_DEVICES, assert_close, to_numpy  # noqa: E402
from helpers import fused_linear_ce_bad_calls  # noqa: E402

TDT = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def case(device, dtype, t=45, h=24, v=97, bias=True, seed=0):
    gen = torch.Generator().manual_seed(seed)
    make = lambda *s: (torch.randn(*s, generator=gen) * 0.5).to(device, TDT[dtype]).requires_grad_()  # noqa: E731
    hidden, weight = make(t, h), make(v, h)
    b = make(v) if bias else None
    labels = torch.randint(0, v, (t,), generator=gen)
    labels[::5] = -100
    return hidden, weight, b, labels.to(device)


def reference(hidden, weight, bias, labels, **kw):
    """The unfused path in float64: loss and (hidden, weight, bias) leaves."""
    leaves = [None if t is None else t.detach().double().cpu().requires_grad_()
              for t in (hidden, weight, bias)]
    h, w, b = leaves
    logits = h @ w.t() + (0 if b is None else b)
    return F.cross_entropy(logits, labels.cpu(), **kw), leaves


class Calls:
    """Records the cross_entropy kernel calls the fused op makes."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = flce.call

        def record(op, direction, tensors, attrs, policy):
            logits = tensors[0] if direction == "forward" else tensors[1]
            self.calls.append((direction, tuple(logits.shape)))
            return real(op, direction, tensors, attrs, policy)
        monkeypatch.setattr(flce, "call", record)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", list(TDT))
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("chunk_size", [1, 8, None, 1000])
def test_matches_unfused(monkeypatch, device, dtype, bias, reduction, chunk_size):
    hidden, weight, b, labels = case(device, dtype, bias=bias)
    kw = dict(ignore_index=-100, label_smoothing=0.1, reduction=reduction)
    calls = Calls(monkeypatch)
    loss = xt.fused_linear_cross_entropy(hidden, weight, labels, bias=b, chunk_size=chunk_size, **kw)
    ref, leaves = reference(hidden, weight, b, labels, **kw)
    g = torch.randn(ref.shape, dtype=torch.float64) + 1.5
    (loss * g.to(loss.device, torch.float32)).sum().backward()
    (ref * g).sum().backward()
    assert loss.dtype == torch.float32 and loss.shape == ref.shape
    assert_close(to_numpy(loss), to_numpy(ref), dtype, "loss")
    for name, t, r in zip(("hidden", "weight", "bias"), (hidden, weight, b), leaves):
        if t is not None:
            assert t.grad.dtype == t.dtype
            assert_close(to_numpy(t.grad), to_numpy(r.grad), dtype, f"grad {name}")
    # One chunk's logits at a time, never [T, V] (unless one chunk covers every token).
    chunk = chunk_size or flce.default_chunk_size(45, 24, 97)
    assert calls.calls and all(rows <= min(chunk, 45) for _, (rows, _) in calls.calls)
    assert sum(rows for d, (rows, _) in calls.calls if d == "forward") == 45


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_leading_axes_and_strided_inputs(device):
    hidden, weight, b, labels = case(device, "float32", t=24)
    h3 = hidden.detach().view(4, 6, -1).transpose(0, 1).requires_grad_()  # [6, 4, H], strided
    lab3 = labels.view(4, 6).t()
    loss = xt.fused_linear_cross_entropy(h3, weight, lab3, bias=b, reduction="none", chunk_size=5)
    ref, (h64, _, _) = reference(h3.reshape(-1, h3.shape[-1]), weight, b, lab3.reshape(-1),
                                 reduction="none")
    assert loss.shape == (6, 4)
    assert_close(to_numpy(loss.reshape(-1)), to_numpy(ref), "float32")
    loss.sum().backward()
    ref.sum().backward()
    assert_close(to_numpy(h3.grad.reshape(-1, h3.shape[-1])), to_numpy(h64.grad), "float32")


def test_no_grad_computes_no_gradients(monkeypatch):
    hidden, weight, b, labels = case("cpu", "float32")
    calls = Calls(monkeypatch)
    with torch.no_grad():
        loss = xt.fused_linear_cross_entropy(hidden, weight, labels, chunk_size=8)
    assert {d for d, _ in calls.calls} == {"forward"}
    assert_close(to_numpy(loss), to_numpy(reference(hidden, weight, None, labels)[0]), "float32")


def test_all_rows_ignored_is_nan_with_zero_gradients():
    hidden, weight, b, labels = case("cpu", "float32", t=6)
    labels = torch.full_like(labels, -100)
    loss = xt.fused_linear_cross_entropy(hidden, weight, labels, bias=b, chunk_size=4)
    assert torch.isnan(loss)
    loss.backward()
    assert hidden.grad.abs().max() == 0 and weight.grad.abs().max() == 0


def test_bad_arguments():
    hidden, weight, b, labels = case("cpu", "float32")
    f = xt.fused_linear_cross_entropy
    for args, kwargs, match in fused_linear_ce_bad_calls(hidden, weight, b, labels):
        with pytest.raises(ValueError, match=match):
            f(*args, **kwargs)
