"""Liger's autograd functions, where liger-kernel is installed (a peer of the benchmarks)."""

from __future__ import annotations


def liger_apply(module: str, cls: str):
    """``liger_kernel.ops.<module>.<cls>.apply``, or None where Liger is not installed."""
    try:
        mod = __import__(f"liger_kernel.ops.{module}", fromlist=[cls])
        return getattr(mod, cls).apply
    except (ImportError, AttributeError):
        return None
