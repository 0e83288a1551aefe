"""The causal-LM loss on xpuruntime, in Hugging Face's API.

Hugging Face computes ``ForCausalLMLoss(logits, labels, vocab_size, num_items_in_batch,
ignore_index, shift_labels)``: labels shifted left by one (the last position gets
``ignore_index``), ``logits.float()`` (an f32 ``[tokens, vocab]`` copy), then
cross_entropy, summed and divided by ``num_items_in_batch`` when that is given
(gradient accumulation), else averaged over counted tokens.

- ``causal_lm_loss`` has that signature and runs xpuruntime's cross_entropy on the
  logits in their own dtype: no f32 copy. It becomes the instance's ``loss_function``.
- ``fused_forward`` wraps a causal LM's forward: with labels it captures the hidden
  states at the LM head (which then returns an empty placeholder instead of logits)
  and computes the loss with ``fused_linear_cross_entropy``: no logits at all; the
  output's ``logits`` is None (pass no labels to get logits).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .. import torch as xt

_CAPTURE = "_xpuruntime_capture"


def _shifted(labels, shift_labels, ignore_index: int):
    if shift_labels is None:
        shift_labels = F.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    return shift_labels.reshape(-1)


def _per_item(loss, num_items_in_batch):
    if num_items_in_batch is None:
        return loss
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(loss.device)
    return loss / num_items_in_batch


def causal_lm_loss(logits, labels, vocab_size: int, num_items_in_batch=None,
                   ignore_index: int = -100, shift_labels=None, **kwargs):
    """Hugging Face's ``ForCausalLMLoss`` on xpuruntime's cross_entropy.

    Args:
      logits: ``[B, S, V]`` float32, float16 or bfloat16 (read in its dtype, never upcast).
      labels: ``[B, S]`` integer, shifted here (ignored when ``shift_labels`` is given).
      vocab_size: V.
      num_items_in_batch: divide the summed loss by it (else: mean over counted tokens).
      ignore_index: label of tokens that count for nothing.
      shift_labels: ``[B, S]`` labels already shifted.

    Returns:
      f32 scalar.
    """
    target = _shifted(labels, shift_labels, ignore_index).to(logits.device)
    loss = xt.cross_entropy(logits.reshape(-1, vocab_size), target, ignore_index=ignore_index,
                            reduction="mean" if num_items_in_batch is None else "sum")
    return _per_item(loss, num_items_in_batch)


def lm_head_forward(module) -> Callable:
    """forward(x) of the LM head: its own, or, while a fused forward is capturing, hand
    ``x`` (the hidden states) to it and return an empty ``[..., 0]`` placeholder."""
    original = type(module).forward

    def forward(self, x):
        box = self.__dict__.get(_CAPTURE)
        if box is None:
            return original(self, x)
        box.append(x)
        return x.new_empty(x.shape[:-1] + (0,))

    return forward


def _with_loss(out, loss):
    """The model's output with ``loss`` and without the placeholder logits."""
    if isinstance(out, tuple):  # return_dict=False: (logits, ...) -> (loss, ...)
        return (loss,) + tuple(out[1:])
    fields = {f.name: getattr(out, f.name) for f in dataclasses.fields(out)}
    fields.update(loss=loss, logits=None)
    return type(out)(**fields)


def fused_forward(model, lm_head) -> Callable:
    """The instance forward of a causal LM whose loss runs ``fused_linear_cross_entropy``
    on the LM head's input; calls without labels run the original forward unchanged."""
    original = type(model).forward
    positional = [p.name for p in list(inspect.signature(original).parameters.values())[1:]
                  if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]

    def forward(self, *args, **kwargs):
        if len(args) > len(positional):
            return original(self, *args, **kwargs)
        kwargs.update(zip(positional, args))
        labels, shift_labels = kwargs.pop("labels", None), kwargs.pop("shift_labels", None)
        if labels is None and shift_labels is None:
            return original(self, **kwargs)
        num_items = kwargs.pop("num_items_in_batch", None)
        ignore_index = kwargs.pop("ignore_index", -100)
        box: list = []
        lm_head.__dict__[_CAPTURE] = box
        try:
            out = original(self, **kwargs)
        finally:
            lm_head.__dict__.pop(_CAPTURE, None)
        if len(box) != 1:
            raise RuntimeError(f"xpuruntime.interop.transformers: {type(self).__name__}.forward "
                               f"called its LM head {len(box)} times; the fused loss needs one")
        loss = fused_loss(box[0], lm_head.weight, lm_head.bias, labels, shift_labels, num_items,
                          ignore_index)
        return _with_loss(out, loss)

    return forward


def fused_loss(hidden, weight, bias: Optional[torch.Tensor], labels, shift_labels,
               num_items_in_batch, ignore_index: int):
    """``ForCausalLMLoss(lm_head(hidden), labels, ...)`` without the logits: hidden
    ``[B, S, H]`` in the LM head's dtype (autocast off: the chunks run in that dtype)."""
    target = _shifted(labels, shift_labels, ignore_index).to(hidden.device)
    with torch.autocast(hidden.device.type, enabled=False):
        loss = xt.fused_linear_cross_entropy(
            hidden.reshape(-1, hidden.shape[-1]).to(weight.dtype), weight, target, bias=bias,
            ignore_index=ignore_index,
            reduction="mean" if num_items_in_batch is None else "sum")
    return _per_item(loss, num_items_in_batch)
