"""rms_norm forward and forward+backward on one CUDA device, side by side:
xpuruntime (torch and JAX frontends) against torch eager F.rms_norm,
torch.compile, jnp under jax.jit and Liger-Kernel when installed.

Rates are TB/s of minimal bytes (each input read once, each output written
once) and fractions of a device copy measured in the same run. Prints a table
and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # _timing

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share the GPU with torch

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import xpuruntime.interop.torch as xt  # noqa: E402
import xpuruntime.jax as xj  # noqa: E402
from _timing import copy_bandwidth_tbs, jax_median_ms, torch_median_ms  # noqa: E402

EPS = 1e-6
SHAPES = [(32768, 4096, "bfloat16"), (8192, 8192, "bfloat16"), (4096, 65536, "bfloat16"),
          (16384, 4096, "float32")]


def jnp_rms_norm(x, w):
    xf = x.astype(jnp.float32)
    y = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + EPS)
    return (y * w.astype(jnp.float32)).astype(x.dtype)


def torch_formula(x, w):
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS) * w.float()).to(x.dtype)


def liger():
    try:
        from liger_kernel.ops.rms_norm import LigerRMSNormFunction
    except ImportError:
        return None
    return lambda x, w: LigerRMSNormFunction.apply(x, w, EPS)


def torch_contenders():
    compiled = torch.compile(torch_formula)
    out = {
        "xpuruntime (torch)": lambda x, w: xt.rms_norm(x, w, EPS),
        "torch F.rms_norm": lambda x, w: F.rms_norm(x, (x.shape[-1],), w, EPS),
        "torch.compile": compiled,
    }
    if (lg := liger()) is not None:
        out["liger"] = lg
    return out


def bench_torch(fn, x, w, dy, backward: bool) -> float:
    if not backward:
        return torch_median_ms(lambda: fn(x, w))
    xg, wg = x.detach().requires_grad_(), w.detach().requires_grad_()

    def step():
        xg.grad = wg.grad = None
        fn(xg, wg).backward(dy)
    return torch_median_ms(step)


def bench_jax(fn, x, w, dy, backward: bool) -> float:
    if not backward:
        return jax_median_ms(jax.jit(fn), x, w)

    @jax.jit
    def step(a, b, g):
        _, vjp = jax.vjp(fn, a, b)
        return vjp(g)
    return jax_median_ms(step, x, w, dy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/rms_norm.json")
    parser.add_argument("--quick", action="store_true", help="first shape only")
    args = parser.parse_args()

    copy = copy_bandwidth_tbs()
    rows = []
    for m, n, dtype in SHAPES[:1] if args.quick else SHAPES:
        tdt = getattr(torch, dtype)
        x = torch.randn(m, n, device="cuda", dtype=tdt)
        w = torch.randn(n, device="cuda", dtype=tdt)
        dy = torch.randn(m, n, device="cuda", dtype=tdt)
        jx, jw, jdy = (jnp.asarray(a.cpu().float().numpy(), dtype=dtype) for a in (x, w, dy))
        elem = x.element_size()
        for backward in (False, True):
            # fwd: read x, write y; fwd+bwd adds read x, dy and write dx (weights negligible).
            nbytes = m * n * elem * (5 if backward else 2)
            results = {}
            for name, fn in torch_contenders().items():
                results[name] = bench_torch(fn, x, w, dy, backward)
            results["xpuruntime (jax)"] = bench_jax(lambda a, b: xj.rms_norm(a, b, EPS), jx, jw, jdy, backward)
            results["jnp + jax.jit"] = bench_jax(jnp_rms_norm, jx, jw, jdy, backward)
            for name, ms in results.items():
                tbs = nbytes / (ms * 1e-3) / 1e12
                rows.append({"shape": [m, n], "dtype": dtype, "pass": "fwd+bwd" if backward else "fwd",
                             "impl": name, "ms": ms, "tb_per_s": tbs, "fraction_of_copy": tbs / copy})
            del results
        del x, w, dy, jx, jw, jdy
        torch.cuda.empty_cache()

    report = {"device": torch.cuda.get_device_name(), "copy_tb_per_s": copy,
              "torch": torch.__version__, "jax": jax.__version__, "python": platform.python_version(),
              "rows": rows}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)

    print(f"\nrms_norm on {report['device']}; device copy {copy:.2f} TB/s (read + write)")
    print(f"{'shape':<16}{'dtype':<10}{'pass':<9}{'impl':<22}{'ms':>9}{'TB/s':>8}{'%copy':>7}{'vs best peer':>14}")
    for key in sorted({(tuple(r['shape']), r['dtype'], r['pass']) for r in rows}, key=str):
        group = [r for r in rows if (tuple(r["shape"]), r["dtype"], r["pass"]) == key]
        peers = [r["ms"] for r in group if not r["impl"].startswith("xpuruntime")]
        best = min(peers) if peers else float("nan")
        for r in sorted(group, key=lambda r: r["ms"]):
            print(f"{'x'.join(map(str, key[0])):<16}{key[1]:<10}{key[2]:<9}{r['impl']:<22}"
                  f"{r['ms']:>9.3f}{r['tb_per_s']:>8.2f}{100 * r['fraction_of_copy']:>6.0f}%"
                  f"{best / r['ms']:>13.2f}x")


if __name__ == "__main__":
    main()
