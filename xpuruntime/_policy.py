"""Kernel policy selection: per call, per scope, globally, or by environment."""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Iterator

from ._native import InvalidArgumentError, InvalidArgumentTypeError

POLICIES = ("fast", "deterministic", "reference")

_global_policy: str | None = None
_scoped_policy: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "xpuruntime_policy", default=None
)


def _check(name: str) -> str:
    if not isinstance(name, str):
        raise InvalidArgumentTypeError(
            f"policy must be a string, one of {', '.join(POLICIES)}; got {type(name).__name__} {name!r}")
    if name not in POLICIES:
        # The core's wording (parse_attrs), so every frontend reads the same.
        raise InvalidArgumentError(f"unknown policy {name!r}; expected fast, deterministic or reference")
    return name


def set_policy(name: str | None) -> None:
    """Set the process-wide default policy (``None`` restores the environment's or ``fast``)."""
    global _global_policy
    _global_policy = None if name is None else _check(name)


def requested_policy() -> str:
    """The policy in effect as requested: scope, then ``set_policy``, then
    ``XPURUNTIME_POLICY`` (unchecked), then ``fast``. Frontends pass it to the core,
    whose attribute rule refuses an unknown one naming the op, so a bad environment
    reads the same in every frontend."""
    scoped = _scoped_policy.get()
    if scoped is not None:
        return scoped
    if _global_policy is not None:
        return _global_policy
    return os.environ.get("XPURUNTIME_POLICY") or "fast"


def get_policy() -> str:
    """The policy in effect: scope, then ``set_policy``, then ``XPURUNTIME_POLICY``, then ``fast``."""
    return _check(requested_policy())


@contextlib.contextmanager
def policy(name: str) -> Iterator[None]:
    """Scope a policy: ``with xpuruntime.policy("deterministic"): ...`` (thread- and task-local)."""
    token = _scoped_policy.set(_check(name))
    try:
        yield
    finally:
        _scoped_policy.reset(token)
