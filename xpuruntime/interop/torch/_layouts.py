"""Which layouts a registered op passes to the core as they are, and which it
copies first (contiguous), by the role of each operand in the op's spec.

The core reads strides, but not every stride pattern: a ``[..., N]`` operand must
be walkable as rows (its last axis contiguous, its leading axes collapsing to one
row stride that does not overlap rows), unless its spec marks it ``strided`` (any
strides of the leading axes, last axis contiguous: rope's x and dy, so Hugging
Face's ``q.transpose(1, 2)`` reaches the kernel without a copy). Parameters must
be contiguous ``[N]`` (a stride-0, expanded weight is copied), and labels, row
statistics and loss gradients dense. Anything else is copied here, never refused.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..._native import core
from ..._spec import InputSpec


def walkable_as_rows(t: torch.Tensor) -> bool:
    """True when the core can walk ``t`` as rows of its last axis without a copy (its
    own rule, ``as_rows``, after folding leading axes past 8)."""
    if t.dim() == 0:
        return False
    return core.walkable_as_rows(list(t.shape), list(t.stride()))


def _last_axis_contiguous(t: torch.Tensor) -> bool:
    return t.numel() == 0 or t.shape[-1] <= 1 or t.stride(-1) == 1


def for_kernel(t: Optional[torch.Tensor], spec: InputSpec) -> Optional[torch.Tensor]:
    """``t`` itself when the core reads its layout, else a contiguous copy."""
    if t is None or t.dim() == 0:
        return t
    if spec.strided:
        ok = _last_axis_contiguous(t)
    elif spec.role in ("rows", "table"):
        # A contiguous tensor is its own contiguous copy: the core's rule is asked only
        # about the others (it costs a native call a tensor).
        ok = t.is_contiguous() or walkable_as_rows(t)
    else:  # parameter, labels, row_stat, scalar: read as flat dense arrays
        ok = t.is_contiguous()
    return t if ok else t.contiguous()
