"""Replacement forwards for norm and MLP modules: each reads the module's own
attributes (``weight``, ``variance_epsilon`` / ``eps``, ``gate_proj`` ...), as Hugging
Face's kernel-hub layers do, and calls an xpuruntime torch op. A call the op does
not take (x and weight of different dtypes or devices) runs the module's original
forward instead, so a patched model computes what it did, never fails where it ran.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .. import torch as xt
from ..torch._common import dtypes_fit


def _fits(op: str, x: torch.Tensor, *params) -> bool:
    """Whether ``op`` takes x and these parameters: all given, on x's device, of dtypes
    its dtype rules take (the core's: one float dtype)."""
    return (all(p is not None and p.device == x.device for p in params)
            and dtypes_fit(op, x, *params))


def rms_norm_forward(module, offset: bool) -> Callable:
    """forward(x) of an RMSNorm module: ``rms_norm(x, weight)`` or, for Gemma's
    ``x_hat * (1 + weight)``, ``rms_norm(x, 1 + weight)`` (1 + weight rounded to x's dtype)."""
    eps_attr = "variance_epsilon" if hasattr(module, "variance_epsilon") else "eps"
    original = type(module).forward

    def forward(self, hidden_states):
        weight = self.weight
        if not _fits("rms_norm", hidden_states, weight):
            return original(self, hidden_states)
        return xt.rms_norm(hidden_states, 1.0 + weight if offset else weight,
                           getattr(self, eps_attr))

    return forward


def layer_norm_forward(module) -> Callable:
    """forward(x) of a ``torch.nn.LayerNorm`` over the last axis with weight and bias."""
    original = type(module).forward

    def forward(self, x):
        if not _fits("layer_norm", x, self.weight, self.bias):
            return original(self, x)
        return xt.layer_norm(x, self.weight, self.bias, self.eps)

    return forward


def patchable_layer_norm(module) -> bool:
    return (type(module).forward is torch.nn.LayerNorm.forward
            and len(module.normalized_shape) == 1 and module.weight is not None
            and module.bias is not None)


@functools.lru_cache(maxsize=None)
def _probe() -> torch.Tensor:
    return torch.linspace(-8.0, 8.0, 161, dtype=torch.float64)


def _gelu_tanh(g: torch.Tensor) -> torch.Tensor:
    return 0.5 * g * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (g + 0.044715 * g ** 3)))


def glu_of(act_fn) -> Optional[Callable]:
    """The xpuruntime GLU an MLP's ``act_fn`` makes (swiglu for SiLU, geglu for the tanh
    GELU), recognised by its values on a float64 probe rather than by class name (the
    classes differ between transformers versions); None for any other activation."""
    x = _probe()
    try:
        with torch.no_grad():
            y = act_fn(x)
    except Exception:  # an activation that does not take float64 CPU tensors: not ours
        return None
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        return None
    for reference, glu in ((F.silu, xt.swiglu), (_gelu_tanh, xt.geglu)):
        if torch.allclose(y, reference(x), rtol=1e-9, atol=1e-12):
            return glu
    return None


def gated_mlp_forward(glu: Callable) -> Callable:
    """forward(x) of a ``down_proj(act(gate_proj(x)) * up_proj(x))`` MLP with the GLU fused."""

    def forward(self, x):
        return self.down_proj(glu(self.gate_proj(x), self.up_proj(x)))

    return forward


def patchable_mlp(module) -> bool:
    return all(isinstance(getattr(module, name, None), torch.nn.Linear)
               for name in ("gate_proj", "up_proj", "down_proj"))
