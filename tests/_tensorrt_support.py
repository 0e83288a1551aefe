"""Shared by the TensorRT tests: where the plugin library, its test program and a
TensorRT runtime are, and a child-process runner (a crash there fails one test,
not the session)."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

from xpuruntime.interop import tensorrt as xt

TEST_PROGRAM = "xpuruntime_trt_test"


def library() -> str:
    """The plugin library's path; skips when this build has none (no TensorRT headers)."""
    path = xt.library_path(missing_ok=True)
    if path is None:
        pytest.skip("xpuruntime was built without the TensorRT plugin library (no TensorRT headers "
                    "found, or no CUDA build; see docs/tensorrt.md)")
    return path


def require_tensorrt_module() -> str:
    """Name of the importable TensorRT module. With the library built, one must be
    importable: the registry tests are meant to run, not to skip."""
    for name in xt._MODULES:
        if importlib.util.find_spec(name) is not None:
            return name
    pytest.fail("the TensorRT plugin library is built but neither tensorrt nor tensorrt_lean is "
                "importable: pip install tensorrt-lean-cu13==11.1.0.106 (scripts/setup-dev does)")


def program_path() -> str:
    """The C++ test program installed next to the library."""
    path = pathlib.Path(library()).with_name(TEST_PROGRAM)
    if not path.exists():
        pytest.skip(f"{path} was not built (XPURUNTIME_TENSORRT_TEST_PROGRAM=OFF)")
    return str(path)


def lean_runtime_library() -> str | None:
    """libnvinfer_lean.so of the tensorrt-lean-cu13-libs wheel, if installed."""
    spec = importlib.util.find_spec("tensorrt_lean_libs")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(pathlib.Path(folder).glob("libnvinfer_lean.so*"))
        if found:
            return str(found[0])
    return None


# numpy dtypes of the PluginField types (FP8/INT4/FP4 and the rest carried as bytes).
FIELD_NUMPY = {"FLOAT32": "float32", "FLOAT64": "float64", "FLOAT16": "float16", "BF16": "float16",
               "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
               "DIMS": "int64", "UNKNOWN": "uint8", "FP8": "uint8", "INT4": "uint8", "FP4": "uint8"}


def plugin_field(trt, f: dict, keep: list):
    """A ``trt.PluginField`` from JSON: ``{"name", "type": "CHAR", "text"}``, ``{"name",
    "type", "values"}`` (float values as ``float.hex`` strings, sent exactly) or ``{"name",
    "type", "raw"}`` (bytes as hex, as many whole values of the type as they hold: the
    field's data as a corrupt engine would carry it). The data array goes to ``keep``: the
    field does not own it."""
    import numpy as np
    if "raw" in f:
        dtype = np.int8 if f["type"] == "CHAR" else FIELD_NUMPY[f["type"]]
        data = np.frombuffer(bytes.fromhex(f["raw"]), dtype=dtype).copy()
    elif f["type"] == "CHAR":
        data = np.frombuffer(f["text"].encode(), dtype=np.int8).copy()
    else:
        data = np.array([float.fromhex(v) if isinstance(v, str) else v for v in f["values"]],
                        dtype=FIELD_NUMPY[f["type"]])
    keep.append(data)
    return trt.PluginField(f["name"], data, getattr(trt.PluginFieldType, f["type"]))


def run_child(code: str, stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs Python ``code`` in a child process (``-P``: the installed package)."""
    return subprocess.run([sys.executable, "-P", "-c", code], input=stdin, capture_output=True,
                          text=True, timeout=timeout)


def run_program(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs the C++ test program on the library with extra ``args``."""
    return subprocess.run([program_path(), "--library", library(), *args], capture_output=True,
                          text=True, timeout=timeout)
