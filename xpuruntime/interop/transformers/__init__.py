"""One call to run a loaded Hugging Face ``transformers`` model on xpuruntime's kernels.

``patch(model)`` swaps the forwards of the matching module *instances* of ``model``
(RMSNorm, LayerNorm, gated MLP, rotary embedding in attention, causal-LM loss) for
xpuruntime's torch ops and returns the model; ``unpatch(model)`` restores them. Classes
and module globals are never changed: a second model of the same class in the same
process runs as before. Modules are found by their classes (``_families``) and
structure, not by checkpoint names. See docs/transformers.md.

Modules: ``_families`` (the classes per model family), ``_modules`` (norm and MLP
forwards), ``_rope`` (rotary embedding), ``_loss`` (causal-LM loss, fused LM head).
"""

from __future__ import annotations

import types
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from ..._extras import require

require("transformers", "transformers")

import warnings  # noqa: E402

import torch  # noqa: E402
from transformers import PreTrainedModel  # noqa: E402

from . import _loss, _modules, _rope  # noqa: E402
from ._families import FAMILIES, family_of, supported  # noqa: E402

_RECORD = "_xpuruntime_patch"
OPTIONS = ("rms_norm", "layer_norm", "mlp", "rope", "cross_entropy", "fused_linear_cross_entropy")


@dataclass
class _Record:
    options: dict
    counts: Counter = field(default_factory=Counter)
    undo: list = field(default_factory=list)


def _set_forward(record: _Record, what: str, module, forward: Callable) -> None:
    module.forward = types.MethodType(forward, module)
    record.counts[what] += 1
    record.undo.append(lambda: module.__dict__.pop("forward", None))


def _own_forward(module) -> bool:
    """The module runs its class's forward (no other patcher or hook replaced it)."""
    return "forward" not in module.__dict__


def _patch_module(record: _Record, module, opts: dict) -> None:
    if not _own_forward(module):
        return
    norm = family_of(module, "rms_norm")
    if norm is not None and opts["rms_norm"]:
        _set_forward(record, "rms_norm", module, _modules.rms_norm_forward(module, norm.offset_norm))
    elif isinstance(module, torch.nn.LayerNorm) and opts["layer_norm"] \
            and _modules.patchable_layer_norm(module):
        _set_forward(record, "layer_norm", module, _modules.layer_norm_forward(module))
    elif opts["mlp"] and family_of(module, "mlp") is not None and _modules.patchable_mlp(module):
        glu = _modules.glu_of(getattr(module, "act_fn", None))
        if glu is not None:
            _set_forward(record, "mlp", module, _modules.gated_mlp_forward(glu))
    elif opts["rope"] and (attention := family_of(module, "attention")) is not None:
        original = attention.rope_function()
        forward = None if original is None else _rope.attention_forward(module, original)
        if forward is not None:
            _set_forward(record, "rope", module, forward)


def _patch_loss(record: _Record, model, opts: dict) -> None:
    """The loss of one model with an LM head (``get_output_embeddings()``)."""
    from transformers.loss.loss_utils import ForCausalLMLoss
    head = model.get_output_embeddings()
    fused = opts["fused_linear_cross_entropy"]
    if fused and family_of(model, "causal_lm") is not None:
        if getattr(model.config, "final_logit_softcapping", None) is not None:
            raise ValueError(
                "xpuruntime.interop.transformers.patch: fused_linear_cross_entropy=True does "
                f"not fit {type(model).__name__}: its logits are soft-capped "
                "(config.final_logit_softcapping), which the fused loss does not apply; "
                "use cross_entropy=True without fused_linear_cross_entropy")
        if isinstance(head, torch.nn.Linear) and _own_forward(head) and _own_forward(model):
            _set_forward(record, "lm_head", head, _loss.lm_head_forward(head))
            _set_forward(record, "fused_linear_cross_entropy", model,
                         _loss.fused_forward(model, head))
            return
    if fused:
        warnings.warn(f"xpuruntime.interop.transformers.patch: fused_linear_cross_entropy does "
                      f"not fit {type(model).__name__} (supported: the causal LMs of "
                      f"{', '.join(f.name for f in FAMILIES)}); its loss uses cross_entropy",
                      stacklevel=3)
    if (opts["cross_entropy"] or fused) and "_loss_function" not in model.__dict__ \
            and getattr(model, "loss_function", None) is ForCausalLMLoss:
        model.loss_function = _loss.causal_lm_loss
        record.counts["cross_entropy"] += 1
        record.undo.append(lambda: model.__dict__.pop("_loss_function", None))


def patch(model, *, rms_norm: bool = True, layer_norm: bool = True, mlp: bool = True,
          rope: bool = True, cross_entropy: bool = True,
          fused_linear_cross_entropy: bool = False):
    """Runs ``model``'s matching modules on xpuruntime's torch ops; returns ``model``.

    Args:
      model: a loaded ``transformers`` model (any ``torch.nn.Module`` containing one).
      rms_norm: RMSNorm modules -> ``rms_norm`` (Gemma's ``1 + weight`` included).
      layer_norm: ``torch.nn.LayerNorm`` (last axis, with weight and bias) -> ``layer_norm``.
      mlp: gated MLPs -> ``swiglu`` (SiLU) or ``geglu`` (tanh GELU) between the projections.
      rope: ``apply_rotary_pos_emb`` in attention -> ``rope`` on the head-major q and k
        as they are (no copy); tables that differ per example take the original path.
      cross_entropy: the causal-LM loss on the logits in their own dtype (no f32 copy).
      fused_linear_cross_entropy: the causal-LM loss from the LM head's input, chunked:
        no logits exist (``outputs.logits`` is None when labels are given). Takes the
        place of ``cross_entropy``.

    Returns:
      ``model``, patched in place. Patching again with the same options does nothing;
      with other options it re-patches. ``patched(model)`` tells what was replaced.

    Raises:
      ValueError: nothing in ``model`` is supported (the message lists what is), or the
        fused loss was asked of a model whose logits are soft-capped.
    """
    opts = dict(rms_norm=rms_norm, layer_norm=layer_norm, mlp=mlp, rope=rope,
                cross_entropy=cross_entropy, fused_linear_cross_entropy=fused_linear_cross_entropy)
    record = model.__dict__.get(_RECORD)
    if record is not None:
        if record.options == opts:
            return model
        unpatch(model)
    record = _Record(opts)
    try:
        for module in model.modules():
            _patch_module(record, module, opts)
        for module in model.modules():
            if isinstance(module, PreTrainedModel) and module.get_output_embeddings() is not None:
                _patch_loss(record, module, opts)
    except Exception:
        _undo(record)
        raise
    if not record.counts:
        raise ValueError(f"xpuruntime.interop.transformers.patch: nothing to patch in "
                         f"{type(model).__name__} with these options. Supported: {supported()}")
    model.__dict__[_RECORD] = record
    return model


def _undo(record: _Record) -> None:
    for undo in reversed(record.undo):
        undo()


def unpatch(model):
    """Restores every module ``patch`` replaced in ``model``; returns ``model``.
    Does nothing on a model that is not patched."""
    record = model.__dict__.pop(_RECORD, None)
    if record is not None:
        _undo(record)
    return model


def patched(model) -> dict:
    """What ``patch`` replaced in ``model``: ``{"rms_norm": 9, "mlp": 2, ...}`` (empty when
    not patched)."""
    record = model.__dict__.get(_RECORD)
    return {} if record is None else dict(record.counts)


__all__ = ["FAMILIES", "patch", "patched", "supported", "unpatch"]
