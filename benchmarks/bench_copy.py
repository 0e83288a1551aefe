"""The copy ceiling against the bytes moved, on one CUDA device: what a kernel that
moves as many bytes as a bench_ops row can reach. Three copies, each of a buffer of
half the bytes (read once, written once):

- ``copy_``: torch's ``dst.copy_(src)`` dispatched eagerly, do_bench's median (the
  reference of bench_ops' ``fraction_of_copy``, there at 1 GiB each way);
- ``copy_ graph``: the same step replayed from a CUDA graph (a memcpy node);
- ``neg graph``: ``torch.neg(src, out=dst)`` in bfloat16 replayed from a graph: a
  plain elementwise kernel (torch's vectorized loop), the nearest a kernel's own copy.

    python3 benchmarks/bench_copy.py --out copy.json   (table in copy.txt)
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import capture_graph, torch_median_ms  # noqa: E402

# Bytes moved (read + write): 64 MB to 4.3 GB in steps of sqrt(2), and the byte counts of
# bench_ops' 8192x8192 bf16 rows (268 MB forward, 671 MB forward + backward).
SIZES = sorted({int(2 ** (26 + k / 2)) for k in range(13)} | {268435456, 671088640})


def rates(moved: int) -> dict:
    """TB/s of the three copies moving ``moved`` bytes."""
    n = moved // 2
    src = torch.empty(n // 2, dtype=torch.bfloat16, device="cuda").normal_()
    dst = torch.empty_like(src)
    out = {"copy_": torch_median_ms(lambda: dst.copy_(src))}
    for name, step in (("copy_ graph", lambda: dst.copy_(src)),
                       ("neg graph", lambda: torch.neg(src, out=dst))):
        graph = capture_graph(step)
        out[name] = torch_median_ms(graph.replay)
        del graph
    del src, dst
    torch.cuda.empty_cache()
    return {k: moved / (ms * 1e-3) / 1e12 for k, ms in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results/copy.json",
                        help="JSON path; the table goes next to it as .txt")
    args = parser.parse_args()
    rows = [{"bytes_moved": s, **{f"{k} TB/s": v for k, v in rates(s).items()}} for s in SIZES]
    ref = max(r["copy_ TB/s"] for r in rows)
    lines = [f"{torch.cuda.get_device_name()}: copy rate against bytes moved (TB/s; % of the "
             f"fastest copy_ row, {ref:.2f})",
             f"{'MB moved':>10}{'copy_':>9}{'%':>6}{'copy_ graph':>13}{'neg graph':>11}{'%':>6}"]
    for r in rows:
        lines.append(f"{r['bytes_moved'] / 1e6:>10.0f}{r['copy_ TB/s']:>9.2f}"
                     f"{100 * r['copy_ TB/s'] / ref:>5.0f}%{r['copy_ graph TB/s']:>13.2f}"
                     f"{r['neg graph TB/s']:>11.2f}{100 * r['neg graph TB/s'] / ref:>5.0f}%")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "rows": rows}, f, indent=2)
    with open(os.path.splitext(args.out)[0] + ".txt", "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
