"""The row kernels (rms_norm, layer_norm, softmax; forward and backward) at the edges of
their launch shapes, on CUDA, against float64 torch on random data: one CTA a row with idle
tail threads (125 or 250 vectors in 128 or 256 threads), clusters of CTAs (65536 columns;
300 rows: several a cluster in the persistent backward walks),
and the fused norm backward's row groups (one-CTA rows: up to kNormStagedCtasPerSm an SM,
396 on an H200, each walking its rows through a shared-memory ring; cluster rows: the
clusters resident at once, each CTA with a ring of its slices) with several rows a group, one row a group and empty groups (rows
just past the group count); rows past the largest grid (kMaxGrid), which the one-CTA
forwards launch in chunks; row-strided inputs (a column slice of a wider tensor), which the
TMA bulk copies read row by row."""

import pytest

from conftest import TOLERANCE, torch_cuda_available

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch_cuda_available(), reason="no CUDA device visible to torch")]

SHAPES = [(1500, 4096), (700, 8192), (300, 1000), (40, 65536), (265, 4096), (3, 2048),
          # The staged backward's groups at 396 (3 an SM): one row a group, then 2 rows a
          # group with the last groups empty, and more rows a group than ring stages.
          (397, 4096), (2000, 2048),
          # One CTA a row up to 1024 threads (cta_row.cuh): softmax with the row packed
          # (20000 bf16), rms_norm's packed rows without a residual (40960 bf16: 640 x 8;
          # 32768 f32), and the TMA-staged cluster kernels (softmax both ways, layer_norm
          # forward: 40960 bf16, a cluster of 3 with a partial last slice; f32 65536).
          (90, 20000), (30, 40960), (20, 32768), (12, 65536 + 8),
          # Cluster rows walked by persistent grids (the fused norm backward, the softmax
          # backward) several rows a cluster, so each of ClusterPush's two mbarriers
          # completes several phases.
          (300, 65536)]


def _check(out, ref, dtype, what):
    import torch
    err = ((out.double() - ref).norm() / ref.norm()).item()
    assert err <= TOLERANCE[dtype], f"{what}: relative error {err:.3g} ({dtype})"
    assert torch.isfinite(out).all(), what


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_row_kernels(dtype, shape):
    import torch
    import torch.nn.functional as F

    from xpuruntime import ops
    gen = torch.Generator(device="cuda")
    gen.manual_seed(7)
    tdt = getattr(torch, dtype)
    x, r, dy = (torch.randn(shape, device="cuda", generator=gen).to(tdt) for _ in range(3))
    w, b = (torch.randn(shape[-1:], device="cuda", generator=gen).to(tdt) for _ in range(2))
    n = shape[-1]

    def leaf(t):
        return t.double().requires_grad_()

    # rms_norm: with a residual (h rounded to the dtype, as OPS.md), then without.
    y, h = ops.rms_norm(x, w, residual=r)
    hr = (x.double() + r.double()).to(tdt).double()
    _check(h, hr, dtype, "rms_norm h")
    _check(y, F.rms_norm(hr, (n,), w.double(), 1e-6), dtype, "rms_norm y (residual)")
    x64, w64 = leaf(x), leaf(w)
    ref = F.rms_norm(x64, (n,), w64, 1e-6)
    _check(ops.rms_norm(x, w), ref.detach(), dtype, "rms_norm y")
    (ref * dy.double()).sum().backward()
    dx, dw = ops.rms_norm_backward(dy, x, w)
    _check(dx, x64.grad, dtype, "rms_norm dx")
    _check(dw, w64.grad, dtype, "rms_norm dweight")
    again = ops.rms_norm_backward(dy, x, w)
    assert torch.equal(dx, again[0]) and torch.equal(dw, again[1])  # `fast` is deterministic

    # layer_norm.
    x64, w64, b64 = leaf(x), leaf(w), leaf(b)
    ref = F.layer_norm(x64, (n,), w64, b64, 1e-5)
    y, mean, rstd = ops.layer_norm(x, w, b, return_stats=True)
    _check(y, ref.detach(), dtype, "layer_norm y")
    (ref * dy.double()).sum().backward()
    dx, dw, db = ops.layer_norm_backward(dy, x, w, mean=mean, rstd=rstd)
    _check(dx, x64.grad, dtype, "layer_norm dx")
    _check(dw, w64.grad, dtype, "layer_norm dweight")
    _check(db, b64.grad, dtype, "layer_norm dbias")

    # softmax (scale 0.5); the backward from the kernel's own y.
    y = ops.softmax(x, scale=0.5)
    _check(y, torch.softmax(0.5 * x.double(), -1), dtype, "softmax y")
    y64 = y.double()
    want = 0.5 * y64 * (dy.double() - (dy.double() * y64).sum(-1, keepdim=True))
    _check(ops.softmax_backward(dy, y, scale=0.5), want, dtype, "softmax dx")


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_rows_past_the_largest_grid(dtype):
    """2^20 + 5 rows (kMaxGrid is 2^20): the one-CTA forwards launch a second grid."""
    import torch
    import torch.nn.functional as F

    from xpuruntime import ops
    gen = torch.Generator(device="cuda")
    gen.manual_seed(11)
    tdt = getattr(torch, dtype)
    rows = (1 << 20) + 5
    for n in (8, 528):
        x = torch.randn((rows, n), device="cuda", generator=gen).to(tdt)
        w, b = (torch.randn((n,), device="cuda", generator=gen).to(tdt) for _ in range(2))
        y = ops.rms_norm(x, w)
        _check(y, F.rms_norm(x.double(), (n,), w.double(), 1e-6), dtype, f"rms_norm y, n={n}")
        # The backward recomputes each row's rstd (it used to be the forward's saved one):
        # dx at dy = 1 against its closed form in float64, g = dy * w = w.
        x64, g64 = x.double(), w.double()
        r64 = torch.rsqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-6)
        dx, _ = ops.rms_norm_backward(torch.ones_like(x), x, w)
        want = r64 * (g64 - x64 * r64 * (g64 * x64 * r64).mean(-1, keepdim=True))
        _check(dx, want, dtype, f"rms_norm dx, n={n}")
        del dx, want, x64, r64
        y, mean, rstd = ops.layer_norm(x, w, b, return_stats=True)
        _check(y, F.layer_norm(x.double(), (n,), w.double(), b.double(), 1e-5), dtype,
               f"layer_norm y, n={n}")
        _check(mean, x.double().mean(-1), dtype, f"layer_norm mean, n={n}")
        _check(ops.softmax(x), torch.softmax(x.double(), -1), dtype, f"softmax y, n={n}")
        del x, y, mean, rstd


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("n", [4096, 8192, 65536])
def test_strided_rows(dtype, n):
    """x, dy and softmax's y as column slices of wider tensors (row stride n + 64: the TMA
    copies and the register walks read each row from its own offset), both directions,
    with rms_norm's dh."""
    import torch
    import torch.nn.functional as F

    from xpuruntime import ops
    gen = torch.Generator(device="cuda")
    gen.manual_seed(5)
    tdt = getattr(torch, dtype)
    rows = 1000 if n < 65536 else 64
    x, dy, dh = (torch.randn((rows, n + 64), device="cuda", generator=gen).to(tdt)[:, :n]
                 for _ in range(3))
    w, b = (torch.randn((n,), device="cuda", generator=gen).to(tdt) for _ in range(2))
    assert x.stride(0) == n + 64
    x64, w64 = x.double().requires_grad_(), w.double().requires_grad_()
    (F.rms_norm(x64, (n,), w64, 1e-6) * dy.double()).sum().backward()
    dx, dw = ops.rms_norm_backward(dy, x, w, dh=dh)
    _check(dx, x64.grad + dh.double(), dtype, "rms_norm dx + dh (strided)")
    _check(dw, w64.grad, dtype, "rms_norm dweight (strided)")
    x64, w64, b64 = (t.double().requires_grad_() for t in (x, w, b))
    (F.layer_norm(x64, (n,), w64, b64, 1e-5) * dy.double()).sum().backward()
    y, mean, rstd = ops.layer_norm(x, w, b, return_stats=True)
    _check(y, F.layer_norm(x.double(), (n,), w.double(), b.double(), 1e-5), dtype,
           "layer_norm y (strided)")
    _check(ops.rms_norm(x, w), F.rms_norm(x.double(), (n,), w.double(), 1e-6), dtype,
           "rms_norm y (strided)")
    dx, dw, db = ops.layer_norm_backward(dy, x, w, mean=mean, rstd=rstd)
    _check(dx, x64.grad, dtype, "layer_norm dx (strided)")
    _check(dw, w64.grad, dtype, "layer_norm dweight (strided)")
    _check(db, b64.grad, dtype, "layer_norm dbias (strided)")
    y = ops.softmax(x)
    _check(y, torch.softmax(x.double(), -1), dtype, "softmax y (strided)")
    # The backward from a strided y and dy (the staged cluster kernel's TMA copies at 65536).
    y_view = torch.softmax(x.double(), -1).to(tdt)
    y_wide = torch.zeros((rows, n + 64), device="cuda", dtype=tdt)
    y_wide[:, :n] = y_view
    y_strided = y_wide[:, :n]
    y64 = y_strided.double()
    want = y64 * (dy.double() - (dy.double() * y64).sum(-1, keepdim=True))
    _check(ops.softmax_backward(dy, y_strided), want, dtype, "softmax dx (strided)")
