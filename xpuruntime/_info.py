"""Build and environment facts (`python -m xpuruntime info`)."""

from __future__ import annotations

import importlib.util
from collections import defaultdict

from ._native import core


def kernels() -> list[dict]:
    """Registered kernels grouped by (op, direction, device): dtypes and policies for each."""
    groups: dict[tuple, dict] = defaultdict(lambda: {"dtypes": set(), "policies": set()})
    for k in core.kernels():
        g = groups[(k["op"], k["direction"], k["device"])]
        g["dtypes"].add(k["dtype"])
        g["policies"].add(k["policy"])
    return [
        {"op": op, "direction": d, "device": dev, "dtypes": sorted(g["dtypes"]),
         "policies": sorted(g["policies"])}
        for (op, d, dev), g in sorted(groups.items())
    ]


def info() -> dict:
    """A dict describing the build, the devices and the importable frontends."""
    from .interop import onnxruntime as ort_interop
    from .interop import tensorrt as trt_interop

    return {
        "version": core.__version__,
        "cuda_built": bool(core.built_with_cuda),
        "cuda_architectures": core.cuda_architectures,
        "cuda_devices": core.cuda_device_count(),
        "xla_ffi_api": core.xla_ffi_api_version,
        "onnxruntime_library": ort_interop.library_path(missing_ok=True),
        "tensorrt_library": trt_interop.library_path(missing_ok=True),
        "frontends": {
            name: importlib.util.find_spec(name) is not None
            for name in ("jax", "torch", "onnxruntime", "tensorrt", "tensorrt_lean")
        },
        "kernels": kernels(),
        "devices": _devices(),
        "memory": _memory(),
    }


def _devices() -> list[dict]:
    from ._device import devices
    out = []
    for d in devices():
        try:
            out.append(d.properties())
        except Exception as exc:  # a device that cannot be queried is reported, not fatal
            out.append({"device": str(d), "error": str(exc)})
    return out


def _memory() -> dict:
    """Pool design constants and, for pools already in use, their statistics."""
    from . import memory
    from ._device import devices
    facts = {
        "pool": "caching, stream-ordered (docs/runtime.md)",
        "rounding_bytes": 512,
        "small_request_max_bytes": 1 << 20,
        "small_segment_bytes": 2 << 20,
        "large_segment_bytes": 20 << 20,
        "own_segment_above_bytes": 10 << 20,
        "pinned_host_memory": bool(core.built_with_cuda) and core.cuda_device_count() > 0,
        "pools": {},
    }
    for d in devices():
        try:
            facts["pools"][str(d)] = memory.stats(d)
        except Exception as exc:
            facts["pools"][str(d)] = {"error": str(exc)}
    return facts
