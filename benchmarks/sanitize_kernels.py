"""Runs every CUDA kernel path once on small shapes, for compute-sanitizer
(memcheck, racecheck). Exits non-zero on a wrong result."""

from __future__ import annotations

import torch

from xpuruntime import ops

# Shapes reaching every launch path: register-resident (vectorized and scalar),
# looped long rows, fused and unfused backward, tiny rows.
SHAPES = [(3, 1), (5, 33), (4, 4096), (3, 4097), (2, 70000), (2, 20000)]


def main() -> None:
    for dtype in (torch.float32, torch.bfloat16):
        for m, n in SHAPES:
            for policy in ("fast", "reference"):
                x, r, dy = (torch.randn(m, n, device="cuda", dtype=dtype) for _ in range(3))
                w = torch.randn(n, device="cuda", dtype=dtype)
                y, h = ops.rms_norm(x, w, residual=r, policy=policy)
                dx, dw = ops.rms_norm_backward(dy, h, w, policy=policy)
                ref = torch.nn.functional.rms_norm((x + r).float(), (n,), w.float(), 1e-6)
                err = ((y.float() - ref).norm() / ref.norm()).item()
                assert err < 1e-2, (dtype, m, n, policy, err)
                b = torch.randn(n, device="cuda", dtype=dtype)
                yl, mean, rstd = ops.layer_norm(x, w, b, return_stats=True, policy=policy)
                ops.layer_norm_backward(dy, x, w, mean=mean, rstd=rstd, policy=policy)
                ys = ops.softmax(x, scale=0.5, policy=policy)
                ops.softmax_backward(dy, ys, scale=0.5, policy=policy)
                for fwd, bwd in ((ops.swiglu, ops.swiglu_backward), (ops.geglu, ops.geglu_backward)):
                    fwd(x, r, policy=policy)
                    bwd(dy, x, r, policy=policy)
    torch.cuda.synchronize()
    print("sanitize_kernels: ok")


if __name__ == "__main__":
    main()
