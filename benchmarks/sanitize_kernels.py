"""Runs every CUDA kernel path once on small shapes, for compute-sanitizer
(memcheck, racecheck). Exits non-zero on a wrong result."""

from __future__ import annotations

import torch

from xpuruntime import ops

# Shapes reaching every launch path: register-resident (vectorized and scalar),
# looped long rows, fused and unfused backward, tiny rows; (2048, 256) gives the
# fused backward several rows a group (its next-row prefetch).
SHAPES = [(3, 1), (5, 33), (4, 4096), (3, 4097), (2, 70000), (2, 20000), (2, 40960), (2048, 256)]
# The fused norm backward's row groups with several rows each, one each, and empty
# ones (265 rows over 264 groups on an H200), the staged walk refilling its ring (1000 x 4096,
# 700 x 8192); clusters of CTAs at 65536 columns, with 200 rows the staged cluster walk's
# groups hold more rows than its ring has stages.
GROUP_SHAPES = [(600, 1024), (265, 4096), (1000, 4096), (300, 8192), (700, 8192), (50, 65536),
                (200, 65536)]


def group_paths(dtype) -> None:
    """The row kernels (rms_norm, layer_norm, softmax; both directions) at those shapes."""
    for m, n in GROUP_SHAPES:
        x, r, dy = (torch.randn(m, n, device="cuda", dtype=dtype) for _ in range(3))
        w, b = (torch.randn(n, device="cuda", dtype=dtype) for _ in range(2))
        y, h = ops.rms_norm(x, w, residual=r)
        ref = torch.nn.functional.rms_norm((x + r).float(), (n,), w.float(), 1e-6)
        err = ((y.float() - ref).norm() / ref.norm()).item()
        assert err < 1e-2, (dtype, m, n, err)
        ops.rms_norm_backward(dy, h, w)
        # Without a residual: the FULL forms (the wide one-CTA rows, the cluster rows).
        y = ops.rms_norm(x, w)
        ref = torch.nn.functional.rms_norm(x.float(), (n,), w.float(), 1e-6)
        assert ((y.float() - ref).norm() / ref.norm()).item() < 1e-2, (dtype, m, n)
        _, mean, rstd = ops.layer_norm(x, w, b, return_stats=True)
        ops.layer_norm_backward(dy, x, w, mean=mean, rstd=rstd)
        ops.softmax_backward(dy, ops.softmax(x), scale=1.0)


def main() -> None:
    for dtype in (torch.float32, torch.bfloat16):
        group_paths(dtype)
        for m, n in SHAPES:
            for policy in ("fast", "reference"):
                x, r, dy = (torch.randn(m, n, device="cuda", dtype=dtype) for _ in range(3))
                w = torch.randn(n, device="cuda", dtype=dtype)
                y, h = ops.rms_norm(x, w, residual=r, policy=policy)
                ops.rms_norm(x, w, policy=policy)
                dx, dw = ops.rms_norm_backward(dy, h, w, policy=policy)
                ref = torch.nn.functional.rms_norm((x + r).float(), (n,), w.float(), 1e-6)
                err = ((y.float() - ref).norm() / ref.norm()).item()
                assert err < 1e-2, (dtype, m, n, policy, err)
                b = torch.randn(n, device="cuda", dtype=dtype)
                yl, mean, rstd = ops.layer_norm(x, w, b, return_stats=True, policy=policy)
                ops.layer_norm_backward(dy, x, w, mean, rstd, policy=policy)
                ys = ops.softmax(x, scale=0.5, policy=policy)
                ops.softmax_backward(dy, ys, scale=0.5, policy=policy)
                for fwd, bwd in ((ops.swiglu, ops.swiglu_backward), (ops.geglu, ops.geglu_backward)):
                    fwd(x, r, policy=policy)
                    bwd(dy, x, r, policy=policy)
        for interleaved in (False, True):  # rope: vectorized (D=128) and scalar (D=6) paths
            for shape in ((2, 3, 2, 128), (1, 5, 3, 6)):
                x = torch.randn(shape, device="cuda", dtype=dtype)
                cos = torch.randn(shape[1], shape[3] // 2, device="cuda")
                y = ops.rope(x, cos, cos.flip(0), interleaved=interleaved)
                ops.rope_backward(y, cos, cos.flip(0), interleaved=interleaved)
        for t, v in ((5, 33), (3, 4097), (2, 70000)):  # cross_entropy, every reduction
            logits = torch.randn(t, v, device="cuda", dtype=dtype)
            labels = torch.randint(0, v, (t,), device="cuda")
            labels[0] = -100
            for reduction in ("mean", "sum", "none"):
                loss, lse = ops.cross_entropy(logits, labels, label_smoothing=0.1,
                                              reduction=reduction, return_stats=True)
                ops.cross_entropy_backward(torch.ones_like(loss), logits, labels, lse,
                                           label_smoothing=0.1, reduction=reduction)
    torch.cuda.synchronize()
    print("sanitize_kernels: ok")


if __name__ == "__main__":
    main()
