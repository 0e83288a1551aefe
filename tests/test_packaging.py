"""The release path as a user meets it: scripts/build-wheels makes the sdist and, from it with
build isolation (the XLA FFI headers from the jaxlib pinned in the build requirements), a wheel
repaired by auditwheel and checked by twine; scripts/test-wheel installs that wheel alone in a
fresh virtual environment and runs every frontend and tests from outside the checkout.

Slow (minutes: two isolated environments and a full build), so it runs where
XPURUNTIME_SLOW_TESTS=1, as .ci/run sets. It builds CPU kernels only, to keep CI short: the
CUDA build is CI's main build (scripts/setup-dev) and the release workflow's wheels."""

import os
import pathlib
import subprocess
import sys
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("XPURUNTIME_SLOW_TESTS") != "1",
                       reason="slow packaging test: set XPURUNTIME_SLOW_TESTS=1 (CI does)"),
]


def run(args, **env):
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **env})
    assert out.returncode == 0, f"{args[:2]} failed:\n{out.stdout[-6000:]}\n{out.stderr[-4000:]}"
    return out.stdout


def test_sdist_builds_isolated_and_its_wheel_works_alone(tmp_path):
    dist = tmp_path / "dist"
    # No TensorRT here: its plugin library needs the CUDA build this test leaves out.
    env = {"XPURUNTIME_CUDA": "OFF", "PYTHONS": sys.executable, "XPURUNTIME_TENSORRT_ROOT": ""}
    report = run(["bash", ROOT / "scripts" / "build-wheels", dist], **env)
    (sdist,) = dist.glob("xpuruntime-*.tar.gz")
    (wheel,) = dist.glob("xpuruntime-*.whl")
    version = sdist.name.removeprefix("xpuruntime-").removesuffix(".tar.gz")
    assert wheel.name.startswith(f"xpuruntime-{version}-"), (sdist.name, wheel.name)
    assert "manylinux" in wheel.name, wheel.name  # auditwheel found a policy the wheel meets
    assert f" MB  {wheel.name}" in report  # its size is reported

    names = tarfile.open(sdist).getnames()
    top = f"xpuruntime-{version}"
    for needed in ("LICENSE", "PKG-INFO", "pyproject.toml", "CMakeLists.txt", "ffi/ops.def",
                   "scripts/fetch-ort-headers", "xpuruntime/py.typed"):
        assert f"{top}/{needed}" in names, needed
    assert not any(n.startswith(f"{top}/third_party/") for n in names)  # fetched by the build

    out = run(["bash", ROOT / "scripts" / "test-wheel", wheel, sys.executable])
    assert "jax (jit): rms_norm relative error" in out and "onnxruntime library:" in out
    assert " passed" in out and " failed" not in out
