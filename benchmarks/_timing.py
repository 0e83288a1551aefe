"""Timing helpers shared by the benchmarks: device-event medians for torch,
host-clock medians over pipelined batches for JAX, and the copy ceiling."""

from __future__ import annotations

import statistics
import time


def torch_median_ms(fn, warmup_ms: float = 25, rep_ms: float = 150) -> float:
    """Median time of ``fn()`` in ms, from CUDA events (triton's do_bench)."""
    from triton.testing import do_bench
    return float(do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median"))


def jax_median_ms(fn, *args, batch: int = 20, repeats: int = 15) -> float:
    """Median per-call time of a jitted ``fn(*args)`` in ms.

    Calls are dispatched ``batch`` at a time and waited for once, so host
    dispatch overlaps device work as it does in a real program.
    """
    import jax
    jax.block_until_ready(fn(*args))  # compile and warm up
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = None
        for _ in range(batch):
            out = fn(*args)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - t0) * 1e3 / batch)
    return statistics.median(times)


def sized_copy_tbs(nbytes: int) -> float:
    """Rate in TB/s of the device copy of copy_bandwidth_tbs (torch's copy_, do_bench's
    median) moving ``nbytes`` in all (half read, half written): the reference ceiling at
    a row's own bytes, where a copy pays its ramp and its last wave, which 1 GiB hides.
    Not a CUDA-graph replay: captured, copy_ becomes a memcpy node, which ran at 2.4-2.8
    TB/s at most sizes from 95 MB up against 4.1-4.26 eagerly (H200, bench_copy.py)."""
    return copy_bandwidth_tbs(max(nbytes // 2, 16))


def capture_graph(step, calls: int = 1):
    """``calls`` runs of ``step`` captured into one CUDA graph (torch.cuda.CUDAGraph).

    Warm-up runs on a side stream first, as torch's capture recipe asks, so
    lazy initialisation (autograd's per-stream state, library handles) is done
    before capture. thread_local: another thread's CUDA calls cannot break it.
    """
    import torch
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        for _ in range(calls):
            step()
    return graph


def copy_bandwidth_tbs(nbytes: int = 1 << 30) -> float:
    """Device-to-device copy rate in TB/s, counting bytes read plus written."""
    import torch
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    ms = torch_median_ms(lambda: dst.copy_(src))
    return 2 * nbytes / (ms * 1e-3) / 1e12
