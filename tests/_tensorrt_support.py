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


def run_child(code: str, stdin: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs Python ``code`` in a child process (``-P``: the installed package)."""
    return subprocess.run([sys.executable, "-P", "-c", code], input=stdin, capture_output=True,
                          text=True, timeout=timeout)


def run_program(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs the C++ test program on the library with extra ``args``."""
    return subprocess.run([program_path(), "--library", library(), *args], capture_output=True,
                          text=True, timeout=timeout)
