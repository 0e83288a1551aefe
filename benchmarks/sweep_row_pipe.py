"""The pipelined row kernels (kernels/common/row_pipe.cuh) against their launch
inputs: the vectors a thread holds (XPURUNTIME_ROW_ITEMS: 1, 2, default 4, i.e.
threads a row), the bytes kept in flight per SM (XPURUNTIME_ROW_INFLIGHT_KB;
default: the device's read bandwidth x 4 us / SMs) and the most CTAs an SM
(XPURUNTIME_ROW_CTAS). For each setting, xpuruntime's torch ops at the benchmark's
row shapes, forward and forward + backward, as CUDA-graph replays (device time),
with each forward checked against torch in f32 (relative error).

    python benchmarks/sweep_row_pipe.py [--out sweep.json] [--ops rms_norm,softmax]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import xpuruntime.interop.torch as xt  # noqa: E402
from _timing import copy_bandwidth_tbs, torch_median_ms  # noqa: E402

SHAPES = [((32768, 4096), torch.bfloat16), ((8192, 8192), torch.bfloat16),
          ((4096, 65536), torch.bfloat16), ((16384, 4096), torch.float32)]
# (name, env): None leaves the variable unset (the device-derived default).
SETTINGS = [("default", {}), ("items2", {"XPURUNTIME_ROW_ITEMS": "2"}),
            ("items1", {"XPURUNTIME_ROW_ITEMS": "1"}),
            ("24KB", {"XPURUNTIME_ROW_INFLIGHT_KB": "24"}),
            ("144KB", {"XPURUNTIME_ROW_INFLIGHT_KB": "144"})]
ENV_KEYS = ("XPURUNTIME_ROW_INFLIGHT_KB", "XPURUNTIME_ROW_CTAS", "XPURUNTIME_ROW_ITEMS")


def _ops():
    """name -> (xpuruntime fn, torch f32 reference fn, number of [N] parameters)."""
    return {
        "rms_norm": (lambda x, w: xt.rms_norm(x, w, 1e-6),
                     lambda x, w: F.rms_norm(x.float(), x.shape[-1:], w.float(), 1e-6), 1),
        "layer_norm": (lambda x, w, b: xt.layer_norm(x, w, b, 1e-5),
                       lambda x, w, b: F.layer_norm(x.float(), x.shape[-1:], w.float(),
                                                    b.float(), 1e-5), 2),
        "softmax": (lambda x: xt.softmax(x), lambda x: torch.softmax(x.float(), -1), 0),
    }


def graph_ms(step) -> float:
    """Median device time of ``step`` replayed from a CUDA graph."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            step()
    torch.cuda.current_stream().wait_stream(side)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g, capture_error_mode="thread_local"):
        step()
    ms = torch_median_ms(g.replay, warmup_ms=10, rep_ms=60)
    del g
    return ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="sweep_row_pipe.json")
    parser.add_argument("--ops", default="rms_norm,layer_norm,softmax")
    args = parser.parse_args()
    copy = copy_bandwidth_tbs()
    ops = _ops()
    rows = []
    gen = torch.Generator(device="cuda")
    gen.manual_seed(0)
    for name in args.ops.split(","):
        fn, ref, n_param = ops[name]
        for shape, dt in SHAPES:
            x = torch.randn(shape, device="cuda", dtype=dt, generator=gen)
            params = [torch.randn(shape[-1:], device="cuda", dtype=dt, generator=gen)
                      for _ in range(n_param)]
            dy = torch.randn(shape, device="cuda", dtype=dt, generator=gen)
            want = ref(x, *params)
            leaves = [t.detach().requires_grad_() for t in (x, *params)]

            def bwd_step():
                for t in leaves:
                    t.grad = None
                fn(*leaves).backward(dy)
            per = x.numel() * x.element_size()
            for label, env in SETTINGS:
                for k in ENV_KEYS:
                    os.environ.pop(k, None)
                os.environ.update(env)
                err = ((fn(x, *params).float() - want).norm() / want.norm()).item()
                fwd = graph_ms(lambda: fn(x, *params))
                both = graph_ms(bwd_step)
                row = {"op": name, "shape": list(shape), "dtype": str(dt).split(".")[-1],
                       "setting": label, "fwd_ms": fwd, "fwd_bwd_ms": both, "rel_err": err,
                       "fwd_copy": 2 * per / (fwd * 1e-3) / 1e12 / copy,
                       "bwd_floor": 3 * per / ((both - fwd) * 1e-3) / 1e12 / copy}
                rows.append(row)
                print(f"{name:<11}{'x'.join(map(str, shape)):<12}{row['dtype']:<9}{label:<8}"
                      f" fwd {fwd:.4f} ({100 * row['fwd_copy']:.0f}%)  fwd+bwd {both:.4f}"
                      f"  bwd {both - fwd:.4f} ({100 * row['bwd_floor']:.0f}%)  err {err:.1e}",
                      flush=True)
            for k in ENV_KEYS:
                os.environ.pop(k, None)
            del x, params, dy, want, leaves
            torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "copy_tb_per_s": copy, "rows": rows},
                  f, indent=1)


if __name__ == "__main__":
    main()
