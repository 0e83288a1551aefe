"""Whole-model training steps: a Hugging Face Llama patched by
``xpuruntime.interop.transformers.patch`` against the unpatched model and against
Liger-Kernel's ``apply_liger_kernel_to_llama`` (instance-level, ``model=``), with and
without the fused linear cross-entropy; and a flax transformer stack with
``xpuruntime.flax`` norms (and the JAX fused linear cross-entropy) against flax's own,
under ``jit``. Reports the step time (forward + backward), peak memory and, for the
patched models, loss and gradients against the unpatched model. Prints a table and
writes JSON (--out).

Each case runs in a fresh subprocess: Liger patches transformers' module globals and
classes, which would leak into the next model built in the same process, and JAX and
torch should not share one process's GPU memory.

Goals (reported, not asserted): each xpuruntime row faster than its Liger pairing, at
least 1.3x the unpatched model, and no more peak memory than Liger's.

    python benchmarks/bench_models.py --out benchmarks/results/models_h200.json
    python benchmarks/bench_models.py --quick   # tiny sizes, CPU: checks the script runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name -> (vocab, batch, sequence); the Llama of issue 14: 4 layers, hidden 2048,
# intermediate 5632, 16 heads, bf16.
TORCH_CASES = {"llama-32k": (32000, 4, 1024), "llama-128k": (128256, 8, 2048)}
QUICK_TORCH_CASES = {"llama-32k": (512, 2, 64), "llama-128k": (2048, 2, 128)}
LLAMA = dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=4,
             num_attention_heads=16, num_key_value_heads=16)
QUICK_LLAMA = dict(hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=4)
# flax stack: vocab, batch, sequence, hidden, heads, intermediate, layers
FLAX = dict(vocab=32000, batch=4, seq=1024, hidden=2048, heads=16, ff=5632, layers=4)
QUICK_FLAX = dict(vocab=512, batch=2, seq=64, hidden=64, heads=4, ff=160, layers=2)


# ---- torch worker -------------------------------------------------------------------------------

def _time_ms(fn, device: str) -> float:
    if device == "cuda":
        sys.path.insert(0, HERE)
        from _timing import torch_median_ms
        return torch_median_ms(fn, warmup_ms=100, rep_ms=500)
    fn()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def _compare(ref, got):
    """Loss difference, the worst gradient cosine and relative error against ``ref``."""
    import torch
    cos, rel = 1.0, 0.0
    for name, g in ref["grads"].items():
        a, b = got["grads"][name].double().flatten(), g.double().flatten()
        if b.norm() > 0:
            cos = min(cos, float(torch.nn.functional.cosine_similarity(a, b, dim=0)))
            rel = max(rel, float((a - b).norm() / b.norm()))
    return {"loss_diff": got["loss"] - ref["loss"], "worst_grad_cos": cos, "worst_grad_rel": rel}


def torch_case(name: str, quick: bool) -> list:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    import xpuruntime.interop.transformers as xtr

    device = "cpu" if quick else "cuda"
    vocab, batch, seq = (QUICK_TORCH_CASES if quick else TORCH_CASES)[name]
    config = LlamaConfig(vocab_size=vocab, max_position_embeddings=seq,
                         **(QUICK_LLAMA if quick else LLAMA))
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    ids = torch.randint(0, vocab, (batch, seq), device=device)

    def step():
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        return out.loss

    def measure(variant, note=""):
        loss = float(step())  # warm up (and compile Triton kernels) before measuring
        grads = _grads(model)
        peak = None
        if device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            step()
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated() / 2**30
        row = {"case": name, "variant": variant, "tokens": batch * seq, "vocab": vocab,
               "step_ms": _time_ms(step, device), "peak_gib": peak, "loss": loss, "note": note}
        return row, {"loss": loss, "grads": grads}

    rows = []
    base, ref = measure("unpatched")
    rows.append(base)
    for variant, fused in (("xpuruntime patch", False), ("xpuruntime patch + fused CE", True)):
        xtr.patch(model, fused_linear_cross_entropy=fused)
        row, got = measure(variant, note=json.dumps(xtr.patched(model), sort_keys=True))
        row.update(_compare(ref, got))
        rows.append(row)
        del got
    xtr.unpatch(model)
    del ref

    try:  # last: Liger's patches cannot be undone
        from liger_kernel.transformers import apply_liger_kernel_to_llama
    except ImportError as exc:
        note = f"liger_kernel not importable ({exc.__class__.__name__}: {exc}); rows skipped"
        rows += [{"case": name, "variant": v, "skipped": True, "note": note}
                 for v in ("liger (no fused CE)", "liger (defaults: fused CE)")]
        return rows
    for variant, fused in (("liger (no fused CE)", False), ("liger (defaults: fused CE)", True)):
        kwargs = {} if fused else dict(fused_linear_cross_entropy=False, cross_entropy=True)
        try:
            apply_liger_kernel_to_llama(model=model, **kwargs)
            row, _ = measure(variant, note="defaults" if fused else "cross_entropy=True, "
                             "fused_linear_cross_entropy=False")
        except Exception as exc:  # keep the rows measured so far
            row = {"case": name, "variant": variant, "skipped": True,
                   "note": f"{exc.__class__.__name__}: {exc}"[:300]}
        rows.append(row)
    return rows


# ---- flax worker --------------------------------------------------------------------------------

def flax_case(name: str, quick: bool) -> list:
    import jax
    import jax.numpy as jnp
    import flax.linen as nn
    import xpuruntime.flax as xf
    import xpuruntime.jax as xj
    sys.path.insert(0, HERE)
    from _timing import jax_median_ms

    s = QUICK_FLAX if quick else FLAX
    bf16 = jnp.bfloat16

    class Block(nn.Module):
        norm: type

        @nn.compact
        def __call__(self, x):
            b, t, d = x.shape
            dense = lambda n: nn.Dense(n, use_bias=False, dtype=bf16)  # noqa: E731
            h = self.norm(dtype=bf16)(x)
            q, k, v = jnp.split(dense(3 * d)(h).reshape(b, t, 3 * s["heads"], d // s["heads"]), 3,
                                axis=2)
            a = jax.nn.dot_product_attention(q, k, v, is_causal=True).reshape(b, t, d)
            x = x + dense(d)(a)
            h = self.norm(dtype=bf16)(x)
            return x + dense(d)(jax.nn.silu(dense(s["ff"])(h)) * dense(s["ff"])(h))

    class Model(nn.Module):
        norm: type

        @nn.compact
        def __call__(self, ids):
            emb = self.param("embed", nn.initializers.normal(0.02), (s["vocab"], s["hidden"]))
            x = emb[ids].astype(bf16)
            for _ in range(s["layers"]):
                x = Block(self.norm)(x)
            head = self.param("head", nn.initializers.normal(0.02), (s["vocab"], s["hidden"]))
            return self.norm(dtype=bf16)(x), head.astype(bf16)

    def unfused(h, head, labels):
        logits = (h @ head.T).astype(jnp.float32)
        lp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(lp, labels[..., None], axis=-1))

    def fused(h, head, labels):
        return xj.fused_linear_cross_entropy(h.reshape(-1, h.shape[-1]), head, labels.reshape(-1))

    kinds = {"RMSNorm": (nn.RMSNorm, xf.RMSNorm), "LayerNorm": (nn.LayerNorm, xf.LayerNorm)}
    ids = jax.random.randint(jax.random.key(0), (s["batch"], s["seq"]), 0, s["vocab"])
    labels = jnp.roll(ids, -1, axis=1)
    rows, base = [], {}
    for kind, (flax_norm, our_norm) in kinds.items():
        variants = [("flax " + kind, flax_norm, unfused), ("xpuruntime.flax " + kind, our_norm, unfused)]
        if kind == "RMSNorm":
            variants.append(("xpuruntime.flax RMSNorm + fused CE", our_norm, fused))
        params = Model(flax_norm).init(jax.random.key(1), ids)  # the same checkpoint for all
        for variant, norm, loss_of in variants:
            model = Model(norm)

            def loss_fn(p, ids, labels, model=model, loss_of=loss_of):
                h, head = model.apply(p, ids)
                return loss_of(h, head, labels)

            step = jax.jit(jax.value_and_grad(loss_fn))
            mem = step.lower(params, ids, labels).compile().memory_analysis()
            loss = float(step(params, ids, labels)[0])
            row = {"case": name, "variant": variant, "norm": kind, "tokens": s["batch"] * s["seq"],
                   "vocab": s["vocab"], "step_ms": jax_median_ms(step, params, ids, labels,
                                                                   batch=5, repeats=7),
                   "peak_gib": None if mem is None else mem.temp_size_in_bytes / 2**30,
                   "loss": loss, "note": "peak = XLA temp memory of the step"}
            base.setdefault(kind, loss)
            row["loss_diff"] = loss - base[kind]
            rows.append(row)
    return rows


# ---- driver -------------------------------------------------------------------------------------

def run_worker(kind: str, name: str, quick: bool) -> list:
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false",
               TORCHINDUCTOR_CACHE_DIR=os.environ.get("TORCHINDUCTOR_CACHE_DIR", "/tmp/inductor-models"))
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", kind, name, path] + \
        (["--quick"] if quick else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    try:
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout)[-2000:]
            print(f"[{kind} {name}] failed ({proc.returncode}):\n{tail}", file=sys.stderr)
            return [{"case": name, "variant": kind, "skipped": True, "note": f"worker failed: {tail[-300:]}"}]
        with open(path) as f:
            rows = json.load(f)
        print(f"[{kind} {name}] {seconds:.0f} s", file=sys.stderr)
        return rows
    finally:
        os.unlink(path)


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def table(rows) -> str:
    lines = [f"{'case':<11} {'variant':<36} {'step ms':>8} {'vs base':>7} {'peak GiB':>8} "
             f"{'loss':>8} {'d loss':>8} {'grad cos':>8}"]
    base = {}
    for r in rows:
        if r.get("skipped"):
            lines.append(f"{r['case']:<11} {r['variant']:<36} skipped: {r['note']}")
            continue
        key = (r["case"], r.get("norm"))
        base.setdefault(key, r["step_ms"])
        speed = base[key] / r["step_ms"]
        lines.append(f"{r['case']:<11} {r['variant']:<36} {r['step_ms']:8.2f} {speed:6.2f}x "
                     f"{_fmt(r.get('peak_gib'), '8.2f')} {r['loss']:8.4f} "
                     f"{_fmt(r.get('loss_diff'), '8.4f')} {_fmt(r.get('worst_grad_cos'), '8.4f')}")
    return "\n".join(lines)


def goals(rows) -> list:
    """The issue's goals per case, as lines of text (reported, not asserted)."""
    by = {(r["case"], r["variant"]): r for r in rows if not r.get("skipped")}
    out = []
    for case in dict.fromkeys(r["case"] for r in rows if r["case"] != "flax"):
        base = by.get((case, "unpatched"))
        for ours, liger in (("xpuruntime patch", "liger (no fused CE)"),
                            ("xpuruntime patch + fused CE", "liger (defaults: fused CE)")):
            o, lg = by.get((case, ours)), by.get((case, liger))
            if o is None or base is None:
                continue
            line = f"{case}: {ours}: {base['step_ms'] / o['step_ms']:.2f}x unpatched (goal 1.30x)"
            if lg is not None:
                line += f", {lg['step_ms'] / o['step_ms']:.2f}x {liger} (goal > 1)"
                if o.get("peak_gib") is not None and lg.get("peak_gib") is not None:
                    line += f", peak {o['peak_gib']:.2f} vs {lg['peak_gib']:.2f} GiB (goal <=)"
            out.append(line)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--quick", action="store_true", help="tiny sizes on the CPU (a smoke test)")
    ap.add_argument("--skip-flax", action="store_true")
    ap.add_argument("--cases", default=",".join(TORCH_CASES), help="torch cases to run")
    ap.add_argument("--worker", nargs=3, metavar=("KIND", "NAME", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, name, out = args.worker
        rows = (torch_case if kind == "torch" else flax_case)(name, args.quick)
        with open(out, "w") as f:
            json.dump(rows, f)
        return

    t0 = time.perf_counter()
    rows = []
    for name in [c for c in args.cases.split(",") if c]:
        rows += run_worker("torch", name, args.quick)
    if not args.skip_flax:
        rows += run_worker("flax", "flax", args.quick)
    text = table(rows) + "\n" + "\n".join(goals(rows))
    print(text)
    result = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv),
              "host": platform.node(), "seconds": time.perf_counter() - t0,
              "quick": args.quick, "rows": rows, "table": text}
    try:
        import torch
        if torch.cuda.is_available():
            result["device"] = torch.cuda.get_device_name()
            result["torch"] = torch.__version__
        import transformers
        result["transformers"] = transformers.__version__
    except ImportError:
        pass
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    print(f"total {result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
