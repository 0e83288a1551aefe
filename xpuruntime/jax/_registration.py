"""Registers xpuruntime's XLA FFI handlers with JAX, once, at import."""

from __future__ import annotations

import jax
import jaxlib

from .._native import core


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split(".")[:3] if p.isdigit())


def _check_jaxlib() -> None:
    # A handler built against newer FFI headers than the running jaxlib fails at
    # call time with an opaque error; fail at import with a clear one instead.
    if core.xla_ffi_api_version is None:
        raise ImportError(
            "xpuruntime was built without XLA FFI headers (jax was not importable at build "
            "time): reinstall it with build isolation (`pip install xpuruntime[jax]`, whose build "
            "takes the headers from its pinned jaxlib) or, without isolation, with jax installed"
        )
    built = core.built_jaxlib_version
    running = jaxlib.version.__version__
    if built and _version_tuple(running) < _version_tuple(built):
        raise ImportError(
            f"xpuruntime's JAX targets were built against jaxlib {built} "
            f"(XLA FFI API {core.xla_ffi_api_version}) but jaxlib {running} is running; "
            f"use jaxlib >= {built} or rebuild xpuruntime against this jaxlib"
        )


_check_jaxlib()
_TARGETS = core.ffi_targets()
for _name, _platforms in _TARGETS.items():
    for _platform, _capsule in _platforms.items():
        jax.ffi.register_ffi_target(_name, _capsule, platform=_platform)


def target_names() -> list[str]:
    """Names of the XLA custom-call targets xpuruntime registers."""
    return sorted(_TARGETS)


def export_disabled_checks() -> list:
    """``disabled_checks`` for ``jax.export.export`` that allow xpuruntime's targets.

    xpuruntime keeps each target's name, operands and attributes stable within a
    major version, so programs exported with these targets stay loadable by
    processes that import the same major version of xpuruntime.
    """
    from jax import export

    return [export.DisabledSafetyCheck.custom_call(name) for name in target_names()]
