"""What every part of the torch frontend shares: the policy at trace time, the
CUDA stream of a call and the DLPack hand-off."""

from __future__ import annotations

import functools
from typing import Optional

import torch

from ... import _spec
from ..._policy import requested_policy

# torch.compile reads the policy once, when it traces (like JAX at trace time).
_traced_policy = torch.compiler.assume_constant_result(requested_policy)


def policy_for_call(policy: Optional[str]) -> str:
    """The policy string a registered op receives: ``policy=`` or the current one
    (checked by the core, which names the op)."""
    return policy if policy is not None else _traced_policy()


def _normalized(op: str, items: tuple, policy) -> tuple:
    return tuple(_spec.normalize_attrs(_spec.get(op), {**dict(items), "policy": policy}).items())


@functools.lru_cache(maxsize=1024)
def _normalized_cached(op: str, key: tuple, policy_key: tuple) -> tuple:
    return _normalized(op, tuple((name, value) for name, _, value in key), policy_key[1])


@torch.compiler.assume_constant_result
def _parsed(op: str, items: tuple, policy) -> tuple:
    # Memoized by value and type (1, 1.0 and True are one dict key, not one attribute);
    # values that cannot be hashed (a list: a wrong type the rule names) are parsed afresh.
    key = tuple((name, type(value), value) for name, value in items)
    policy_key = (type(policy), policy)
    try:
        hash((key, policy_key))
    except TypeError:
        return _normalized(op, items, policy)
    return _normalized_cached(op, key, policy_key)


def attributes(op: str, items: tuple, policy) -> dict:
    """The forward attributes of ``op`` (``items``: the ``(name, value)`` pairs given)
    and ``policy`` after the core's one attribute rule (``_spec.normalize_attrs``):
    every attribute by name as its Python type, defaults filled in, and ``"policy"``.
    A wrong type or value raises ``InvalidArgumentError`` naming the op and the
    attribute. torch.compile evaluates it once, when it traces (the values are constants)."""
    return dict(_parsed(op, items, policy))


@torch.compiler.assume_constant_result
def _dtype_error(op: str, dtypes: tuple):
    return _spec.dtype_error(op, _spec.FORWARD, dtypes)


def dtypes_fit(op: str, *tensors: Optional[torch.Tensor]) -> bool:
    """Whether these first inputs of ``op`` (None: absent) have dtypes its forward takes,
    by the core's dtype rules (a constant to torch.compile)."""
    return _dtype_error(op, tuple(None if t is None else str(t.dtype).removeprefix("torch.")
                                  for t in tensors)) is None


# The current stream's handle without building a torch.cuda.Stream object on every eager
# call (the raw getter that Inductor's generated code calls); the public API where a torch
# build lacks it.
_raw_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def stream_of(t: torch.Tensor) -> int:
    """torch's current CUDA stream on ``t``'s device (0 on the CPU): kernels run there."""
    if not t.is_cuda:
        return 0
    if _raw_stream is not None:
        return _raw_stream(t.device.index)
    return torch.cuda.current_stream(t.device).cuda_stream


def dlpack(t: Optional[torch.Tensor]):
    """A DLPack capsule of ``t`` (zero-copy; None stays None). ``to_dlpack`` rather than
    ``__dlpack__``: the kernel runs on torch's current stream, so the stream handshake
    of ``__dlpack__`` (an event per tensor) is not needed. The autograd graph is
    handled by torch.library, so the detached view is safe (taken only where the tensor
    requires grad: a detach costs a view a call)."""
    if t is None:
        return None
    return torch.utils.dlpack.to_dlpack(t.detach() if t.requires_grad else t)
