"""The Triton kernels torch.compile writes for the row forwards that trail it (issue 16), kept
for reading beside ours: Inductor's generated Python (the kernel source, its launch grid and
the autotuned config) and Triton's PTX, cubin and metadata (num_warps, shared memory).

Compiles and runs ``torch.compile`` of the same eager functions as bench_ops.py
(``F.rms_norm``, ``F.layer_norm``, ``torch.softmax``; static shapes) at each shape of
``CASES`` on the GPU, with a fresh Inductor cache, then packs the cache's kernel files into one
tar and prints, for each kernel, its name, the config Triton ran and its registers and spills.

    python3 benchmarks/capture_inductor.py --out $OUT/inductor.tar.gz
    cuobjdump -sass <kernel>.cubin          # on any machine, from the tar
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import tarfile
import tempfile

# (op, (rows, n), dtype): the forwards at 0.96-0.98x torch.compile in run 28d.
CASES = [
    ("rms_norm", (8192, 8192), "bfloat16"),
    ("rms_norm", (16384, 4096), "float32"),
    ("layer_norm", (16384, 4096), "float32"),
    ("layer_norm", (8192, 8192), "bfloat16"),
    ("softmax", (8192, 8192), "bfloat16"),
]
KEEP = (".py", ".ptx", ".cubin", ".json", ".best_config", ".ttgir")


def _eager(op):
    import torch
    import torch.nn.functional as F
    return {"rms_norm": lambda x, w, b: F.rms_norm(x, x.shape[-1:], w, 1e-6),
            "layer_norm": lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b, 1e-5),
            "softmax": lambda x, w, b: torch.softmax(x, -1)}[op]


def capture(cache: str) -> None:
    """Compiles and runs each case with Inductor's cache under ``cache``."""
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    os.environ["TRITON_CACHE_DIR"] = os.path.join(cache, "triton")
    import torch
    for op, shape, dtype in CASES:
        dt = getattr(torch, dtype)
        x = torch.randn(shape, device="cuda", dtype=dt)
        w = torch.randn(shape[-1:], device="cuda", dtype=dt)
        b = torch.randn(shape[-1:], device="cuda", dtype=dt)
        torch._dynamo.reset()
        fn = torch.compile(_eager(op), dynamic=False)
        for _ in range(3):
            fn(x, w, b)
        torch.cuda.synchronize()
        print(f"compiled {op} {shape[0]}x{shape[1]} {dtype}")


def summarize(cache: str) -> None:
    """One line a compiled Triton kernel: its config and resource use (Triton's metadata)."""
    for meta in sorted(glob.glob(os.path.join(cache, "triton", "*", "*.json"))):
        if os.path.basename(meta).startswith("__grp__"):
            continue
        try:
            m = json.load(open(meta))
        except (OSError, ValueError):
            continue
        if "num_warps" not in m:
            continue
        print(f"{m.get('name', '?'):50s} warps {m['num_warps']:2d} stages {m.get('num_stages')} "
              f"shared {m.get('shared')} regs {m.get('n_regs', '?')} spills {m.get('n_spills', '?')}")
    for best in sorted(glob.glob(os.path.join(cache, "**", "*.best_config"), recursive=True)):
        print(os.path.basename(best), open(best).read().strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="inductor.tar.gz")
    args = ap.parse_args()
    cache = tempfile.mkdtemp(prefix="inductor-")
    capture(cache)
    summarize(cache)
    with tarfile.open(args.out, "w:gz") as tar:
        for path in glob.glob(os.path.join(cache, "**", "*"), recursive=True):
            if os.path.isfile(path) and path.endswith(KEEP):
                tar.add(path, arcname=os.path.relpath(path, cache))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
