"""Hardware counters of the row kernels beside their peers, for ncu: what limits a row.

Runs, between cudaProfilerStart and cudaProfilerStop, each (op, shape, pass) case of
``CASES`` once per torch implementation of bench_ops.py (xpuruntime's torch frontend and
the peers: torch.compile, Liger, QuACK where installed), after a warm-up outside the
profiled region. Cases are separated by one marker launch (a one-element fill), so the
kernels of a case are the rows between two markers in ncu's launch order; the script
prints the order. Run it under ncu, then turn ncu's CSV into a table:

    ncu --clock-control none --profile-from-start off --kernel-name-base demangled \\
        --print-units base --csv --page raw \\
        --section SpeedOfLight --section Occupancy --section LaunchStats \\
        --section WarpStateStats --metrics dram__bytes_read.sum,dram__bytes_write.sum,lts__t_bytes.sum \\
        python3 benchmarks/profile_rows.py > raw.csv
    python3 benchmarks/profile_rows.py --table raw.csv --out profile_rows.json
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# (op, (rows, n), dtype, pass, implementations): the rows of ops_h200.txt that miss a goal
# of issue 16 (a forward under 1.0x its peer or 90% of copy, a cluster backward under 85%
# of its floor, the one-CTA backward at 8192 columns under 80%), each beside the peer it
# misses against.
CASES = [
    ("rms_norm", (8192, 8192), "bfloat16", "fwd", ["xpuruntime (torch)", "torch.compile", "quack"]),
    ("rms_norm", (4096, 65536), "bfloat16", "fwd", ["xpuruntime (torch)", "quack"]),
    ("rms_norm", (16384, 4096), "float32", "fwd", ["xpuruntime (torch)", "torch.compile"]),
    ("rms_norm", (4096, 65536), "bfloat16", "fwd+bwd", ["xpuruntime (torch)"]),
    ("rms_norm", (8192, 8192), "bfloat16", "fwd+bwd", ["xpuruntime (torch)", "quack"]),
    ("layer_norm", (8192, 8192), "bfloat16", "fwd", ["xpuruntime (torch)", "torch.compile"]),
    ("layer_norm", (4096, 65536), "bfloat16", "fwd", ["xpuruntime (torch)"]),
    ("layer_norm", (16384, 4096), "float32", "fwd", ["xpuruntime (torch)", "torch.compile"]),
    ("layer_norm", (4096, 65536), "bfloat16", "fwd+bwd", ["xpuruntime (torch)"]),
    ("layer_norm", (8192, 8192), "bfloat16", "fwd+bwd", ["xpuruntime (torch)", "liger"]),
    ("softmax", (8192, 8192), "bfloat16", "fwd", ["xpuruntime (torch)", "liger", "quack"]),
    ("softmax", (4096, 65536), "bfloat16", "fwd", ["xpuruntime (torch)", "quack"]),
    ("softmax", (8192, 8192), "bfloat16", "fwd+bwd", ["xpuruntime (torch)", "quack"]),
]

# ncu raw-page columns kept in the table: (heading, column, scale).
COLUMNS = [
    ("us", "gpu__time_duration.sum", 1e-3),
    ("DRAM %peak", "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed", 1),
    ("DRAM rd MB", "dram__bytes_read.sum", 1e-6),
    ("DRAM wr MB", "dram__bytes_write.sum", 1e-6),
    ("L2 MB", "lts__t_bytes.sum", 1e-6),
    ("SM %peak", "sm__throughput.avg.pct_of_peak_sustained_elapsed", 1),
    ("occ %", "sm__warps_active.avg.pct_of_peak_sustained_active", 1),
    ("occ max %", "sm__maximum_warps_per_active_cycle_pct", 1),
    ("regs", "launch__registers_per_thread", 1),
    ("cyc/issue", "smsp__average_warp_latency_per_inst_issued.ratio", 1),
]
# Stall reasons, in cycles a warp waits per issued instruction (WarpStateStats).
STALL_PREFIX = "smsp__average_warps_issue_stalled_"
STALL_SUFFIX = "_per_issue_active.ratio"


def run_cases(only: str = ""):
    """Warms up, then runs every case's implementations once each, profiled (only the
    cases whose "op ROWSxN dtype pass" contains ``only``, where given)."""
    import torch
    from _op_specs import SPECS

    steps = []
    for op, shape, dtype, pass_, impls in CASES:
        if only not in f"{op} {shape[0]}x{shape[1]} {dtype} {pass_}":
            continue
        spec = SPECS[op]
        gen = torch.Generator(device="cuda")
        gen.manual_seed(0)
        inputs = spec.make_inputs(shape, dtype, gen)
        dy = torch.randn(shape, device="cuda", dtype=getattr(torch, dtype), generator=gen)
        available = spec.torch_impls()
        for impl in impls:
            fn = available.get(impl)
            if fn is None:
                print(f"# {op} {shape} {dtype} {pass_}: no {impl}", flush=True)
                continue
            if pass_ == "fwd":
                step = lambda fn=fn, inputs=inputs: fn(*inputs)
            else:
                leaves = [t.detach().requires_grad_() for t in inputs]
                def step(fn=fn, leaves=leaves, dy=dy):
                    for t in leaves:
                        t.grad = None  # a fresh gradient, not an accumulation
                    fn(*leaves).backward(dy)
            step()  # compile and warm up outside the profiled region
            steps.append((f"{op} {shape[0]}x{shape[1]} {dtype} {pass_}", impl, step))
    torch.cuda.synchronize()
    marker = torch.empty(1, device="cuda")
    torch.cuda.cudart().cudaProfilerStart()
    for case, impl, step in steps:
        marker.fill_(0)
        print(f"# profiled: {case} | {impl}", flush=True)
        step()
        torch.cuda.synchronize()
    marker.fill_(0)
    torch.cuda.synchronize()
    torch.cuda.cudart().cudaProfilerStop()
    return [(case, impl) for case, impl, _ in steps]


def _number(text: str):
    """A CSV cell as a float (thousands separators dropped), None where it is not a number."""
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def table(raw_path: str, order: list[tuple[str, str]]) -> list[dict]:
    """ncu's raw CSV as rows {case, impl, kernel, metrics...}: kernels between markers
    (fills of one element) belong to the step in ``order`` at that position."""
    with open(raw_path) as f:
        text = f.read()
    start = text.find('"ID"')
    if start < 0:
        raise SystemExit(f"{raw_path}: no ncu CSV header")
    reader = csv.DictReader(io.StringIO(text[start:]))
    rows, step = [], -1
    for rec in reader:
        name = rec.get("Kernel Name", "")
        if not rec.get("ID", "").strip().isdigit():
            continue  # the units row
        if "FillFunctor" in name and _number(rec.get("launch__grid_size", "0") or "0") == 1:
            step += 1
            continue
        if not 0 <= step < len(order):
            continue
        case, impl = order[step]
        row = {"case": case, "impl": impl, "kernel": name[:60]}
        for head, col, scale in COLUMNS:
            v = _number(rec.get(col, ""))
            row[head] = None if v is None else v * scale
        stalls = {k[len(STALL_PREFIX):-len(STALL_SUFFIX)]: _number(v)
                  for k, v in rec.items()
                  if k.startswith(STALL_PREFIX) and k.endswith(STALL_SUFFIX) and "not_issued" not in k}
        top = sorted(((v, k) for k, v in stalls.items() if v), reverse=True)[:3]
        row["top stalls"] = ", ".join(f"{k} {v:.1f}" for v, k in top)
        rows.append(row)
    return rows


def print_table(rows: list[dict]) -> str:
    """The rows of table() as text, one block a case."""
    heads = ["impl", "kernel"] + [h for h, _, _ in COLUMNS] + ["top stalls"]
    lines, case = [], None
    for r in rows:
        if r["case"] != case:
            case = r["case"]
            lines.append(f"\n{case}")
            lines.append("  " + " | ".join(heads))
        cells = [r["impl"], r["kernel"]]
        cells += ["-" if r[h] is None else f"{r[h]:.1f}" for h, _, _ in COLUMNS]
        cells.append(r["top stalls"])
        lines.append("  " + " | ".join(cells))
    return "\n".join(lines)


def main():
    """Runs the cases (under ncu), or with --table turns ncu's CSV into a table and JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", help="ncu's raw CSV (with the script's '# profiled' lines) to "
                                    "turn into a table, instead of running the cases")
    ap.add_argument("--out", default="profile_rows.json")
    ap.add_argument("--only", default="", help='run the cases whose "op ROWSxN dtype pass" '
                                               'contains this, e.g. "layer_norm 4096x65536"')
    args = ap.parse_args()
    if not args.table:
        run_cases(args.only)
        return
    order = []
    with open(args.table) as f:
        for line in f:
            if line.startswith("# profiled: "):
                case, impl = line[len("# profiled: "):].rstrip("\n").split(" | ")
                order.append((case, impl))
    rows = table(args.table, order)
    text = print_table(rows)
    print(text)
    with open(args.out, "w") as f:
        json.dump({"rows": rows}, f, indent=1)
    with open(os.path.splitext(args.out)[0] + ".txt", "w") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
