"""The public torch ops, with OPS.md signatures: each calls its registered
``torch.ops.xpuruntime.<op>`` (differentiable, torch.compile-able) with the
attributes in spec order and the policy resolved at trace time.

Layouts: every op takes any strides. rope reads x (and its incoming gradient)
through its strides; the other ops read ``[..., N]`` inputs as rows and copy an
input whose leading axes do not collapse to one row stride (a transposed or
permuted tensor, a gradient that arrives non-contiguous), and parameters that are
not contiguous (an expanded, stride-0 weight).
"""

from __future__ import annotations

from typing import Optional

import torch

from ... import _spec
from ._common import attributes, policy_for_call
from ._registration import call

Tensor = torch.Tensor


def _call(op: str, *tensors, policy: Optional[str], **attrs):
    """``torch.ops.xpuruntime.<op>`` on ``tensors`` with the attributes in spec order,
    after the core's one attribute rule (``attributes``), so that a bad value or type
    raises ``InvalidArgumentError`` naming the op and the attribute, as every frontend
    does, before torch's dispatcher sees it."""
    values = attributes(op, tuple(attrs.items()), policy_for_call(policy))
    return call(op, _spec.FORWARD, tensors, values, values["policy"])


def rms_norm(x: Tensor, weight: Tensor, eps: float = 1e-6, *, residual: Optional[Tensor] = None,
             policy: Optional[str] = None):
    """RMS normalization over the last axis (``torch.ops.xpuruntime.rms_norm``).

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16, on the CPU or a CUDA device. Any
        layout: one whose leading axes do not collapse to one row stride is copied.
      weight: ``[N]``, x's dtype and device (a non-contiguous one, e.g. expanded, is copied).
      eps: added to the mean square.
      residual: optional, x's shape: normalizes ``h = x + residual``.
      policy: ``"fast"``, ``"deterministic"`` or ``"reference"`` (default: current policy).

    Returns:
      ``y``, or ``(y, h)`` with ``residual``. Differentiable in x, weight and residual.
    """
    y, h = _call("rms_norm", x, weight, residual, policy=policy, eps=eps)
    return y if residual is None else (y, h)


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5, *,
               policy: Optional[str] = None) -> Tensor:
    """Layer normalization over the last axis (``torch.ops.xpuruntime.layer_norm``).

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16 (copied when not walkable as rows).
      weight, bias: ``[N]``, x's dtype and device (copied when not contiguous).
      eps: added to the (population) variance.
      policy: kernel policy (default: current policy).

    Returns:
      ``y``, x's shape and dtype. Differentiable in x, weight and bias.
    """
    return _call("layer_norm", x, weight, bias, policy=policy, eps=eps)[0]


def softmax(x: Tensor, *, scale: float = 1.0, policy: Optional[str] = None) -> Tensor:
    """Softmax over the last axis of ``scale * x`` (``torch.ops.xpuruntime.softmax``).

    Args:
      x: ``[..., N]`` float32, float16 or bfloat16 (copied when not walkable as rows).
      scale: multiplies x first.

    Returns:
      ``y``, x's shape and dtype. Differentiable in x.
    """
    return _call("softmax", x, policy=policy, scale=scale)


def swiglu(gate: Tensor, up: Tensor, *, policy: Optional[str] = None) -> Tensor:
    """``silu(gate) * up`` (``torch.ops.xpuruntime.swiglu``).

    Args:
      gate: ``[..., N]`` float32, float16 or bfloat16 (copied when not walkable as rows).
      up: gate's shape, dtype and device (likewise).

    Returns:
      ``y``, gate's shape and dtype. Differentiable in gate and up.
    """
    return _call("swiglu", gate, up, policy=policy)


def geglu(gate: Tensor, up: Tensor, *, policy: Optional[str] = None) -> Tensor:
    """``gelu_tanh(gate) * up`` (``torch.ops.xpuruntime.geglu``).

    Args:
      gate: ``[..., N]`` float32, float16 or bfloat16 (copied when not walkable as rows).
      up: gate's shape, dtype and device (likewise).

    Returns:
      ``y``, gate's shape and dtype. Differentiable in gate and up.
    """
    return _call("geglu", gate, up, policy=policy)


def rope(x: Tensor, cos: Tensor, sin: Tensor, *, interleaved: bool = False,
         policy: Optional[str] = None) -> Tensor:
    """Rotary position embedding (``torch.ops.xpuruntime.rope``).

    Args:
      x: ``[B, S, H, D]`` float32, float16 or bfloat16; D even. Any strides of B, S and
        H are read as they are (no copy): Hugging Face's head-major q ``[B, H, S, D]``
        is passed as ``q.transpose(1, 2)``. Only a D axis that is not contiguous is copied.
      cos, sin: ``[S, D/2]``, float32 or x's dtype; any stride over S (0: expanded).
      interleaved: False rotates halves (NeoX/Llama); True rotates pairs (GPT-J).

    Returns:
      ``y``, x's shape and dtype, dense ``[B, S, H, D]``. Differentiable in x only; the
      incoming gradient is read through its strides too.
    """
    return _call("rope", x, cos, sin, policy=policy, interleaved=interleaved)


def topk_softmax(logits: Tensor, k: int, *, renormalize: bool = True,
                 policy: Optional[str] = None) -> tuple[Tensor, Tensor]:
    """Mixture-of-experts routing (``torch.ops.xpuruntime.topk_softmax``): the ``k``
    largest logits of each row (descending, ties to the lower index) and their
    softmax probabilities, renormalized over the chosen ``k`` when ``renormalize``.

    Args:
      logits: ``[..., E]`` float32, float16 or bfloat16, E up to 4096 (copied when not
        walkable as rows).
      k: experts a row, ``1 <= k <= E``.
      renormalize: divide the chosen probabilities by their sum.

    Returns:
      ``(weights, indices)``: float32 ``[..., k]`` and int32 ``[..., k]``. Differentiable
      in logits through ``weights``.
    """
    return _call("topk_softmax", logits, policy=policy, k=k, renormalize=renormalize)


def cross_entropy(logits: Tensor, labels: Tensor, *, ignore_index: int = -100,
                  label_smoothing: float = 0.0, reduction: str = "mean",
                  policy: Optional[str] = None) -> Tensor:
    """Cross entropy (``torch.ops.xpuruntime.cross_entropy``), never materializing an f32 softmax.

    Args:
      logits: ``[T, V]`` float32, float16 or bfloat16 (copied when not walkable as rows).
      labels: ``[T]`` int32 or int64; ``ignore_index`` rows count for nothing.
      label_smoothing: in [0, 1].
      reduction: ``"mean"`` over counted rows, ``"sum"`` or ``"none"``.

    Returns:
      f32 scalar (mean, sum) or f32 ``[T]`` (none). Differentiable in logits.
    """
    return _call("cross_entropy", logits, labels, policy=policy, ignore_index=ignore_index,
                 label_smoothing=label_smoothing, reduction=reduction)[0]
