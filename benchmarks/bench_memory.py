"""Allocation latency: an allocate+free pair for sizes from 512 B to 256 MiB, and a
random allocation trace (RMM style), side by side in one run: xpuruntime's pool
(timed from C++ and from Python) against cudaMalloc/cudaFree, cudaMallocAsync,
torch's caching allocator and CuPy's pool (CUDA), or numpy (CPU only).
Prints a table and writes JSON. Goals (reported, not asserted): a cached pair
<= 0.5 us from C++ and <= 1.5 us from Python.

The C++ rows come from the benchmark tool benchmarks/native/memory_bench.cc (not
part of the package): ``--tool PATH`` runs a built one, otherwise it is built
here with CMake (build/bench-native, about as long as building the package),
and ``--no-native`` leaves those rows out."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import random
import shutil
import subprocess
import sys
import time

try:  # a contender on CUDA
    import torch  # noqa: F401
except ImportError:
    pass

import xpuruntime  # noqa: E402
from xpuruntime import _core, memory  # noqa: E402

SIZES = [512, 4096, 65536, 1 << 20, 16 << 20, 256 << 20]


def py_pairs_us(alloc_free, iters: int) -> float:
    alloc_free()  # warm: the first pair fills the cache
    t0 = time.perf_counter()
    for _ in range(iters):
        alloc_free()
    return (time.perf_counter() - t0) / iters * 1e6


def _with_pair(nbytes: int, device):
    def pair() -> None:
        with memory.allocate(nbytes, device=device):
            pass
    return pair


def contenders(kind: str, nbytes: int):
    device = xpuruntime.devices()[-1 if kind == "cuda" else 0]
    out = {
        "xpuruntime pool (Python)": lambda iters: py_pairs_us(
            lambda: memory.allocate(nbytes, device=device).free(),
            iters),
        # The other two ways a Buffer goes back: the end of a with block, and
        # being dropped (reference count to zero, freed on its stream).
        "xpuruntime pool (Python, with)": lambda iters: py_pairs_us(_with_pair(nbytes, device), iters),
        "xpuruntime pool (Python, dropped)": lambda iters: py_pairs_us(
            lambda: memory.allocate(nbytes, device=device), iters),
    }
    if kind == "cuda":
        try:
            import torch
            out["torch.empty (Python)"] = lambda iters: py_pairs_us(
                lambda: torch.empty(nbytes, dtype=torch.uint8, device="cuda"), iters)
        except ImportError:
            pass
        try:
            import cupy
            pool = cupy.get_default_memory_pool()
            out["cupy pool (Python)"] = lambda iters: py_pairs_us(lambda: pool.malloc(nbytes), iters)
        except ImportError:
            pass
    else:
        import numpy as np
        out["numpy.empty (Python)"] = lambda iters: py_pairs_us(lambda: np.empty(nbytes, np.uint8), iters)
    return out


ROOT = pathlib.Path(__file__).resolve().parent.parent


def _cmake() -> str | None:
    """cmake on PATH, or the one of the `cmake` Python package (the build's own)."""
    found = shutil.which("cmake")
    if found:
        return found
    try:
        import cmake
        return os.path.join(cmake.CMAKE_BIN_DIR, "cmake")
    except ImportError:
        return None


def build_native_tool(cuda: bool) -> str | None:
    """Builds benchmarks/native's memory tool (the core and the tool only) and returns its path."""
    cmake = _cmake()
    if cmake is None:
        print("C++ rows skipped: no cmake to build benchmarks/native", file=sys.stderr)
        return None
    build = ROOT / "build" / "bench-native"
    configure = [cmake, "-S", str(ROOT), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                 "-DXPURUNTIME_BUILD_BENCHMARKS=ON", "-DXPURUNTIME_FETCH_ORT_HEADERS=OFF",
                 f"-DXPURUNTIME_CUDA={'ON' if cuda else 'OFF'}",
                 f"-DXPURUNTIME_CUDA_ARCHITECTURES={os.environ.get('XPURUNTIME_CUDA_ARCHITECTURES', '90')}"]
    if shutil.which("ninja") and not (build / "CMakeCache.txt").exists():
        configure += ["-G", "Ninja"]
    compile_ = [cmake, "--build", str(build), "--target", "xpuruntime_memory_bench", "-j", str(os.cpu_count() or 2)]
    t0 = time.perf_counter()
    for cmd in (configure, compile_):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"C++ rows skipped: {' '.join(cmd[:3])} failed:\n{(done.stdout + done.stderr)[-3000:]}",
                  file=sys.stderr)
            return None
    print(f"built the native memory tool in {time.perf_counter() - t0:.0f} s", flush=True)
    return str(build / "benchmarks" / "native" / "xpuruntime_memory_bench")


def native_pairs(tool: str, kind: str, iters: int) -> dict[tuple[int, str], float]:
    """{(bytes, impl): us per pair} timed in C++ by the tool (pool, and CUDA's allocators on CUDA)."""
    done = subprocess.run([tool, kind, str(iters)] + [str(n) for n in SIZES], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"C++ rows skipped: {tool} failed: {done.stderr.strip()}", file=sys.stderr)
        return {}
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {(r["bytes"], r["impl"]): r["us_per_pair"] for r in rows}


def random_trace_us(allocate, free, ops: int = 20000, seed: int = 0) -> float:
    """Mean us per operation of a random trace: log-uniform sizes 512 B .. 64 MiB, up to 64 live."""
    rng = random.Random(seed)
    live = []
    t0 = time.perf_counter()
    for _ in range(ops):
        if live and (len(live) >= 64 or rng.random() < 0.5):
            free(live.pop(rng.randrange(len(live))))
        else:
            live.append(allocate(int(2 ** rng.uniform(9, 26))))
    for h in live:
        free(h)
    return (time.perf_counter() - t0) / ops * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/memory.json")
    parser.add_argument("--iters", type=int, default=20000)
    parser.add_argument("--tool", help="a built xpuruntime_memory_bench (default: build one)")
    parser.add_argument("--no-native", action="store_true", help="leave out the rows timed in C++")
    args = parser.parse_args()
    kind = "cuda" if _core.cuda_device_count() > 0 else "cpu"
    device = xpuruntime.devices()[-1 if kind == "cuda" else 0]
    native = {}
    if not args.no_native:
        tool = args.tool or build_native_tool(bool(_core.built_with_cuda))
        native = native_pairs(tool, kind, args.iters) if tool else {}
    rows = []
    for nbytes in SIZES:
        for (n, name), us in native.items():
            if n == nbytes:
                rows.append({"bytes": nbytes, "impl": name, "us_per_pair": us})
                print(f"{nbytes:>10} {name:<32} {us:8.3f} us", flush=True)
        for name, run in contenders(kind, nbytes).items():
            rows.append({"bytes": nbytes, "impl": name, "us_per_pair": run(args.iters)})
            print(f"{nbytes:>10} {name:<32} {rows[-1]['us_per_pair']:8.3f} us", flush=True)
    trace = {"xpuruntime pool (Python)": random_trace_us(
        lambda n: memory.allocate(n, device=device), lambda b: b.free())}
    if kind == "cuda":
        import torch
        trace["torch caching allocator (Python)"] = random_trace_us(
            lambda n: torch.empty(n, dtype=torch.uint8, device="cuda"), lambda t: None)
    report = {"device": str(device), "python": platform.python_version(), "pairs": rows,
              "random_trace_us_per_op": trace}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"\nallocate+free pair latency (us), {report['device']}")
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    print(f"{'bytes':>10}" + "".join(f"{i:>35}" for i in impls))
    for nbytes in SIZES:
        vals = {r["impl"]: r["us_per_pair"] for r in rows if r["bytes"] == nbytes}
        print(f"{nbytes:>10}" + "".join(f"{vals.get(i, float('nan')):>35.3f}" for i in impls))
    print("random trace, us per operation: " + ", ".join(f"{k} {v:.3f}" for k, v in trace.items()))


if __name__ == "__main__":
    main()
