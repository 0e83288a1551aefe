"""Charts of a ``bench_ops.py`` run: one PNG per JSON, one row of subplots per op
(forward left, forward + backward right), grouped bars of the fraction of the
device copy per implementation at each shape and dtype, and the goal lines
(95% of copy forward, 85% forward + backward).

    python benchmarks/plot_ops.py benchmarks/results/rms_norm_h100.json  # -> rms_norm_h100.png
"""

from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")  # files only; no display on the bench machines
import matplotlib.pyplot as plt  # noqa: E402

PASSES = ("fwd", "fwd+bwd")
GOALS = {"fwd": 0.95, "fwd+bwd": 0.85}


def _impl_order(impls) -> list[str]:
    # xpuruntime first, so its bars sit at the same place in every group.
    return sorted(impls, key=lambda i: (not i.startswith("xpuruntime"), i))


def plot_report(report: dict, out: str, title: str) -> None:
    """Writes the chart of one bench_ops report to ``out`` (PNG).

    Rows without ``op`` (runs before bench_ops recorded it) are grouped under
    ``title``. Bars use the row's ``fraction_of_copy``, which bench_ops computes
    from the CUDA-graph time where there is one; such bars are labelled 'g'.
    """
    rows = report["rows"]
    ops = list(dict.fromkeys(r.get("op", title) for r in rows))
    impls = _impl_order({r["impl"] for r in rows})
    colors = {impl: plt.get_cmap("tab10")(i % 10) for i, impl in enumerate(impls)}
    fig, axes = plt.subplots(len(ops), 2, figsize=(14, 3.4 * len(ops) + 1), squeeze=False,
                             layout="constrained")
    for row_axes, op in zip(axes, ops):
        op_rows = [r for r in rows if r.get("op", title) == op]
        cases = list(dict.fromkeys(("x".join(map(str, r["shape"])), r["dtype"]) for r in op_rows))
        op_impls = _impl_order({r["impl"] for r in op_rows})
        width = 0.8 / max(len(op_impls), 1)
        for ax, pass_ in zip(row_axes, PASSES):
            for j, impl in enumerate(op_impls):
                for k, case in enumerate(cases):
                    hit = [r for r in op_rows if r["pass"] == pass_ and r["impl"] == impl
                           and ("x".join(map(str, r["shape"])), r["dtype"]) == case]
                    if not hit:
                        continue
                    x = k - 0.4 + width * (j + 0.5)
                    ax.bar(x, 100 * hit[0]["fraction_of_copy"], width, color=colors[impl])
                    if hit[0].get("graph_ms") is not None:
                        ax.text(x, 1, "g", ha="center", va="bottom", fontsize=6, color="white")
            ax.axhline(100 * GOALS[pass_], color="black", linestyle="--", linewidth=1)
            ax.set_xticks(range(len(cases)), [f"{s}\n{d}" for s, d in cases], fontsize=8)
            ax.set_xlim(-0.5, len(cases) - 0.5)
            ax.set_ylim(0, 110)
            ax.set_ylabel("% of device copy")
            ax.set_title(f"{op}, {pass_} (goal, dashed: {100 * GOALS[pass_]:.0f}%)", fontsize=10)
            ax.grid(axis="y", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[i]) for i in impls]
    note = ""
    if any(r.get("graph_ms") is not None for r in rows):
        note = " ('g': torch step timed as a CUDA-graph replay)"
    fig.suptitle(f"{report['device']}: minimal bytes / time over a {report['copy_tb_per_s']:.2f}"
                 f" TB/s copy{note}", fontsize=10)
    fig.legend(handles, impls, loc="outside lower center", ncol=min(len(impls), 6), fontsize=9,
               frameon=False)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", nargs="+", help="bench_ops.py output(s)")
    parser.add_argument("--out-dir", default=None, help="where the PNGs go (default: next to "
                        "each JSON, same name)")
    args = parser.parse_args()
    for path in args.json:
        with open(path) as f:
            report = json.load(f)
        if not report["rows"]:
            print(f"{path}: no rows, no chart")
            continue
        stem = os.path.splitext(os.path.basename(path))[0]
        out = os.path.join(args.out_dir or os.path.dirname(path) or ".", stem + ".png")
        plot_report(report, out, title=stem)
        print(out)


if __name__ == "__main__":
    main()
