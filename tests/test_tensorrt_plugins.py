"""Every plugin's TensorRT methods, driven by the C++ test program
(tests/tensorrt_program/, installed as xpuruntime/lib/xpuruntime_trt_test).

Without a GPU (CI): the build-phase methods through the test's own IExprBuilder
(static and symbolic shapes), dtypes, accepted and refused format combinations,
configurePlugin / onShapeChange refusals naming the op and the input, workspace
sizes against the core's, getFieldsToSerialize -> createPlugin(kRUNTIME) round
trips, clone, attachToContext, and enqueue failing cleanly; once with the library
opened by dlopen, once loaded by the lean runtime's real plugin registry.

With a GPU (marker gpu; the H200): every plugin's enqueue on device buffers for
every dtype and policy against the core's own call of the op (bitwise under
deterministic and reference), through both loaders, and under compute-sanitizer
memcheck when it is installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from xpuruntime._native import core
from _tensorrt_support import (lean_runtime_library, library, require_tensorrt_module,
                               program_path, run_program)

SUMMARY = re.compile(r"xpuruntime_trt_test: (\d+) checks, (\d+) failed")


def checks_of(proc: subprocess.CompletedProcess) -> int:
    """The number of checks the program ran; fails the test on any failed check."""
    print(proc.stdout[-4000:])  # the lead's record of what ran (pytest -s / -rP)
    found = SUMMARY.findall(proc.stdout)
    assert found, f"no summary (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    total, failed = map(int, found[-1])
    failures = [line for line in proc.stdout.splitlines() if line.startswith("FAIL")]
    assert proc.returncode == 0 and failed == 0, "\n".join(failures[:50]) or proc.stderr[-3000:]
    return total


def registry_args() -> list[str]:
    """--registry with the lean runtime's library (installed by scripts/setup-dev)."""
    library()  # skips first where this build has no plugin library: then no TensorRT is needed
    require_tensorrt_module()
    lean = lean_runtime_library()
    if lean is None:
        pytest.skip("tensorrt_lean_libs is not installed (only a full tensorrt); the registry run "
                    "uses the lean runtime's libnvinfer_lean.so")
    return ["--registry", lean]


LOADERS = ["dlopen", "registry"]


def loader_args(loader: str) -> list[str]:
    return registry_args() if loader == "registry" else []


@pytest.mark.parametrize("loader", LOADERS)
def test_build_phase(loader):
    total = checks_of(run_program(*loader_args(loader)))
    assert total >= 1500  # every case ran (about 150 checks each)


def test_program_refuses_a_missing_library(tmp_path):
    program_path()
    proc = subprocess.run([program_path(), "--library", str(tmp_path / "missing.so")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "FAIL loading" in proc.stdout


def have_gpu() -> bool:
    return bool(core.built_with_cuda) and core.cuda_device_count() > 0


@pytest.mark.gpu
@pytest.mark.parametrize("loader", LOADERS)
def test_enqueue_on_the_gpu_against_the_core(loader):
    library()
    if not have_gpu():
        pytest.skip("no CUDA device")
    total = checks_of(run_program("--gpu", *loader_args(loader)))
    assert total >= 2800  # build phase plus every dtype and policy of every case (2900 on the H200)


@pytest.mark.gpu
def test_enqueue_under_compute_sanitizer():
    library()
    if not have_gpu():
        pytest.skip("no CUDA device")
    sanitizer = shutil.which("compute-sanitizer") or (
        "/usr/local/cuda/bin/compute-sanitizer" if shutil.which("/usr/local/cuda/bin/compute-sanitizer")
        else None)
    if sanitizer is None:
        pytest.skip("compute-sanitizer is not installed")
    proc = subprocess.run([sanitizer, "--tool", "memcheck", "--error-exitcode", "3", program_path(),
                           "--library", library(), "--gpu"], capture_output=True, text=True,
                          timeout=1800)
    print(proc.stdout[-2000:])
    assert "ERROR SUMMARY: 0 errors" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-4000:]
    checks_of(proc)
