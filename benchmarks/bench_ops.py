"""Every op, forward and forward+backward, on one CUDA device, side by side:
xpuruntime (torch and JAX frontends) against torch eager, torch.compile,
jnp under jax.jit and Liger-Kernel (when installed and it has the op).

Rates are TB/s of minimal bytes (each input read once, each output written
once) and fractions of a device copy measured in the same run: of a 1 GiB copy
(``fraction_of_copy``) and of the same copy moving the row's own bytes
(``fraction_of_sized_copy``: at 268 MB a copy itself pays its ramp and its last
wave, which a 1 GiB copy hides). Torch
implementations are timed twice: eagerly dispatched (``ms``) and as a CUDA-graph
replay of the same step (``graph_ms``, the device alone); rates use the graph
time where capture worked. ``--ops rms_norm,softmax`` picks ops.

The JSON (``--out X.json``) and the printed table (``X.txt``) are rewritten
after every (op, shape) group, so a run killed by a time limit keeps what it
finished; ``--budget-s`` stops starting groups past that many seconds and lists
the groups it skipped in the JSON.
"""

from __future__ import annotations

import time

START = time.monotonic()  # before the heavy imports: a caller's time limit counts them too

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _timing, _op_specs
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with torch

import jax  # noqa: E402
import torch  # noqa: E402

from _op_specs import SPECS  # noqa: E402
from _timing import (capture_graph, copy_bandwidth_tbs, jax_median_ms, sized_copy_tbs,  # noqa: E402
                     torch_median_ms)


def _short_error(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0][:200] if lines else ''}"


def bench_torch(fn, inputs, dy, backward: bool, n_diff: int) -> dict:
    """Times ``fn`` (forward, or forward + ``backward(dy)``) on fixed inputs.

    Returns ``{"ms": eager dispatch, "graph_ms": CUDA-graph replay or None}``
    plus ``"graph_error"`` when capture failed (a host sync in the op, say).
    The inputs double as the graph's static inputs: they never change.
    """
    if backward:
        leaves = [t.detach().requires_grad_(t.is_floating_point() and i < n_diff)
                  for i, t in enumerate(inputs)]

        def step():
            for t in leaves:
                t.grad = None  # a fresh gradient, not accumulation (which reads and writes it)
            fn(*leaves).backward(dy)
    else:
        def step():
            fn(*inputs)
    step()  # torch.compile compiles here, outside any timed region
    out = {"ms": torch_median_ms(step), "graph_ms": None}
    graph = None
    try:
        graph = capture_graph(step)
        out["graph_ms"] = torch_median_ms(graph.replay)
    except Exception as e:  # a failed capture must not end the run: keep the eager time
        out["graph_error"] = _short_error(e)
    del graph
    torch.cuda.empty_cache()  # the graph's private pool, before the next implementation
    return out


def bench_jax(fn, inputs, dy, backward: bool, n_diff: int) -> dict:
    """Per-call time of ``fn`` (or of its forward + VJP) under ``jax.jit``."""
    if not backward:
        return {"ms": jax_median_ms(jax.jit(fn), *inputs), "graph_ms": None}

    @jax.jit
    def step(*args):
        diff, rest, g = args[:n_diff], args[n_diff:-1], args[-1]
        _, vjp = jax.vjp(lambda *d: fn(*d, *rest), *diff)
        return vjp(g)
    return {"ms": jax_median_ms(step, *inputs, dy), "graph_ms": None}


def device_ms(row: dict) -> float:
    """The best device-only time of a row: the graph replay when captured."""
    return row["graph_ms"] if row.get("graph_ms") is not None else row["ms"]


def run_group(name: str, shape, dtype: str, copy: float) -> tuple[list[dict], list[dict]]:
    """Every implementation of op ``name`` at one shape and dtype, both passes.

    Returns (rows, errors); an implementation that raises becomes an error
    entry instead of ending the run.
    """
    spec = SPECS[name]
    key = {"op": name, "shape": list(shape), "dtype": dtype}
    rows, errors = [], []
    # Each group compiles afresh: shapes never share a graph (dynamic=False) and
    # dynamo's per-function recompile limit is never reached across groups.
    torch._dynamo.reset()
    try:
        gen = torch.Generator(device="cuda")
        gen.manual_seed(0)
        inputs = spec.make_inputs(shape, dtype, gen)
        dy = torch.randn(spec.out_shape(shape), device="cuda",
                         dtype=getattr(torch, spec.out_dtype(dtype)), generator=gen)
        jin = spec.jax_inputs(inputs)
        jdy = spec.jax_inputs([dy])[0]
    except Exception as e:
        torch.cuda.empty_cache()
        return [], [{**key, "pass": None, "impl": None, "error": _short_error(e)}]
    for backward in (False, True):
        nbytes = spec.min_bytes(shape, dtype, backward)
        pass_ = "fwd+bwd" if backward else "fwd"
        try:  # the ceiling at these bytes; a failure costs the column, not the run
            sized = sized_copy_tbs(nbytes)
        except Exception as e:
            sized = None
            errors.append({**key, "pass": pass_, "impl": "sized copy", "error": _short_error(e)})
            torch.cuda.empty_cache()
        impls = [(impl, fn, bench_torch, inputs, dy) for impl, fn in spec.torch_impls().items()]
        impls += [(impl, fn, bench_jax, jin, jdy) for impl, fn in spec.jax_impls().items()]
        for impl, fn, bench, args, grad in impls:
            try:
                res = bench(fn, args, grad, backward, spec.n_diff)
            except Exception as e:
                errors.append({**key, "pass": pass_, "impl": impl, "error": _short_error(e)})
                torch.cuda.empty_cache()
                continue
            row = {**key, "pass": pass_, "impl": impl, **res}
            tbs = nbytes / (device_ms(row) * 1e-3) / 1e12
            rows.append({**row, "tb_per_s": tbs, "fraction_of_copy": tbs / copy,
                         "sized_copy_tb_per_s": sized,
                         "fraction_of_sized_copy": tbs / sized if sized else None})
    del inputs, dy, jin, jdy
    torch.cuda.empty_cache()
    return rows, errors


def format_table(report: dict) -> str:
    """The report as a text table; rates and 'vs best peer' use device-only times."""
    lines = [f"{report['device']}; device copy {report['copy_tb_per_s']:.2f} TB/s (read + write)",
             f"{'op':<14}{'shape':<18}{'dtype':<10}{'pass':<9}{'impl':<22}{'ms':>9}{'graph ms':>10}"
             f"{'TB/s':>7}{'%copy':>7}{'%sized':>7}{'vs best peer':>13}"]
    rows = report["rows"]

    def key(r):
        return r.get("op", "?"), tuple(r["shape"]), r["dtype"], r["pass"]
    for k in dict.fromkeys(key(r) for r in rows):  # groups in the order they ran
        group = [r for r in rows if key(r) == k]
        peers = [device_ms(r) for r in group if not r["impl"].startswith("xpuruntime")]
        best = min(peers) if peers else float("nan")
        for r in sorted(group, key=device_ms):
            graph = f"{r['graph_ms']:.3f}" if r.get("graph_ms") is not None else "-"
            lines.append(f"{k[0]:<14}{'x'.join(map(str, k[1])):<18}{k[2]:<10}{k[3]:<9}"
                         f"{r['impl']:<22}{r['ms']:>9.3f}{graph:>10}{r['tb_per_s']:>7.2f}"
                         f"{100 * r['fraction_of_copy']:>6.0f}%{_pct(r, 'fraction_of_sized_copy'):>7}"
                         f"{best / device_ms(r):>12.2f}x")
    for e in report.get("errors", []):
        lines.append(f"error: {e['op']} {'x'.join(map(str, e['shape']))} {e['dtype']} {e['pass']} "
                     f"{e['impl']}: {e['error']}")
    for r in rows:
        if r.get("graph_error"):
            lines.append(f"no graph: {r['op']} {'x'.join(map(str, r['shape']))} {r['dtype']} "
                         f"{r['pass']} {r['impl']}: {r['graph_error']}")
    for s in report.get("skipped", []):
        lines.append(f"skipped (budget): {s['op']} {'x'.join(map(str, s['shape']))} {s['dtype']}")
    return "\n".join(lines) + "\n"


def _pct(row: dict, key: str) -> str:
    """``row[key]`` as a percentage, '-' where the row predates the field."""
    return f"{100 * row[key]:.0f}%" if row.get(key) is not None else "-"


def format_summary(report: dict) -> str:
    """One line a (op, shape, dtype, pass): the fastest xpuruntime frontend against
    the fastest peer (device-only ms), their ratio (peer / ours) and our % of copy."""
    lines = [f"{'op':<14}{'shape':<14}{'dtype':<10}{'pass':<9}{'ours ms':>9}{'%copy':>7}"
             f"{'%sized':>7}{'peer ms':>9}  {'fastest peer':<16}{'ratio':>7}"]
    groups: dict = {}
    for r in report["rows"]:
        groups.setdefault((r["op"], "x".join(map(str, r["shape"])), r["dtype"], r["pass"]),
                          []).append(r)
    for (op, shape, dtype, pass_), group in groups.items():
        ours = [r for r in group if r["impl"].startswith("xpuruntime")]
        peers = [r for r in group if not r["impl"].startswith("xpuruntime")]
        if not ours or not peers:
            continue
        o, p = min(ours, key=device_ms), min(peers, key=device_ms)
        lines.append(f"{op:<14}{shape:<14}{dtype:<10}{pass_:<9}{device_ms(o):>9.3f}"
                     f"{100 * o['fraction_of_copy']:>6.0f}%{_pct(o, 'fraction_of_sized_copy'):>7}"
                     f"{device_ms(p):>9.3f}  {p['impl']:<16}"
                     f"{device_ms(p) / device_ms(o):>6.2f}x")
    return "\n".join(lines) + "\n"


def write_report(report: dict, out: str) -> None:
    """Writes ``out`` (JSON) and its ``.txt`` table, each replaced atomically so a
    kill mid-write leaves the previous complete version."""
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    for path, text in ((out, json.dumps(report, indent=2)),
                       (os.path.splitext(out)[0] + ".txt", format_table(report))):
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.replace(path + ".tmp", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", default=",".join(SPECS), help="comma-separated, from: "
                        + ",".join(SPECS))
    parser.add_argument("--out", default="benchmarks/results/ops.json",
                        help="JSON path; the table goes next to it as .txt")
    parser.add_argument("--quick", action="store_true", help="first shape of each op only")
    parser.add_argument("--shapes", default=None,
                        help="comma-separated shapes to keep, e.g. 4096x65536 (default: all)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="start no (op, shape) group after this many seconds from process "
                             "start; a started group runs to its end")
    args = parser.parse_args()
    ops = args.ops.split(",")
    unknown = [o for o in ops if o not in SPECS]
    if unknown:
        parser.error(f"unknown ops {unknown}; known: {list(SPECS)}")
    groups = [(name, shape, dtype) for name in ops
              for shape, dtype in (SPECS[name].shapes[:1] if args.quick else SPECS[name].shapes)]
    if args.shapes:
        keep = set(args.shapes.split(","))
        groups = [g for g in groups if "x".join(map(str, g[1])) in keep]
    report = {"device": torch.cuda.get_device_name(), "copy_tb_per_s": copy_bandwidth_tbs(),
              "torch": torch.__version__, "jax": jax.__version__,
              "python": platform.python_version(), "argv": sys.argv[1:],
              "budget_s": args.budget_s, "elapsed_s": None, "finished": False,
              "rows": [], "errors": [], "skipped": []}
    for i, (name, shape, dtype) in enumerate(groups):
        if args.budget_s is not None and time.monotonic() - START > args.budget_s:
            report["skipped"] = [{"op": n, "shape": list(s), "dtype": d} for n, s, d in groups[i:]]
            print(f"budget of {args.budget_s:.0f} s spent: skipping {len(groups) - i} groups",
                  flush=True)
            break
        t0 = time.monotonic()
        rows, errors = run_group(name, shape, dtype, report["copy_tb_per_s"])
        report["rows"] += rows
        report["errors"] += errors
        report["elapsed_s"] = time.monotonic() - START
        write_report(report, args.out)
        print(f"{name} {'x'.join(map(str, shape))} {dtype}: {len(rows)} rows, {len(errors)} errors"
              f" in {time.monotonic() - t0:.0f} s (total {report['elapsed_s']:.0f} s)", flush=True)
    report["finished"] = True
    report["elapsed_s"] = time.monotonic() - START
    write_report(report, args.out)
    print("\n" + format_table(report), end="")
    print("\n" + format_summary(report), end="")


if __name__ == "__main__":
    main()
