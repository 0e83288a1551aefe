"""Launch-shape experiments for the row kernels (issue 16), side by side in one run:
the variants of ``benchmarks/native/row_variants.cu`` (compiled here with nvcc,
loaded through ctypes) against Liger, torch.compile and torch eager, and the copy
ceiling measured in the same run. Every variant is checked against torch in float32
before it is timed. Times are CUDA-graph replays (10 calls a graph, median of 20
replays), so host dispatch is not in them.

    python3 benchmarks/row_variants.py --out row_variants.json [--ops rms_norm,softmax]
    (--ops: rms_norm, softmax, layer_norm, rms_norm_backward, softmax_backward, split_backward)
    (--shapes 4096x65536: one shape; split_backward times the norms' staged backwards at any
     n up to 65536, the ring's stages given)
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
try:  # Liger's entry points (benchmarks/_op_specs.py imports the built xpuruntime too)
    from _op_specs import _liger  # noqa: E402
except ImportError:
    def _liger(module, cls):
        return None
from _timing import capture_graph, copy_bandwidth_tbs  # noqa: E402

SHAPES = [(32768, 4096), (8192, 8192), (4096, 65536)]


def build(out_dir: str) -> ctypes.CDLL:
    """nvcc-compiles row_variants.cu for sm_90 into out_dir and loads it."""
    so = os.path.join(out_dir, "librow_variants.so")
    src = os.path.join(HERE, "native", "row_variants.cu")
    ffi = os.path.join(HERE, "..", "ffi")
    # cluster.cu: the library's launch helpers (occupancy, cluster size) for its launchers
    subprocess.run(["nvcc", "-O3", "-std=c++20", "-arch=sm_90", "-shared", "-Xcompiler", "-fPIC", "--expt-relaxed-constexpr",
                    "-I", ffi, "-I", os.path.join(ffi, "include"), src,
                    os.path.join(ffi, "kernels", "common", "cluster.cu"), "-o", so], check=True)
    return ctypes.CDLL(so)


def graph_ms(step, calls: int = 10, replays: int = 20) -> float:
    """Median device time of one ``step()`` in ms, from replays of a CUDA graph of
    ``calls`` steps."""
    graph = capture_graph(step, calls)
    graph.replay()
    times = []
    for _ in range(replays):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) / calls)
    return statistics.median(times)


def stream() -> ctypes.c_void_p:
    return ctypes.c_void_p(torch.cuda.current_stream().cuda_stream)


def ptr(t: torch.Tensor) -> ctypes.c_void_p:
    return ctypes.c_void_p(t.data_ptr())


def rel_err(got: torch.Tensor, ref: torch.Tensor) -> float:
    return float((got.float() - ref.float()).norm() / ref.float().norm().clamp_min(1e-30))


def rms_variants(n: int):
    """(name, kind, threads, items, ld, st) for a row of n bf16 columns."""
    vecs = n // 8
    out = []
    for threads, items in [(512, 1), (256, 2), (128, 4), (64, 8), (1024, 1), (512, 2), (256, 4),
                           (128, 8), (1024, 8)]:
        if threads * items != vecs:
            continue
        # ld 4 / 5: plain loads and the row one / two waves later prefetched into L2 (65536)
        extra = [(4, 0), (5, 0), (4, 1)] if n == 65536 else []
        for ld, st in [(0, 0), (1, 0), (2, 0), (3, 0), (0, 1), (2, 1)] + extra:
            out.append((f"cta {threads}x{items} ld{ld} st{st}", 0, threads, items, ld, st))
    for rows, items in [(4, 16), (8, 16), (2, 16), (4, 32)]:
        if 32 * items == vecs:
            for ld, st in [(0, 0), (2, 1)]:
                out.append((f"warp {rows}r x{items} ld{ld} st{st}", 1, rows, items, ld, st))
    for threads, items in [(256, 2), (128, 4), (512, 2), (256, 4)]:
        if threads * items == vecs:
            for ld, st in [(0, 0), (2, 1)]:
                out.append((f"pers {threads}x{items} ld{ld} st{st}", 2, threads, items, ld, st))
    # Two passes, the row read again from L2 (Inductor's looped reductions): U vectors a
    # thread an iteration, any n that is a multiple of 8.
    # (32 registers, 2048 threads an SM; U 4 spills at that cap and is not timed.)
    for threads, u, st in [(256, 1, 0), (256, 2, 0), (512, 1, 0), (512, 2, 0), (1024, 1, 0),
                           (1024, 2, 0), (256, 2, 1)]:
        if threads * u <= vecs:
            out.append((f"loop {threads}x{u} st{st}", 3, threads, u, 0, st))
    # Inductor's eviction hints (run 28e), ld as in LoopHints / ld16 of row_variants.cu.
    for threads, u, ld in [(512, 2, 6), (512, 2, 7), (512, 2, 8), (512, 2, 9), (512, 1, 6),
                           (256, 2, 6)]:
        if threads * u <= vecs:
            out.append((f"loop {threads}x{u} hints{ld}", 3, threads, u, ld, 0))
    for threads, items, ld in [(512, 2, 10), (256, 4, 10), (512, 2, 7)]:
        if threads * items == vecs:
            out.append((f"cta {threads}x{items} ld{ld} st0", 0, threads, items, ld, 0))
    return out


def cta_variants(n: int):
    """(name, threads, items, ld, st) for the softmax / layer_norm CTA kernels."""
    vecs = n // 8
    out = []
    for threads, items in [(256, 2), (128, 4), (512, 1), (512, 2), (256, 4), (1024, 1), (1024, 8)]:
        if threads * items == vecs:
            for ld, st in [(0, 0), (2, 1)]:
                out.append((f"cta {threads}x{items} ld{ld} st{st}", threads, items, ld, st))
    return out


def tma_variants(n: int):
    """(name, cluster, threads, items) for softmax_tma: the row staged in shared memory."""
    vecs = n // 8
    return [(f"tma {c}x{t}x{i}", c, t, i)
            for c, t, i in [(4, 256, 8), (8, 256, 4), (4, 512, 4), (8, 128, 8), (2, 512, 8),
                            (1, 1024, 8), (2, 256, 2), (1, 256, 4)]
            if c * t * i == vecs]


def _library(op: str):
    """The built xpuruntime's op, timed as a peer; None where xpuruntime is not built."""
    try:
        from xpuruntime import ops
    except Exception:
        return None
    return getattr(ops, op)


def candidates(variants, what: str, launch) -> dict:
    """{name: step} for the (name, *variant) rows of ``variants``: a step calls
    ``launch(*variant)`` and raises on a nonzero return (a variant not compiled in, or a
    CUDA error)."""
    out = {}
    for name, *variant in variants:
        def step(name=name, variant=tuple(variant)):
            rc = launch(*variant)
            if rc:
                raise RuntimeError(f"{what} {name}: {rc}")
        out[name] = step
    return out


def run_rms(lib, rows, n, copy_tbs, results):
    x = torch.randn(rows, n, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    rstd = torch.empty(rows, device="cuda", dtype=torch.float32)
    ref = F.rms_norm(x.float(), (n,), w.float(), 1e-6)
    peers = {"torch eager": lambda: F.rms_norm(x, (n,), w, 1e-6)}
    compiled = torch.compile(lambda a, b: F.rms_norm(a, (n,), b, 1e-6))
    peers["torch.compile"] = lambda: compiled(x, w)
    liger = _liger("rms_norm", "LigerRMSNormFunction")
    if liger is not None:
        peers["liger"] = lambda: liger(x, w, 1e-6)
    library = _library("rms_norm")
    if library is not None:
        peers["xpuruntime (library)"] = lambda: library(x, w, eps=1e-6)
    cands = candidates(rms_variants(n), "xpv_rms", lambda *v: lib.xpv_rms(
        *v, ptr(x), ptr(w), ptr(y), ptr(rstd), ctypes.c_int64(rows), n, ctypes.c_float(1e-6),
        stream()))
    # The library's forward_cta at its own shape, and split over a cluster (the library's
    # choice for packed rows before run 26).
    for form, name in [(0, "library forward_cta"), (1, "forward_cta cluster")]:
        cands.update(candidates([(name, form)], "xpv_rms_fwd_cta",
                                lambda form: lib.xpv_rms_fwd_cta(form, ptr(x), ptr(w), ptr(y),
                                                                 ctypes.c_int64(rows), n, stream())))
    record("rms_norm", rows, n, 2, peers, cands, lambda: y, ref, copy_tbs, results)


def run_softmax(lib, rows, n, copy_tbs, results):
    x = torch.randn(rows, n, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    ref = torch.softmax(x.float(), -1)
    compiled = torch.compile(lambda a: torch.softmax(a, -1))
    peers = {"torch eager": lambda: torch.softmax(x, -1), "torch.compile": lambda: compiled(x)}
    liger = _liger("softmax", "LigerSoftmaxFunction")
    if liger is not None:
        peers["liger"] = lambda: liger(x)
    library = _library("softmax")
    if library is not None:
        peers["xpuruntime (library)"] = lambda: library(x)
    cands = candidates(cta_variants(n), "xpv_softmax", lambda *v: lib.xpv_softmax(
        *v, ptr(x), ptr(y), ctypes.c_int64(rows), n, stream()))
    cands.update(candidates(tma_variants(n), "xpv_softmax_tma", lambda *v: lib.xpv_softmax_tma(
        *v, ptr(x), ptr(y), ctypes.c_int64(rows), n, stream())))
    record("softmax", rows, n, 2, peers, cands, lambda: y, ref, copy_tbs, results)


def run_layer(lib, rows, n, copy_tbs, results):
    x = torch.randn(rows, n, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    mean = torch.empty(rows, device="cuda", dtype=torch.float32)
    rstd = torch.empty_like(mean)
    ref = F.layer_norm(x.float(), (n,), w.float(), b.float(), 1e-5)
    compiled = torch.compile(lambda a, c, d: F.layer_norm(a, (n,), c, d, 1e-5))
    peers = {"torch eager": lambda: F.layer_norm(x, (n,), w, b, 1e-5),
             "torch.compile": lambda: compiled(x, w, b)}
    liger = _liger("layer_norm", "LigerLayerNormFunction")
    if liger is not None:
        peers["liger"] = lambda: liger(x, w, b, 1e-5)
    library = _library("layer_norm")
    if library is not None:
        peers["xpuruntime (library)"] = lambda: library(x, w, b, 1e-5)
    cands = candidates(cta_variants(n), "xpv_layer", lambda *v: lib.xpv_layer(
        *v, ptr(x), ptr(w), ptr(b), ptr(y), ptr(mean), ptr(rstd), ctypes.c_int64(rows), n,
        ctypes.c_float(1e-5), stream()))
    record("layer_norm", rows, n, 2, peers, cands, lambda: y, ref, copy_tbs, results)


def run_rms_bwd(lib, rows, n, copy_tbs, results):
    """rms_norm backward variants (dx and dweight, the reduction of the partials included)."""
    x = torch.randn(rows, n, device="cuda", dtype=torch.bfloat16)
    dy = torch.randn_like(x)
    w = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    xf = x.float().requires_grad_()
    wf = w.float().requires_grad_()
    F.rms_norm(xf, (n,), wf, 1e-6).backward(dy.float())
    rstd = torch.rsqrt(x.float().pow(2).mean(-1) + 1e-6)
    dx = torch.empty_like(x)
    dw = torch.empty_like(w)
    ref = torch.cat([xf.grad.flatten(), wf.grad.flatten() / rows ** 0.5])
    cands = {}
    # Run 13 swept every tile, group count and mode (results/rms_bwd_variants_h200.txt);
    # run 15 keeps its best (256 x 2 / 512 x 2, 264 groups, chunked, prefetched) and times
    # the library's kernel beside it on the same data (0.263 against 0.210 ms at 32768x4096;
    # a one-CTA library kernel in the experiment's form took 0.311, docs/kernels/README.md),
    # with the experiment kernel bisected toward the library's.
    tile = {4096: (256, 2), 8192: (512, 2)}.get(n)
    groups = 264
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    big = torch.empty(4 * sms, n, device="cuda", dtype=torch.float32)
    partial = torch.empty(groups, n, device="cuda", dtype=torch.float32)
    if tile:
        threads, items = tile

        def lib_step(threads=threads, items=items):
            # (the library recomputes rstd; the experiment kernels below read `rstd`)
            rc = lib.xpv_lib_rms_bwd(threads, items, ctypes.c_int64(4 * sms), ptr(x), ptr(dy),
                                     ptr(w), ptr(dx), ptr(big), ptr(dw), ctypes.c_int64(rows), n,
                                     stream())
            if rc:
                raise RuntimeError(f"xpv_lib_rms_bwd: {rc}")

        cands["library fused_norm_backward"] = lib_step
        # Mode 3: chunked rows, next row prefetched (run 13's best); then, one at a time, what
        # the library does differently (row_variants.cu, rms_bwd_body's note).
        # (run 16a bisected modes 7, 11, 19 and 31; see docs/kernels/README.md)
        for mode, what in [(3, "")]:
            def step(mode=mode, threads=threads, items=items):
                rc = lib.xpv_rms_bwd(threads, items, mode, ctypes.c_int64(groups), ptr(x),
                                     ptr(dy), ptr(w), ptr(rstd), ptr(dx), ptr(partial), ptr(dw),
                                     ctypes.c_int64(rows), n, stream())
                if rc:
                    raise RuntimeError(f"xpv_rms_bwd: {rc}")
            cands[f"bwd {threads}x{items} G{groups} chunk prefetch{what}"] = step
    # Rows staged in a shared-memory ring by TMA bulk copies (rms_bwd_tma): threads x items,
    # stages, CTAs an SM (all resident: registers and shared memory checked by hand, sm_90).
    tma = {4096: [(256, 2, 2, 2), (256, 2, 3, 2), (256, 2, 4, 2), (256, 2, 2, 3), (256, 2, 3, 3),
                  (256, 2, 2, 4), (256, 2, 3, 4), (128, 4, 3, 4), (128, 4, 4, 3), (512, 1, 3, 2)],
           8192: [(512, 2, 2, 2), (512, 2, 3, 2), (256, 4, 2, 2), (256, 4, 3, 2)]}.get(n, [])
    for threads, items, stages, per_sm in tma:
        def tma_step(threads=threads, items=items, stages=stages, per_sm=per_sm):
            rc = lib.xpv_rms_bwd_tma(threads, items, stages, ctypes.c_int64(per_sm * sms), ptr(x),
                                     ptr(dy), ptr(w), ptr(rstd), ptr(dx), ptr(big), ptr(dw),
                                     ctypes.c_int64(rows), n, stream())
            if rc:
                raise RuntimeError(f"xpv_rms_bwd_tma: {rc}")
        cands[f"tma {threads}x{items} S{stages} {per_sm}/SM"] = tma_step
    # The same kernel recomputing rstd as the library does (one float2 reduction by the
    # library's cta_reduce_flat; prepared in session 18): whether the recompute or the
    # library's ring and walk cost the 10% between them at 8192 columns (run 27b).
    for threads, items, stages, per_sm in [t for t in tma if t[2] == 2 and t[1] == 2]:
        def recompute_step(threads=threads, items=items, stages=stages, per_sm=per_sm):
            rc = lib.xpv_rms_bwd_tma_recompute(threads, items, stages, ctypes.c_int64(per_sm * sms),
                                               ptr(x), ptr(dy), ptr(w), ptr(dx), ptr(big), ptr(dw),
                                               ctypes.c_int64(rows), n, ctypes.c_float(1e-6),
                                               stream())
            if rc:
                raise RuntimeError(f"xpv_rms_bwd_tma_recompute: {rc}")
        cands[f"tma {threads}x{items} S{stages} {per_sm}/SM recompute rstd"] = recompute_step
    record("rms_norm backward", rows, n, 3, {}, cands,
           lambda: torch.cat([dx.flatten(), dw.flatten() / rows ** 0.5]), ref, copy_tbs, results)


def run_softmax_bwd(lib, rows, n, copy_tbs, results):
    """softmax's backward from y against recomputing y from x (session 9), one CTA a row:
    the same bytes (x or y, dy in; dx out), checked against the float32 gradient."""
    x = torch.randn(rows, n, device="cuda", dtype=torch.bfloat16)
    dy = torch.randn_like(x)
    y32 = torch.softmax(x.float(), -1)
    y = y32.to(torch.bfloat16)
    ref = y32 * (dy.float() - (dy.float() * y32).sum(-1, keepdim=True))
    dx = torch.empty_like(x)
    peers = {"torch eager (from y)": lambda: torch._softmax_backward_data(dy, y, -1, x.dtype)}
    variants = []
    for threads, items in [(256, 2), (512, 1), (128, 4), (512, 2), (1024, 1), (256, 4)]:
        if threads * items * 8 != n:
            continue
        for from_x, keep, what in [(0, 0, "from y"), (1, 0, "from x"), (1, 1, "from x keep")]:
            variants.append((f"cta {threads}x{items} {what}", threads, items, from_x, keep))
    cands = candidates(variants, "xpv_softmax_bwd", lambda threads, items, from_x, keep:
                       lib.xpv_softmax_bwd(threads, items, from_x, keep,
                                           ptr(x if from_x else y), ptr(dy), ptr(dx),
                                           ctypes.c_int64(rows), n, ctypes.c_float(1.0),
                                           stream()))
    record("softmax backward", rows, n, 3, peers, cands, lambda: dx, ref, copy_tbs, results)


def run_split_bwd(lib, rows, n, copy_tbs, results):
    """The norms' fused backward, rms_norm and layer_norm, bf16: one CTA a row up to 8192
    columns, at 65536 a row split over a cluster; the library's own launcher
    (launch_fused_norm_backward; G0 groups) beside the library's op itself
    (torch.ops.xpuruntime, outputs allocated) and the staged kernel at given stages. Run
    22b also timed the register split walk it replaced (results/row_variants_split_bwd_h200.txt).
    x, dy, weight (and bias) random normal bf16; checked against float32 autograd (dx, then
    the parameter gradients over sqrt(rows))."""
    if n % 16 or n > 65536:
        return
    x = torch.randn(rows, n, device="cuda", dtype=torch.bfloat16)
    dy = torch.randn_like(x)
    w = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    dx = torch.empty_like(x)
    dw = torch.empty_like(w)
    db = torch.empty_like(b)
    lib.xpv_bwd_row_groups.restype = ctypes.c_int64
    groups = lib.xpv_bwd_row_groups(ctypes.c_int64(rows), n)  # the library's workspace rows
    partial = torch.empty(2 * groups, n, device="cuda", dtype=torch.float32)
    mean = x.float().mean(-1)
    rstd = torch.rsqrt(x.float().var(-1, unbiased=False) + 1e-5)
    form = "split" if n > 8192 else "one-CTA"
    for centered, op in [(0, f"rms_norm {form} backward"), (1, f"layer_norm {form} backward")]:
        xf = x.float().requires_grad_()
        wf = w.float().requires_grad_()
        bf = b.float().requires_grad_()
        if centered:
            F.layer_norm(xf, (n,), wf, bf, 1e-5).backward(dy.float())
            ref = torch.cat([xf.grad.flatten(), wf.grad.flatten() / rows ** 0.5,
                             bf.grad.flatten() / rows ** 0.5])
            out = lambda: torch.cat([dx.flatten(), dw.flatten() / rows ** 0.5,
                                     db.flatten() / rows ** 0.5])
            library = lambda: torch.ops.xpuruntime.layer_norm_backward(dy, x, w, mean, rstd,
                                                                      1e-5, "fast")
        else:
            F.rms_norm(xf, (n,), wf, 1e-6).backward(dy.float())
            ref = torch.cat([xf.grad.flatten(), wf.grad.flatten() / rows ** 0.5])
            out = lambda: torch.cat([dx.flatten(), dw.flatten() / rows ** 0.5])
            library = lambda: torch.ops.xpuruntime.rms_norm_backward_v2(dy, x, w, None, 1e-6,
                                                                       "fast")
        del xf, wf, bf
        launched = ctypes.c_int64(0)

        def lib_launch(c=centered):
            rc = lib.xpv_bwd_ring(c, 0, 0, 0, ptr(x), ptr(dy), ptr(w), ptr(mean), ptr(rstd), ptr(dx),
                                  ptr(partial), ptr(dw), ptr(db), ctypes.c_int64(rows), n,
                                  ctypes.byref(launched), stream())
            if rc:
                raise RuntimeError(f"xpv_bwd_ring (library launcher): {rc}")
        lib_launch()
        torch.cuda.synchronize()
        cands = {f"launch_fused_norm_backward (G{launched.value}, library)": lib_launch}
        # The partials' reduction alone, on the library launch's partials (so timed before
        # the ring shapes, whose groups differ, overwrite them): its 16-byte form (max_vec
        # 4, session 18) and the scalar one it replaced (max_vec 1).
        for max_vec in (4, 1):
            def reduce_alone(c=centered, v=max_vec, g=launched.value):
                rc = lib.xpv_param_reduce(c, v, ptr(partial), ctypes.c_int64(g),
                                          ctypes.c_int64(groups), n, ptr(dw), ptr(db), stream())
                if rc:
                    raise RuntimeError(f"xpv_param_reduce max_vec {v}: {rc}")
            cands[f"param_reduce alone, max_vec {max_vec} (G{launched.value})"] = reduce_alone
        # The library's kernel and shape at the ring's stages given, in its tested and its
        # LEAN form (f32 weights, xhat in one FMA, no column tests; layer_norm's launcher
        # takes LEAN on full rows).
        # Rows the library gives CTAs of 512 also split over a cluster of CTAs of 256 where
        # at most 8 of them hold the row (8192: 2 x 256 x 2; 16384: 4 x 256 x 2).
        threads = [0] + ([256] if 4096 < n <= 8 * 4096 else [])
        shapes = [(s, lean, t) for t in threads for lean in (0, 1) for s in (2, 3, 4)]
        for stages, lean, cta_threads in shapes:
            cta = cta_threads or min(512, n // 16)
            shape = f"{n // (cta * 16)}x{cta}x2"
            ring_groups = ctypes.c_int64(0)

            def ring_launch(c=centered, stages=stages, lean=lean, t=cta_threads, g=ring_groups):
                rc = lib.xpv_bwd_ring(c, stages, lean, t, ptr(x), ptr(dy), ptr(w), ptr(mean),
                                      ptr(rstd), ptr(dx), ptr(partial), ptr(dw), ptr(db),
                                      ctypes.c_int64(rows), n, ctypes.byref(g), stream())
                if rc:
                    raise RuntimeError(f"xpv_bwd_ring S{stages} lean {lean}: {rc}")
            try:
                ring_launch()
                torch.cuda.synchronize()
                lean_name = " lean" if lean else ""
                cands[f"staged {shape} S{stages}{lean_name} (G{ring_groups.value})"] = ring_launch
            except RuntimeError as e:
                print(e)
        peers = {}
        try:
            import xpuruntime.interop.torch  # noqa: F401  (registers torch.ops.xpuruntime)
            library()
            peers["xpuruntime op"] = library
        except Exception as e:  # the library is not built on this machine
            print("no xpuruntime op:", str(e).splitlines()[0][:120])
        record(op, rows, n, 3, peers, cands, out, ref, copy_tbs, results)
        del ref
        torch.cuda.empty_cache()


def _flat_grads(got, rows: int) -> torch.Tensor:
    """A backward op's (dx, dweight[, dbias]) laid out as the references of the norm
    backwards: dx, then the parameter gradients over sqrt(rows); a tensor as it is."""
    if not isinstance(got, (tuple, list)):
        return got
    return torch.cat([t.flatten().float() / (1 if i == 0 else rows ** 0.5)
                      for i, t in enumerate(got)])


def record(op, rows, n, tensors, peers, cands, output, ref, copy_tbs, results):
    nbytes = tensors * rows * n * 2
    rows_out = []
    for name, fn in peers.items():
        try:
            ms = graph_ms(fn)
            rows_out.append({"impl": name, "ms": ms, "err": rel_err(_flat_grads(fn(), rows), ref)})
        except Exception as e:  # a peer that cannot run this shape (Liger at 65536) is listed
            rows_out.append({"impl": name, "ms": None, "error": str(e).splitlines()[0][:120]})
    for name, fn in cands.items():
        try:
            fn()
            torch.cuda.synchronize()
            err = rel_err(output(), ref)
            ms = graph_ms(fn)
            rows_out.append({"impl": name, "ms": ms, "err": err})
        except Exception as e:
            rows_out.append({"impl": name, "ms": None, "error": str(e).splitlines()[0][:120]})
    peer_ms = [r["ms"] for r in rows_out if r["impl"] in peers and r["ms"]]
    best_peer = min(peer_ms) if peer_ms else None
    print(f"\n{op} {rows}x{n} bf16 (minimal bytes {nbytes / 1e6:.0f} MB)")
    for r in sorted(rows_out, key=lambda r: r["ms"] or 1e9):
        if r["ms"] is None:
            print(f"  {r['impl']:<28} failed: {r['error']}")
            continue
        tbs = nbytes / (r["ms"] * 1e-3) / 1e12
        r["pct_copy"] = 100 * tbs / copy_tbs
        r["vs_best_peer"] = best_peer / r["ms"] if best_peer else None
        bad = "  WRONG" if r["err"] > 1e-2 else ""
        print(f"  {r['impl']:<28} {r['ms']:.4f} ms {tbs:5.2f} TB/s {r['pct_copy']:5.1f}% "
              f"{r['vs_best_peer'] or 0:5.2f}x err {r['err']:.1e}{bad}")
    results.append({"op": op, "shape": [rows, n], "dtype": "bfloat16", "rows": rows_out})


def profile(lib, names):
    """Runs each named rms_norm variant (and the peers) twice on 32768x4096 bf16, for
    ncu to count: no timing."""
    rows, n = 32768, 4096
    x = torch.randn(rows, n, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, device="cuda", dtype=torch.bfloat16)
    y = torch.empty_like(x)
    rstd = torch.empty(rows, device="cuda", dtype=torch.float32)
    steps = {}
    liger = _liger("rms_norm", "LigerRMSNormFunction")
    if liger is not None:
        steps["liger"] = lambda: liger(x, w, 1e-6)
    compiled = torch.compile(lambda a, b: F.rms_norm(a, (n,), b, 1e-6))
    steps["torch.compile"] = lambda: compiled(x, w)
    try:
        from xpuruntime.interop import torch as xt
        steps["xpuruntime"] = lambda: xt.rms_norm(x, w, eps=1e-6)
    except Exception as e:  # the library is not built on this machine
        print("no xpuruntime:", e)
    table = {v[0]: v[1:] for v in rms_variants(n)}
    for name in names:
        kind, threads, items, ld, st = table[name]
        steps[name] = lambda kind=kind, threads=threads, items=items, ld=ld, st=st: lib.xpv_rms(
            kind, threads, items, ld, st, ptr(x), ptr(w), ptr(y), ptr(rstd), ctypes.c_int64(rows),
            n, ctypes.c_float(1e-6), stream())
    for fn in steps.values():  # compile / warm up outside the profiled launches
        fn()
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStart()
    for name, fn in steps.items():
        print("profiling", name, flush=True)
        for _ in range(2):
            fn()
        torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="row_variants.json")
    ap.add_argument("--ops", default="rms_norm,softmax,layer_norm")
    ap.add_argument("--build-dir", default="/tmp")
    ap.add_argument("--shapes", default="",
                    help="comma-separated ROWSxN to run (default: all of SHAPES)")
    ap.add_argument("--profile", default="",
                    help="comma-separated rms_norm 32768x4096 variants to run twice each, with "
                         "Liger, torch.compile and the library (for ncu), then exit")
    args = ap.parse_args()
    lib = build(args.build_dir)
    if args.profile:
        profile(lib, args.profile.split(","))
        return
    nbytes = 1 << 30
    src = torch.empty(nbytes, dtype=torch.uint8, device="cuda").random_()
    dst = torch.empty_like(src)
    # The ceiling: do_bench of torch's copy (as bench_ops.py); a graph-replayed memcpy node
    # ran at 2.76 TB/s in run 13, a copy kernel at 3.90, do_bench's copy_ at 4.25.
    copies = {"torch copy_ (graph)": graph_ms(lambda: dst.copy_(src))}
    for ilp, waves in [(1, 1), (4, 1), (4, 4)]:
        copies[f"copy16 ilp{ilp} x{waves}"] = graph_ms(
            lambda ilp=ilp, waves=waves: lib.xpv_copy(ilp, waves, ptr(src), ptr(dst),
                                                      ctypes.c_int64(nbytes), stream()))
    copy_rates = {k: 2 * nbytes / (ms * 1e-3) / 1e12 for k, ms in copies.items()}
    copy_rates["torch copy_ (do_bench)"] = copy_bandwidth_tbs(nbytes)
    copy_tbs = copy_rates["torch copy_ (do_bench)"]
    print(torch.cuda.get_device_name(), {k: round(v, 3) for k, v in copy_rates.items()}, "TB/s")
    del src, dst
    results = []
    runners = {"rms_norm": run_rms, "softmax": run_softmax, "layer_norm": run_layer,
               "rms_norm_backward": run_rms_bwd, "softmax_backward": run_softmax_bwd,
               "split_backward": run_split_bwd}
    for op in args.ops.split(","):
        shapes = ([tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
                  if args.shapes else SHAPES)
        for rows, n in shapes:
            if op in ("rms_norm_backward", "softmax_backward") and n > 8192:
                continue  # one CTA of registers does not hold x, dy and the accumulators
            runners[op](lib, rows, n, copy_tbs, results)
            torch.cuda.empty_cache()
            with open(args.out, "w") as f:
                json.dump({"device": torch.cuda.get_device_name(), "copy_tbs": copy_rates,
                           "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
