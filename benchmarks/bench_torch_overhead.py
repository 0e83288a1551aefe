"""Per-call host time of xpuruntime's torch ops in eager mode, on a tiny input (8 x 128 bf16
on CUDA, f32 on the CPU), against torch's own op and Liger where installed: ``calls`` calls
issued back to back and waited for once, so the time a call is what the host spends on it
(the kernels are a few microseconds). Forward, and forward + backward (``y.backward(dy)``).
Prints a table and writes JSON; ``--profile OP`` prints the cProfile of one op's forward
instead (where the host time goes).

    python3 benchmarks/bench_torch_overhead.py --out benchmarks/results/torch_overhead.json
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import statistics
import sys
import time

import torch
import torch.nn.functional as F

import xpuruntime.interop.torch as xt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _liger import liger_apply as _liger  # noqa: E402
from _report import write_and_print  # noqa: E402


def cases(device: str, dtype: torch.dtype):
    """(op, {impl: fn(*inputs)}, inputs): the inputs are leaves that require grad."""
    g = torch.Generator(device=device).manual_seed(0)

    def t(*shape):
        return torch.randn(*shape, device=device, dtype=dtype, generator=g).requires_grad_()
    x, w, b = t(8, 128), t(128), t(128)
    rms, ln = _liger("rms_norm", "LigerRMSNormFunction"), _liger("layer_norm", "LigerLayerNormFunction")
    sm, silu = _liger("softmax", "LigerSoftmaxFunction"), _liger("swiglu", "LigerSiLUMulFunction")
    on_cuda = device == "cuda"
    yield ("rms_norm", {"xpuruntime": lambda a, c: xt.rms_norm(a, c),
                        "torch": lambda a, c: F.rms_norm(a, (128,), c, 1e-6),
                        **({"liger": lambda a, c: rms(a, c, 1e-6)} if rms and on_cuda else {})},
           (x, w))
    yield ("layer_norm", {"xpuruntime": lambda a, c, d: xt.layer_norm(a, c, d),
                          "torch": lambda a, c, d: F.layer_norm(a, (128,), c, d, 1e-5),
                          **({"liger": lambda a, c, d: ln(a, c, d, 1e-5)} if ln and on_cuda else {})},
           (x, w, b))
    yield ("softmax", {"xpuruntime": lambda a: xt.softmax(a),
                       "torch": lambda a: torch.softmax(a, -1),
                       **({"liger": lambda a: sm(a)} if sm and on_cuda else {})}, (x,))
    yield ("swiglu", {"xpuruntime": lambda a, c: xt.swiglu(a, c),
                      "torch": lambda a, c: F.silu(a) * c,
                      **({"liger": lambda a, c: silu(a, c)} if silu and on_cuda else {})},
           (x, t(8, 128)))


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def per_call_us(step, device: str, calls: int, repeats: int = 7) -> float:
    """Median over ``repeats`` of the mean time of ``calls`` back-to-back ``step()``s."""
    for _ in range(20):
        step()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            step()
        _sync(device)
        times.append((time.perf_counter() - t0) / calls * 1e6)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="benchmarks/results/torch_overhead.json")
    ap.add_argument("--calls", type=int, default=500)
    ap.add_argument("--profile", default="", help="cProfile one op's xpuruntime forward")
    args = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    rows = []
    for op, impls, inputs in cases(device, dtype):
        if args.profile:
            if op != args.profile:
                continue
            fn = impls["xpuruntime"]
            with torch.no_grad():
                per_call_us(lambda: fn(*inputs), device, 50)
                prof = cProfile.Profile()
                prof.enable()
                for _ in range(args.calls):
                    fn(*inputs)
                prof.disable()
            _sync(device)
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            return
        dy = torch.ones_like(impls["torch"](*inputs))
        for impl, fn in impls.items():
            with torch.no_grad():
                fwd = per_call_us(lambda: fn(*inputs), device, args.calls)
            both = per_call_us(lambda: fn(*inputs).backward(dy), device, args.calls)
            rows.append({"op": op, "impl": impl, "fwd_us": fwd, "fwd_bwd_us": both})
    name = torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu"
    report = {"device": name, "dtype": str(dtype).removeprefix("torch."), "torch": torch.__version__,
              "python": platform.python_version(), "rows": rows}
    write_and_print(args.out, report, f"per-call host time, eager, 8 x 128 {report['dtype']}, {name}",
                    [("op", "op", "<12"), ("impl", "impl", "<12"), ("fwd us", "fwd_us", ">9.1f"),
                     ("fwd+bwd us", "fwd_bwd_us", ">12.1f")])


if __name__ == "__main__":
    main()
