"""Cross entropy of a vocabulary projection without the ``[T, V]`` logits:
``cross_entropy(hidden @ weight.T + bias, labels)`` computed a chunk of tokens at a
time, each chunk's logits fed to xpuruntime's cross_entropy kernels and dropped.

For ``"mean"`` / ``"sum"`` the gradients are computed during the forward, chunk by
chunk (as Liger-Kernel does): the chunk's dlogits give its rows of grad_hidden and
add into grad_weight (and grad_bias); the backward only scales them by the incoming
scalar gradient. ``"none"`` needs a gradient per row, known only in the backward,
so there the backward recomputes each chunk's logits (one more matmul a chunk).

Parameter gradients are accumulated over chunks in float32 (OPS.md) and returned in
the parameter's dtype; for a 16-bit weight that float32 ``[V, H]`` accumulator is
the memory this costs beyond the gradient itself.
"""

from __future__ import annotations

from typing import Optional

import torch

from ... import _spec
from ..._fused_linear_ce import check_args, check_dtypes, default_chunk_size
from ._common import policy_for_call
from ._registration import call

Tensor = torch.Tensor


def _logits(h: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
    return h @ weight.t() if bias is None else torch.addmm(bias, h, weight.t())


class _Grads:
    """grad_hidden rows written chunk by chunk; grad_weight / grad_bias summed over
    chunks in float32 (a 16-bit weight's chunk products go through one reused buffer)."""

    def __init__(self, hidden, weight, bias, needs):
        self.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        self.hidden = torch.empty_like(hidden) if needs[0] else None
        self.weight = (torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
                       if needs[1] else None)
        self._product = (torch.empty_like(weight) if needs[1] and weight.dtype != torch.float32
                         else None)
        self.bias = (torch.zeros(bias.shape, dtype=torch.float32, device=bias.device)
                     if bias is not None and needs[3] else None)

    def add(self, rows: slice, h: Tensor, weight: Tensor, dlogits: Tensor) -> None:
        if self.hidden is not None:
            torch.mm(dlogits, weight, out=self.hidden[rows])
        if self.weight is not None:
            if self._product is None:
                self.weight.addmm_(dlogits.t(), h)
            else:
                self.weight.add_(torch.mm(dlogits.t(), h, out=self._product))
        if self.bias is not None:
            self.bias.add_(dlogits.sum(0, dtype=torch.float32))

    def scaled(self, g: Tensor):
        """(grad_hidden, grad_weight, grad_bias) times the scalar gradient ``g``, in the
        dtypes of hidden, weight and bias (None where no gradient was asked for)."""
        return tuple(None if t is None else (t * g).to(dtype)
                     for t, dtype in zip((self.hidden, self.weight, self.bias), self.dtypes))


class _FusedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, labels, bias, ignore_index, label_smoothing, reduction,
                chunk, policy, grad_enabled):
        tokens = hidden.shape[0]
        none = reduction == "none"
        ce = {"ignore_index": ignore_index, "label_smoothing": label_smoothing,
              "reduction": "none" if none else "sum"}
        # needs_input_grad stays set under torch.no_grad: no gradients are computed there.
        needs = ctx.needs_input_grad if grad_enabled else (False,) * 4
        grads = _Grads(hidden, weight, bias, needs) if not none and any(needs[:4]) else None
        if reduction == "mean":  # 1 / counted rows, on the device (no sync); 0 when none count
            count = (labels != ignore_index).sum().to(torch.float32)
            dloss = torch.where(count > 0, 1.0 / count, torch.zeros_like(count))
        else:
            dloss = torch.ones((), dtype=torch.float32, device=hidden.device)
        losses, lses = [], []
        for start in range(0, tokens, chunk):
            rows = slice(start, min(start + chunk, tokens))
            h, lab = hidden[rows], labels[rows]
            logits = _logits(h, weight, bias)
            loss, lse = call("cross_entropy", _spec.FORWARD, (logits, lab), ce, policy)
            losses.append(loss)
            if none:
                lses.append(lse)
            elif grads is not None:
                dlogits = call("cross_entropy", _spec.BACKWARD, (dloss, logits, lab, lse), ce,
                               policy)
                grads.add(rows, h, weight, dlogits)
        if none:
            out = torch.cat(losses) if losses else hidden.new_zeros((0,), dtype=torch.float32)
            ctx.save_for_backward(hidden, weight, labels, bias,
                                  torch.cat(lses) if lses else out)
        else:
            total = torch.stack(losses).sum() if losses else torch.zeros_like(dloss)
            out = total * dloss if reduction == "mean" else total
            if reduction == "mean":  # torch's mean over zero counted rows is NaN
                out = torch.where(dloss > 0, out, torch.full_like(out, float("nan")))
            ctx.grads = grads
        ctx.options = (ce, chunk, policy, none)
        return out

    @staticmethod
    def backward(ctx, g):
        ce, chunk, policy, none = ctx.options
        if not none:
            if ctx.grads is None:
                return (None,) * 10
            dh, dw, db = ctx.grads.scaled(g)
            ctx.grads = None  # frees the float32 accumulators
            return dh, dw, None, db, None, None, None, None, None, None
        hidden, weight, labels, bias, lse = ctx.saved_tensors
        needs = ctx.needs_input_grad
        grads = _Grads(hidden, weight, bias, needs)
        g = g.to(torch.float32).contiguous()
        for start in range(0, hidden.shape[0], chunk):
            rows = slice(start, min(start + chunk, hidden.shape[0]))
            h, lab = hidden[rows], labels[rows]
            logits = _logits(h, weight, bias)
            dlogits = call("cross_entropy", _spec.BACKWARD, (g[rows], logits, lab, lse[rows]), ce,
                           policy)
            grads.add(rows, h, weight, dlogits)
        dh, dw, db = grads.scaled(torch.ones((), dtype=torch.float32, device=hidden.device))
        return dh, dw, None, db, None, None, None, None, None, None


def fused_linear_cross_entropy(hidden: Tensor, weight: Tensor, labels: Tensor, *,
                               bias: Optional[Tensor] = None, ignore_index: int = -100,
                               label_smoothing: float = 0.0, reduction: str = "mean",
                               chunk_size: Optional[int] = None,
                               policy: Optional[str] = None) -> Tensor:
    """``cross_entropy(hidden @ weight.T + bias, labels)`` without materialising the logits.

    The vocabulary projection runs ``chunk_size`` tokens at a time and each chunk's
    ``[chunk, V]`` logits go through xpuruntime's cross_entropy kernels, forward and
    backward, then are freed: memory is O(chunk * V), not O(T * V). Same numbers as the
    unfused ``cross_entropy(hidden @ weight.T + bias, labels)`` within OPS.md tolerances.

    Args:
      hidden: ``[T, H]`` (or ``[..., H]``) float32, float16 or bfloat16, any layout.
      weight: ``[V, H]``, hidden's dtype and device (the LM head's weight).
      labels: ``[T]`` (hidden's leading shape), int32 or int64; ``ignore_index`` rows
        count for nothing.
      bias: optional ``[V]``, hidden's dtype.
      ignore_index, label_smoothing, reduction: as ``cross_entropy``.
      chunk_size: tokens a chunk (default: ``default_chunk_size``, logits of a chunk
        about the size of ``hidden``).
      policy: kernel policy of the cross_entropy kernels (default: current policy).

    Returns:
      f32 scalar (mean, sum) or f32 of labels' shape (none). Differentiable in hidden,
      weight and bias; parameter gradients are summed over chunks in float32.
    """
    check_dtypes(*(None if t is None else str(t.dtype).removeprefix("torch.")
                   for t in (hidden, weight, labels, bias)))
    check_args(hidden.shape, weight.shape, labels.shape, None if bias is None else bias.shape,
               reduction, label_smoothing, chunk_size)
    h2 = hidden.reshape(-1, hidden.shape[-1])
    chunk = chunk_size or default_chunk_size(h2.shape[0], h2.shape[1], weight.shape[0])
    loss = _FusedLinearCrossEntropy.apply(h2, weight, labels.reshape(-1), bias, int(ignore_index),
                                          float(label_smoothing), reduction, chunk,
                                          policy_for_call(policy), torch.is_grad_enabled())
    return loss.view(labels.shape) if reduction == "none" else loss
