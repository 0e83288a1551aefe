"""Every op, forward and forward+backward, on one CUDA device, side by side:
xpuruntime (torch and JAX frontends) against torch eager, torch.compile,
jnp under jax.jit and Liger-Kernel (when installed and it has the op).

Rates are TB/s of minimal bytes (each input read once, each output written
once) and fractions of a device copy measured in the same run. Prints a table
and writes JSON (``--out``). ``--ops rms_norm,softmax`` picks ops.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _timing, _op_specs
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with torch

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402

from _op_specs import SPECS  # noqa: E402
from _timing import copy_bandwidth_tbs, jax_median_ms, torch_median_ms  # noqa: E402


def bench_torch(fn, inputs, dy, backward: bool, n_diff: int) -> float:
    if not backward:
        return torch_median_ms(lambda: fn(*inputs))
    leaves = [t.detach().requires_grad_(t.is_floating_point() and i < n_diff)
              for i, t in enumerate(inputs)]

    def step():
        for t in leaves:
            t.grad = None
        fn(*leaves).backward(dy)
    return torch_median_ms(step)


def bench_jax(fn, inputs, dy, backward: bool, n_diff: int) -> float:
    if not backward:
        return jax_median_ms(jax.jit(fn), *inputs)

    @jax.jit
    def step(*args):
        diff, rest, g = args[:n_diff], args[n_diff:-1], args[-1]
        _, vjp = jax.vjp(lambda *d: fn(*d, *rest), *diff)
        return vjp(g)
    return jax_median_ms(step, *inputs, dy)


def run_op(name: str, copy: float, quick: bool) -> list[dict]:
    spec = SPECS[name]
    rows = []
    for shape, dtype in spec.shapes[:1] if quick else spec.shapes:
        inputs = spec.make_inputs(shape, dtype)
        out_dtype = spec.out_dtype(dtype)
        dy = torch.randn(spec.out_shape(shape), device="cuda", dtype=getattr(torch, out_dtype))
        jin = spec.jax_inputs(inputs)
        jdy = jnp.asarray(dy.cpu().float().numpy(), dtype=out_dtype)
        for backward in (False, True):
            nbytes = spec.min_bytes(shape, dtype, backward)
            results = {}
            for impl, fn in spec.torch_impls().items():
                results[impl] = bench_torch(fn, inputs, dy, backward, spec.n_diff)
            for impl, fn in spec.jax_impls().items():
                results[impl] = bench_jax(fn, jin, jdy, backward, spec.n_diff)
            for impl, ms in results.items():
                tbs = nbytes / (ms * 1e-3) / 1e12
                rows.append({"op": name, "shape": list(shape), "dtype": dtype,
                             "pass": "fwd+bwd" if backward else "fwd", "impl": impl, "ms": ms,
                             "tb_per_s": tbs, "fraction_of_copy": tbs / copy})
        del inputs, dy, jin, jdy
        torch.cuda.empty_cache()
    return rows


def print_table(report: dict) -> None:
    print(f"\n{report['device']}; device copy {report['copy_tb_per_s']:.2f} TB/s (read + write)")
    print(f"{'op':<11}{'shape':<18}{'dtype':<10}{'pass':<9}{'impl':<22}{'ms':>9}{'TB/s':>7}"
          f"{'%copy':>7}{'vs best peer':>13}")
    rows = report["rows"]
    keys = sorted({(r["op"], tuple(r["shape"]), r["dtype"], r["pass"]) for r in rows}, key=str)
    for key in keys:
        group = [r for r in rows if (r["op"], tuple(r["shape"]), r["dtype"], r["pass"]) == key]
        peers = [r["ms"] for r in group if not r["impl"].startswith("xpuruntime")]
        best = min(peers) if peers else float("nan")
        for r in sorted(group, key=lambda r: r["ms"]):
            print(f"{key[0]:<11}{'x'.join(map(str, key[1])):<18}{key[2]:<10}{key[3]:<9}"
                  f"{r['impl']:<22}{r['ms']:>9.3f}{r['tb_per_s']:>7.2f}"
                  f"{100 * r['fraction_of_copy']:>6.0f}%{best / r['ms']:>12.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", default=",".join(SPECS))
    parser.add_argument("--out", default="benchmarks/results/ops.json")
    parser.add_argument("--quick", action="store_true", help="first shape of each op only")
    args = parser.parse_args()
    copy = copy_bandwidth_tbs()
    rows = []
    for name in args.ops.split(","):
        rows += run_op(name, copy, args.quick)
    report = {"device": torch.cuda.get_device_name(), "copy_tb_per_s": copy,
              "torch": torch.__version__, "jax": jax.__version__,
              "python": platform.python_version(), "rows": rows}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print_table(report)


if __name__ == "__main__":
    main()
