"""Rotary embeddings for one attention module instance.

Hugging Face's attention calls its modeling module's global ``apply_rotary_pos_emb(q, k,
cos, sin)`` with q, k ``[B, H, S, D]`` and cos/sin ``[B, S, D]`` (the frequencies
duplicated over the two halves of D). xpuruntime's rope takes ``x [B, S, H, D]`` and
``cos/sin [S, D/2]``: x is ``q.transpose(1, 2)``, a strided view the kernel reads as it
is (no copy, forward or backward), and the tables are the first half of D of batch
row 0, also read through their strides.

Only the patched instance changes: its forward becomes a copy of its class's forward
(and of the decorators' wrappers around it) whose globals map
``apply_rotary_pos_emb`` to the xpuruntime version; the module's global, the class
and every other model stay as they were.
"""

from __future__ import annotations

import types
from typing import Callable, Optional

import torch

from .. import torch as xt
from ..torch._common import dtypes_fit

NAME = "apply_rotary_pos_emb"


def _tables_fit(q, k, cos, sin, seq_axis: int) -> bool:
    """True when xpuruntime's rope computes what HF's does for these arguments."""
    if q.dim() != 4 or k.dim() != 4 or cos.dim() != 3 or cos.shape != sin.shape:
        return False
    rotary = cos.shape[-1]
    if rotary % 2 or rotary > q.shape[-1] or rotary > k.shape[-1]:
        return False
    # One table for the whole batch: cos [1, S, D] or expanded over B. Tables that differ
    # per example (position_ids [B, S]) take the original path: telling whether they
    # differ would need a device sync.
    if cos.shape[0] != 1 and (cos.stride(0) != 0 or sin.stride(0) != 0):
        return False
    if q.shape[seq_axis] != cos.shape[1] or k.shape[seq_axis] != cos.shape[1]:
        return False
    # The dtypes rope's rules take (the core's), cos and sin alike (its kernel reads both as one).
    return (cos.dtype == sin.dtype and dtypes_fit("rope", q, cos, sin) and dtypes_fit("rope", k, cos, sin)
            and q.device == k.device == cos.device == sin.device)


def _rotate(t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, head_major: bool):
    x = t.transpose(1, 2) if head_major else t  # [B, S, H, D], strided: no copy
    rotary = 2 * cos.shape[-1]
    if rotary == x.shape[-1]:
        y = xt.rope(x, cos, sin)
    else:  # partial rotary (GPT-NeoX): the rest of D passes through
        y = torch.cat([xt.rope(x[..., :rotary], cos, sin), x[..., rotary:]], dim=-1)
    return y.transpose(1, 2) if head_major else y


def rope_function(original: Callable) -> Callable:
    """``apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1)`` on xpuruntime's rope,
    calling ``original`` for whatever it does not cover (other unsqueeze_dim values,
    per-example tables, mixed dtypes, the old ``position_ids`` argument)."""

    def apply_rotary_pos_emb(q, k, cos, sin, *args, **kwargs):
        unsqueeze_dim = kwargs.get("unsqueeze_dim", 1)
        plain = not args and set(kwargs) <= {"unsqueeze_dim", "position_ids"} \
            and kwargs.get("position_ids") is None and unsqueeze_dim in (1, 2)
        if not plain or not _tables_fit(q, k, cos, sin, seq_axis=2 if unsqueeze_dim == 1 else 1):
            return original(q, k, cos, sin, *args, **kwargs)
        half = cos.shape[-1] // 2
        c, s = cos[0, :, :half], sin[0, :, :half]  # [S, D/2] views
        head_major = unsqueeze_dim == 1
        return _rotate(q, c, s, head_major), _rotate(k, c, s, head_major)

    apply_rotary_pos_emb.__wrapped__ = original
    return apply_rotary_pos_emb


def _cell_contents(cell):
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def with_global(fn: Callable, name: str, value) -> Optional[Callable]:
    """A copy of ``fn`` whose global ``name`` is ``value``, through the chain of
    ``functools.wraps`` wrappers around it (each rebuilt to call the next copy);
    None when no function of the chain reads that global."""
    inner = getattr(fn, "__wrapped__", None)
    closure = fn.__closure__
    new_inner = None
    if inner is not None and closure:
        new_inner = with_global(inner, name, value)
        if new_inner is not None:
            closure = tuple(types.CellType(new_inner) if _cell_contents(c) is inner else c
                            for c in closure)
    reads = name in fn.__code__.co_names and name in fn.__globals__
    if not reads and new_inner is None:
        return None
    g = fn.__globals__
    if reads:
        g = dict(g)
        g[name] = value
    new = types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, closure)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__dict__.update(fn.__dict__)
    new.__qualname__, new.__doc__ = fn.__qualname__, fn.__doc__
    if new_inner is not None:
        new.__wrapped__ = new_inner
    return new


def attention_forward(module, original_rope: Callable) -> Optional[Callable]:
    """The instance forward of an attention module with xpuruntime's rope, or None
    when its class's forward does not call ``apply_rotary_pos_emb``."""
    return with_global(type(module).forward, NAME, rope_function(original_rope))
