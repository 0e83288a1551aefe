"""The release path as a user meets it: scripts/build-wheels makes the sdist and, from it with
build isolation (the XLA FFI headers from the jaxlib pinned in the build requirements), a wheel
repaired by auditwheel to manylinux_2_28 and checked by twine; scripts/test-wheel installs that
wheel alone in a fresh virtual environment and runs every frontend and tests from outside the
checkout. That test is slow (minutes: two isolated environments and a full build), so it runs
where XPURUNTIME_SLOW_TESTS=1, as .ci/run sets. It builds CPU kernels only, to keep CI short: the
CUDA build is CI's main build (scripts/setup-dev) and the release workflow's wheels.

Fast: a library linked the way the wheels are on a glibc newer than 2.28 (scripts/glibc-floor's
stubs, cmake/glibc_floor.cmake) needs no symbol version past 2.28 and works."""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
slow_enabled = pytest.mark.skipif(os.environ.get("XPURUNTIME_SLOW_TESTS") != "1",
                                  reason="slow packaging test: set XPURUNTIME_SLOW_TESTS=1 (CI does)")


def run(args, **env):
    out = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, **env})
    assert out.returncode == 0, f"{args[:2]} failed:\n{out.stdout[-6000:]}\n{out.stderr[-4000:]}"
    return out.stdout


@pytest.mark.slow
@slow_enabled
def test_sdist_builds_isolated_and_its_wheel_works_alone(tmp_path):
    dist = tmp_path / "dist"
    # No TensorRT here: its plugin library needs the CUDA build this test leaves out.
    env = {"XPURUNTIME_CUDA": "OFF", "PYTHONS": sys.executable, "XPURUNTIME_TENSORRT_ROOT": ""}
    report = run(["bash", ROOT / "scripts" / "build-wheels", dist], **env)
    (sdist,) = dist.glob("xpuruntime-*.tar.gz")
    (wheel,) = dist.glob("xpuruntime-*.whl")
    version = sdist.name.removeprefix("xpuruntime-").removesuffix(".tar.gz")
    assert wheel.name.startswith(f"xpuruntime-{version}-"), (sdist.name, wheel.name)
    # auditwheel repaired it to the tag the issue asks for (and refuses where a symbol is newer).
    assert wheel.name.endswith("-manylinux_2_28_x86_64.whl"), wheel.name
    assert f" MB  {wheel.name}" in report  # its size is reported

    names = tarfile.open(sdist).getnames()
    top = f"xpuruntime-{version}"
    for needed in ("LICENSE", "PKG-INFO", "pyproject.toml", "CMakeLists.txt", "ffi/ops.def",
                   "scripts/fetch-ort-headers", "xpuruntime/py.typed",
                   "cmake/glibc_floor.cmake", "ffi/compat/glibc_floor.cc"):
        assert f"{top}/{needed}" in names, needed
    assert not any(n.startswith(f"{top}/third_party/") for n in names)  # fetched by the build

    out = run(["bash", ROOT / "scripts" / "test-wheel", wheel, sys.executable])
    assert "jax (jit): rms_norm relative error" in out and "onnxruntime library:" in out
    assert " passed" in out and " failed" not in out


# What the xpuruntime libraries use of libstdc++ (threads, a condition variable, streams,
# exceptions, shared_ptr), and the parts that call glibc functions newer than 2.28
# (random_device: arc4random, filesystem: stat, fstream: fstat64).
PROBE = r"""
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>

extern "C" __attribute__((visibility("default"))) long probe(const char* path, unsigned* random) {
  std::random_device device;
  random[0] = device();
  random[1] = device();
  auto counter = std::make_shared<long>(0);
  std::mutex mutex;
  std::condition_variable ready;
  std::thread worker([&] {
    std::lock_guard<std::mutex> lock(mutex);
    *counter += 1;
    ready.notify_one();
  });
  {
    std::unique_lock<std::mutex> lock(mutex);
    ready.wait_for(lock, std::chrono::seconds(10), [&] { return *counter == 1; });
  }
  worker.join();
  {  // A wait that times out: on the steady clock, 20 ms.
    std::unique_lock<std::mutex> lock(mutex);
    auto start = std::chrono::steady_clock::now();
    if (ready.wait_for(lock, std::chrono::milliseconds(20), [] { return false; })) return -3;
    if (std::chrono::steady_clock::now() - start < std::chrono::milliseconds(20)) return -4;
  }
  std::ifstream file(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  try {
    std::filesystem::file_size(std::string(path) + ".missing");
    return -1;
  } catch (const std::filesystem::filesystem_error&) {
  }
  std::ostringstream size;
  size << std::filesystem::file_size(path);
  return *counter == 1 && size.str() == std::to_string(text.size()) ? long(text.size()) : -2;
}
"""


def needed_versions(library):
    """The symbol versions `library` needs, from readelf's version-needs section."""
    out = subprocess.run(["readelf", "--version-info", "--wide", library], capture_output=True,
                         text=True, check=True).stdout
    return set(re.findall(r"Name: ((?:GLIBC|GLIBCXX|CXXABI|GCC)_[0-9.]+)", out))


@pytest.mark.skipif(sys.platform != "linux" or not shutil.which("readelf") or
                    not shutil.which("cmake") or not shutil.which("ninja"),
                    reason="needs Linux with readelf, cmake and ninja")
def test_a_library_linked_against_the_glibc_floor_needs_nothing_past_2_28(tmp_path):
    floor = run([sys.executable, ROOT / "scripts" / "glibc-floor", tmp_path / "floor", "2.28"]).strip()
    (tmp_path / "probe.cc").write_text(PROBE)
    (tmp_path / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.28)\nproject(probe CXX)\nset(CMAKE_CXX_STANDARD 20)\n"
        "set(CMAKE_CXX_VISIBILITY_PRESET hidden)\n"
        f"include({(ROOT / 'cmake' / 'glibc_floor.cmake').as_posix()})\n"
        "add_library(probe SHARED probe.cc)\nxpu_link_glibc_floor(probe)\n")
    build = tmp_path / "build"
    run(["cmake", "-S", tmp_path, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
         f"-DXPURUNTIME_GLIBC_FLOOR={floor}"])
    run(["cmake", "--build", build])
    library = str(build / "libprobe.so")

    versions = needed_versions(library)
    glibc = {v for v in versions if v.startswith("GLIBC_")}
    assert glibc and all(tuple(map(int, v[6:].split("."))) <= (2, 28) for v in glibc), versions
    assert not {v for v in versions if v.startswith(("GLIBCXX_", "CXXABI_"))}, versions  # static
    needed = subprocess.run(["readelf", "--dynamic", library], capture_output=True, text=True,
                            check=True).stdout
    for name in ("libpthread.so.0", "libdl.so.2", "librt.so.1"):  # where glibc < 2.34 has them
        assert f"[{name}]" in needed, needed

    # Loaded and run here, in its own process (on this machine's newer glibc).
    code = (f"import ctypes; lib = ctypes.CDLL({library!r}); r = (ctypes.c_uint * 2)(); "
            "lib.probe.restype = ctypes.c_long; "
            f"print(lib.probe({__file__.encode()!r}, r), r[0], r[1])")
    size, first, second = map(int, run([sys.executable, "-c", code]).split())
    assert size == os.path.getsize(__file__)
    assert (first, second) != (0, 0)
