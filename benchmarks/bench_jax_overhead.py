"""Per-call overhead of xpuruntime's JAX ops on a tiny input (1 x 128), against the
same function written in jnp, both under jax.jit: the time of one call that is waited
for (dispatch + launch + sync), median over many calls. Prints a table, writes JSON.
Goal (reported, not asserted): xpuruntime <= 1.2x the jnp function."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

import xpuruntime.jax as xj  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import write_and_print  # noqa: E402


def per_call_us(fn, *args, calls: int = 2000) -> float:
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e6


def cases():
    x = jnp.asarray(jax.random.normal(jax.random.PRNGKey(0), (1, 128)))
    w = jnp.ones(128)
    f32 = lambda a: a.astype(jnp.float32)  # noqa: E731
    yield ("rms_norm", lambda a, b: xj.rms_norm(a, b),
           lambda a, b: a * jax.lax.rsqrt(jnp.mean(a * a, -1, keepdims=True) + 1e-6) * b, (x, w))
    yield ("layer_norm", lambda a, b: xj.layer_norm(a, b, b),
           lambda a, b: (a - a.mean(-1, keepdims=True)) * jax.lax.rsqrt(a.var(-1, keepdims=True) + 1e-5) * b + b,
           (x, w))
    yield ("softmax", lambda a, b: xj.softmax(a), lambda a, b: jax.nn.softmax(f32(a), -1), (x, w))
    yield ("swiglu", lambda a, b: xj.swiglu(a, a), lambda a, b: jax.nn.silu(a) * a, (x, w))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="benchmarks/results/jax_overhead.json")
    args = parser.parse_args()
    rows = []
    for name, ours, ref, inputs in cases():
        a = per_call_us(jax.jit(ours), *inputs)
        b = per_call_us(jax.jit(ref), *inputs)
        rows.append({"op": name, "xpuruntime_us": a, "jnp_us": b, "ratio": a / b})
    dev = jax.devices()[0]
    report = {"device": f"{dev.platform}: {dev.device_kind}", "jax": jax.__version__,
              "python": platform.python_version(), "rows": rows}
    write_and_print(args.out, report, f"per-call time, 1 x 128 f32, {report['device']}",
                    [("op", "op", "<12"), ("xpuruntime us", "xpuruntime_us", ">15.1f"),
                     ("jnp us", "jnp_us", ">10.1f"), ("ratio", "ratio", ">8.2f")])


if __name__ == "__main__":
    main()
