"""Framework-free rules of ``fused_linear_cross_entropy`` shared by the torch and JAX
frontends: the default chunk size and the argument checks (shapes as tuples, dtypes
as names). Its own operands (hidden, weight, bias) have rules of their own; the
logits and labels it hands the cross_entropy kernels take the core's dtype rules."""

from __future__ import annotations

from typing import Optional, Sequence

from . import _spec
from ._native import InvalidArgumentError, InvalidArgumentTypeError

OP = "fused_linear_cross_entropy"
REDUCTIONS = next(a.choices for a in _spec.get("cross_entropy").attrs if a.name == "reduction")


def default_chunk_size(tokens: int, hidden: int, vocab: int) -> int:
    """Tokens a chunk: a power of two that keeps a chunk's logits about the size of
    ``hidden`` (Liger's rule), so memory does not grow with the vocabulary."""
    chunks = max(1, -(-vocab // max(hidden, 1)))
    size = max(1, -(-tokens // chunks))
    return 1 << (size - 1).bit_length()


def check_args(hidden: Sequence[int], weight: Sequence[int], labels: Sequence[int],
               bias: Optional[Sequence[int]], reduction: str, label_smoothing: float,
               chunk_size) -> None:
    """InvalidArgumentError (a ValueError) naming the argument when the shapes (tuples)
    or options do not fit:
    hidden ``[..., H]``, weight ``[V, H]``, labels hidden's leading shape, bias ``[V]``."""
    hidden, weight, labels = tuple(hidden), tuple(weight), tuple(labels)
    if reduction not in REDUCTIONS:
        raise InvalidArgumentError(f"{OP}: unknown reduction {reduction!r}; expected {', '.join(REDUCTIONS)}")
    if len(hidden) < 1 or len(weight) != 2 or weight[1] != hidden[-1]:
        raise InvalidArgumentError(f"{OP}: 'weight' must be [V, H] with H = the last dim of 'hidden' "
                         f"{hidden}, got {weight}")
    if labels != hidden[:-1]:
        raise InvalidArgumentError(f"{OP}: 'labels' must have the leading shape of 'hidden' {hidden}, "
                         f"got {labels}")
    if bias is not None and tuple(bias) != (weight[0],):
        raise InvalidArgumentError(f"{OP}: 'bias' must be [{weight[0]}], got {tuple(bias)}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise InvalidArgumentError(f"{OP}: 'label_smoothing' must be in [0, 1], got {label_smoothing}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int)
                                   or chunk_size < 1):
        raise InvalidArgumentError(f"{OP}: 'chunk_size' must be a positive int, got {chunk_size!r}")


def check_dtypes(hidden: str, weight: str, labels: str, bias: Optional[str]) -> None:
    """InvalidArgumentTypeError (a TypeError) naming the argument unless hidden has a
    float dtype of the kernels (cross_entropy's logits), weight and bias hidden's, and
    labels an index dtype (cross_entropy's labels)."""
    floats, indices = _spec.rule_dtypes("float"), _spec.rule_dtypes("index")
    if hidden not in floats:
        raise InvalidArgumentTypeError(f"{OP}: 'hidden' must be {', '.join(floats)}, got {hidden}")
    for name, dtype in (("weight", weight), ("bias", bias)):
        if dtype is not None and dtype != hidden:
            raise InvalidArgumentTypeError(f"{OP}: '{name}' must be {hidden} (hidden's dtype), got {dtype}")
    if labels not in indices:
        raise InvalidArgumentTypeError(f"{OP}: 'labels' must be {' or '.join(indices)}, got {labels}")
