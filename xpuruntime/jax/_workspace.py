"""Scratch for one FFI call, as an extra uint8 result: XLA allocates it with the
program's buffers, so the CUDA handlers neither allocate nor synchronize and stay
command-buffer compatible (XLA's in-handler ScratchAllocator is CUDA-only in FFI
API 0.3 and frees its memory when the handler returns, which a captured CUDA graph
would still use).

Under ``jax.export`` with symbolic dimensions the size must be known when the
program is traced. The specs' workspaces grow with the row count only up to a cap
(one partial sum per row group), so the size at the largest row count a tensor can
have is an upper bound for every row count: it is taken when it has stopped growing.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .. import _spec
from .._native import InvalidArgumentError

# No tensor has more elements than this (2^50: a petabyte of bf16); the bound holds
# for every shape below it.
_MAX_ELEMENTS = 2 ** 50


def _is_static(d) -> bool:
    return isinstance(d, int)


def _substitute(shapes: Sequence[Sequence[Any] | None], values: Mapping[str, int]):
    return [None if s is None else [d if _is_static(d) else values[str(d)] for d in s]
            for s in shapes]


def workspace_bytes(spec: _spec.OpSpec, shapes: Sequence[Sequence[Any] | None],
                    attrs: Mapping[str, Any]) -> int:
    """Scratch bytes of a call with these input shapes (``None``: absent). Dims may be
    symbolic: then an upper bound over every value of them, or ``InvalidArgumentError``
    when the spec's workspace keeps growing with them (never a wrong size)."""
    if not spec.has_workspace:
        return 0
    symbols = list(dict.fromkeys(str(d) for s in shapes if s is not None for d in s
                                 if not _is_static(d)))
    if not symbols:
        return _spec.workspace_bytes(spec, shapes, attrs)
    largest = max((s for s in shapes if s is not None), key=len)
    static = math.prod(d for d in largest if _is_static(d) and d > 0)
    big = max(2, _MAX_ELEMENTS // max(1, static))
    # Every row count up to `big` times the static ones: the first symbol takes `big`,
    # the others 1 (the workspaces read the leading axes only through their product).
    at = lambda v: _spec.workspace_bytes(  # noqa: E731
        spec, _substitute(shapes, {sym: (v if k == 0 else 1) for k, sym in enumerate(symbols)}), attrs)
    bound = at(big)
    if at(big // 2) != bound:
        raise InvalidArgumentError(
            f"{spec.op}: the {spec.direction} workspace grows with the symbolic dimension(s) "
            f"{', '.join(symbols)}; export with them concrete")
    return bound
