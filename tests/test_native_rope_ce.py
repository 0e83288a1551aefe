"""Native frontend tests for rope and cross_entropy (forward and backward).

Every result is compared with a float64 reference computed from the very inputs
the kernel saw (rounded to their dtype), as ||out - ref|| / ||ref||, with the OPS.md
tolerances. float32 on the CPU runs on numpy arrays, everything else on torch
tensors. CUDA cases carry the `gpu` mark and run where torch sees a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpuruntime
from xpuruntime import ops
from xpuruntime._native import core

from conftest import TORCH_DEVICES

torch = pytest.importorskip("torch")

TOL = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2}
DTYPES = list(TOL)
POLICIES = ["fast", "deterministic", "reference"]
DEVICES = TORCH_DEVICES


# ---- helpers ----------------------------------------------------------------------------------

def make(shape, dtype, device="cpu", seed=0, scale=1.0, numpy_ok=True):
    """Random normal input: numpy for float32 on the CPU, torch otherwise."""
    g = np.random.default_rng(seed)
    a = (g.standard_normal(shape) * scale).astype(np.float32)
    if dtype == "float32" and device == "cpu" and numpy_ok:
        return a
    return torch.from_numpy(a).to(getattr(torch, dtype)).to(device)


def like(a: np.ndarray, ref, dtype=None):
    """numpy array `a` in ref's framework and device (and `dtype`, default a's)."""
    if isinstance(ref, np.ndarray):
        return a if dtype is None else a.astype(dtype)
    t = torch.from_numpy(np.ascontiguousarray(a))
    if dtype is not None:
        t = t.to(getattr(torch, dtype))
    return t.to(ref.device)


def f64(a) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a.astype(np.float64)
    return a.detach().to("cpu", torch.float64).numpy()


def rel_err(out, ref: np.ndarray) -> float:
    out = f64(out)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    den = np.linalg.norm(ref)
    num = np.linalg.norm(out - ref)
    return float(num / den) if den > 0 else float(num)


def assert_close(out, ref, dtype, what):
    err = rel_err(out, ref)
    assert err <= TOL[dtype], f"{what}: relative error {err:.3e} > {TOL[dtype]:.0e}"


def dtype_of(a) -> str:
    return str(a.dtype).replace("torch.", "")


def same_bits(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return a.tobytes() == b.tobytes()
    return bool(torch.equal(a.reshape(-1).contiguous().view(torch.uint8),
                            b.reshape(-1).contiguous().view(torch.uint8)))


def raises(op, match):
    return pytest.raises(ValueError, match=rf"^{op}: .*{match}")


# ---- rope reference ---------------------------------------------------------------------------

def rope_ref(x, c, s, interleaved):
    """float64 rope of x [B, S, H, D] with c / s [S, D/2]."""
    c = c[None, :, None, :]
    s = s[None, :, None, :]
    y = np.empty_like(x)
    if interleaved:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        y[..., 0::2] = x1 * c - x2 * s
        y[..., 1::2] = x2 * c + x1 * s
    else:
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        y[..., :h] = x1 * c - x2 * s
        y[..., h:] = x2 * c + x1 * s
    return y


def tables(seq, d, dtype, device, seed=1):
    """cos / sin [S, D/2] of random angles, rounded to dtype."""
    g = np.random.default_rng(seed)
    ang = g.uniform(-np.pi, np.pi, (seq, d // 2))
    c, s = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
    if dtype == "float32" and device == "cpu":
        return c, s
    conv = lambda a: torch.from_numpy(a).to(getattr(torch, dtype)).to(device)  # noqa: E731
    return conv(c), conv(s)


ROPE_SHAPES = [(1, 1, 1, 2), (2, 5, 3, 8), (2, 7, 4, 128)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("cs", ["float32", "x"])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ROPE_SHAPES, ids=str)
def test_rope(shape, dtype, interleaved, cs, policy, device):
    cs_dtype = dtype if cs == "x" else "float32"
    x = make(shape, dtype, device, seed=2)
    c, s = tables(shape[1], shape[3], cs_dtype, device)
    if isinstance(x, np.ndarray) != isinstance(c, np.ndarray):  # one framework per call
        c, s = (torch.from_numpy(c), torch.from_numpy(s)) if isinstance(c, np.ndarray) else (c, s)
    y = ops.rope(x, c, s, interleaved=interleaved, policy=policy)
    assert tuple(y.shape) == shape and dtype_of(y) == dtype
    assert_close(y, rope_ref(f64(x), f64(c), f64(s), interleaved), dtype, "rope")
    dy = make(shape, dtype, device, seed=3)
    dx = ops.rope_backward(dy, c, s, interleaved=interleaved, policy=policy)
    assert tuple(dx.shape) == shape and dtype_of(dx) == dtype
    assert_close(dx, rope_ref(f64(dy), f64(c), -f64(s), interleaved), dtype, "rope backward")


@pytest.mark.parametrize("interleaved", [False, True])
def test_rope_backward_is_the_vjp(interleaved):
    # Against float64 autograd through the reference (the transpose of the rotation).
    shape = (2, 3, 2, 6)
    x, dy = make(shape, "float32", seed=4), make(shape, "float32", seed=5)
    c, s = tables(3, 6, "float32", "cpu")
    xt = torch.tensor(f64(x), requires_grad=True)
    ct, st = (torch.tensor(f64(a))[None, :, None, :] for a in (c, s))
    if interleaved:
        x1, x2 = xt[..., 0::2], xt[..., 1::2]
        y = torch.stack([x1 * ct - x2 * st, x2 * ct + x1 * st], -1).flatten(-2)
    else:
        x1, x2 = xt[..., :3], xt[..., 3:]
        y = torch.cat([x1 * ct - x2 * st, x2 * ct + x1 * st], -1)
    y.backward(torch.tensor(f64(dy)))
    dx = ops.rope_backward(dy, c, s, interleaved=interleaved)
    assert_close(dx, xt.grad.numpy(), "float32", "rope backward vs autograd")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_rope_strided_and_unaligned(dtype, interleaved, device):
    # Rows of D inside longer rows (row stride D + 8), and cos / sin starting one
    # element into their storage (no 16-byte accesses possible): read, not copied.
    b, seq, h, d = 2, 6, 3, 64
    big = make((b, seq, h, d + 8), dtype, device, seed=6, numpy_ok=False)
    x = big[..., 4:4 + d]
    cbig, sbig = tables(seq, d + 2, dtype, device, seed=7)
    cbig, sbig = like(f64(cbig).astype(np.float32), x, dtype), like(f64(sbig).astype(np.float32), x, dtype)
    c, s = cbig[:, 1:1 + d // 2], sbig[:, 1:1 + d // 2]
    ref = rope_ref(f64(x), f64(c), f64(s), interleaved)
    for policy in POLICIES:
        assert_close(ops.rope(x, c, s, interleaved=interleaved, policy=policy), ref, dtype,
                     f"strided rope ({policy})")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_rope_policies_agree_and_are_deterministic(dtype, device):
    shape = (2, 7, 4, 128)
    x = make(shape, dtype, device, seed=8, numpy_ok=False)
    c, s = tables(7, 128, "float32", device)
    c, s = like(f64(c).astype(np.float32), x), like(f64(s).astype(np.float32), x)
    for interleaved in (False, True):
        out = {p: ops.rope(x, c, s, interleaved=interleaved, policy=p) for p in POLICIES}
        back = {p: ops.rope_backward(x, c, s, interleaved=interleaved, policy=p) for p in POLICIES}
        for p in POLICIES:
            for res in (out, back):
                if device == "cpu":
                    assert same_bits(res[p], res["reference"]), f"{p} differs from reference"
                else:
                    assert rel_err(res[p], f64(res["reference"])) <= TOL[dtype]
        again = ops.rope(x, c, s, interleaved=interleaved, policy="fast")
        assert same_bits(again, out["fast"])


@pytest.mark.parametrize("device", DEVICES)
def test_rope_empty_and_nan(device):
    x = make((0, 4, 2, 8), "float32", device, numpy_ok=False)
    c, s = tables(4, 8, "float32", device)
    c, s = like(f64(c).astype(np.float32), x), like(f64(s).astype(np.float32), x)
    assert tuple(ops.rope(x, c, s).shape) == (0, 4, 2, 8)
    x = make((1, 4, 2, 8), "float32", device, numpy_ok=False)
    x[0, 1, 0, 2] = float("nan")
    y = f64(ops.rope(x, c, s))
    assert np.isnan(y[0, 1, 0, 2]) and np.isnan(y[0, 1, 0, 6])
    assert np.isfinite(np.delete(y.reshape(-1), [8 * 2 + 2, 8 * 2 + 6])).all()


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rope_launch_shapes_cuda(dtype, interleaved, device):
    # The CUDA launch paths: R = 4, 2 and 1 heads a thread (H = 8, 4, 6, 2, 3, 1),
    # vector groups that do and do not divide D / 2 (D = 2 and 6 fall to scalar),
    # cos / sin in f32 and in x's dtype. Outputs are poisoned with NaN first, so an
    # element no thread writes fails the check.
    stream = torch.cuda.current_stream().cuda_stream
    for h, d in [(8, 128), (4, 64), (6, 96), (2, 256), (3, 32), (1, 2), (5, 6), (4, 16)]:
        shape = (2, 9, h, d)
        x = make(shape, dtype, device, seed=20 + h + d, numpy_ok=False)
        for cs_dtype in ("float32", dtype):
            c, s = tables(9, d, cs_dtype, device, seed=21)
            for backward in (False, True):
                y = torch.full_like(x, float("nan"))
                core.call_op("rope", "backward" if backward else "forward", [x, c, s], [y], None,
                             {"interleaved": interleaved}, "fast", stream)
                torch.cuda.synchronize()
                ref = rope_ref(f64(x), f64(c), -f64(s) if backward else f64(s), interleaved)
                assert not torch.isnan(y).any(), f"unwritten elements H={h} D={d}"
                assert_close(y, ref, dtype, f"rope H={h} D={d} cs={cs_dtype} bwd={backward}")


def test_rope_bad_inputs():
    x = make((2, 3, 2, 8), "float32")
    c, s = tables(3, 8, "float32", "cpu")
    with raises("rope", "D .*must be even, got 7"):
        ops.rope(make((2, 3, 2, 7), "float32"), c[:, :3], s[:, :3])
    with raises("rope", r"'cos' must have shape \[3, 4\], got \[3, 5\]"):
        ops.rope(x, np.ones((3, 5), np.float32), s)
    with raises("rope", r"'sin' must have shape \[3, 4\], got \[4, 4\]"):
        ops.rope(x, c, np.ones((4, 4), np.float32))
    with raises("rope", "4-d"):
        ops.rope(x[0], c, s)
    with raises("rope", r"'cos' must be float32 \(the dtype of 'x'\), got float16"):
        ops.rope(x, c.astype(np.float16), s.astype(np.float16))
    with raises("rope", "'sin' must be float32, got float16"):
        ops.rope(x, c, s.astype(np.float16))
    with raises("rope", "'x' must be float32, float16 or bfloat16"):
        ops.rope(x.astype(np.float64), c, s)
    with raises("rope", "contiguous"):
        ops.rope(x[..., ::2], c[:, :2], s[:, :2])
    with raises("rope", "'dx' must have the shape of 'dy'"):
        core.call_op("rope", "backward", [x, c, s], [np.empty((2, 3, 2, 6), np.float32)], None,
                     {}, "fast", 0)
    # x in bfloat16 takes float32 or bfloat16 tables, not float16.
    xb = torch.from_numpy(x).bfloat16()
    with raises("rope", "'cos' must be float32 or bfloat16"):
        ops.rope(xb, torch.from_numpy(c).half(), torch.from_numpy(s).half())


# ---- cross_entropy reference ------------------------------------------------------------------

IGNORE = -100


def labels_for(t, v, ltype, device, seed=9, ignore=True):
    g = np.random.default_rng(seed)
    lab = g.integers(0, v, t).astype(np.int64)
    if ignore:
        lab[1::3] = IGNORE  # rows 1, 4, 7, ... are ignored (row 0 always counts)
    lab = lab.astype(ltype)
    return lab


def ce_ref(x, lab, ls, reduction, dloss=None):
    """float64 loss (and dlogits for dloss) through torch autograd."""
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(xt, torch.tensor(lab.astype(np.int64)),
                                             ignore_index=IGNORE, label_smoothing=ls,
                                             reduction=reduction)
    if dloss is None:
        return loss.detach().numpy(), None
    loss.backward(torch.tensor(dloss, dtype=torch.float64))
    return loss.detach().numpy(), xt.grad.numpy()


CE_SHAPES = [(1, 1), (7, 33), (5, 4097), (3, 70000)]


def _ce_case(shape, dtype, ltype, device, seed=10):
    x = make(shape, dtype, device, seed=seed, scale=2.0)
    lab_np = labels_for(shape[0], shape[1], ltype, device)
    lab = lab_np if isinstance(x, np.ndarray) else torch.from_numpy(lab_np).to(x.device)
    return x, lab, lab_np


def ce_backward(dloss, x, lab, *, policy=None, **attrs):
    """cross_entropy_backward with the lse its forward saved (return_stats)."""
    _, lse = ops.cross_entropy(x, lab, return_stats=True, policy=policy, **attrs)
    return ops.cross_entropy_backward(dloss, x, lab, lse, policy=policy, **attrs)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("ltype", ["int32", "int64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("ls", [0.0, 0.1])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", CE_SHAPES, ids=str)
def test_cross_entropy(shape, dtype, ls, reduction, ltype, policy, device):
    x, lab, lab_np = _ce_case(shape, dtype, ltype, device)
    g = np.random.default_rng(11)
    dloss_np = (g.standard_normal(shape[0]) if reduction == "none" else np.array(0.7))
    ref_loss, ref_dx = ce_ref(f64(x), lab_np, ls, reduction, dloss_np)
    loss, lse = ops.cross_entropy(x, lab, ignore_index=IGNORE, label_smoothing=ls,
                                  reduction=reduction, return_stats=True, policy=policy)
    assert dtype_of(loss) == "float32" and tuple(loss.shape) == ref_loss.shape
    # The loss is f32 whatever the logits' dtype: judged at f32 accuracy.
    assert_close(loss, ref_loss, "float32", "cross_entropy loss")
    dloss = like(dloss_np.astype(np.float32), x)
    # With the forward's lse, and with one saved by a forward of another reduction
    # (lse depends on the logits and ignore_index only).
    other = ops.cross_entropy(x, lab, ignore_index=IGNORE, reduction="none", return_stats=True,
                              policy=policy)[1]
    for saved in (lse, other):
        dx = ops.cross_entropy_backward(dloss, x, lab, saved, ignore_index=IGNORE,
                                        label_smoothing=ls, reduction=reduction, policy=policy)
        assert tuple(dx.shape) == shape and dtype_of(dx) == dtype
        assert_close(dx, ref_dx, dtype, "cross_entropy dlogits")
        assert np.all(f64(dx)[lab_np == IGNORE] == 0)


@pytest.mark.parametrize("device", DEVICES)
def test_cross_entropy_long_rows_and_strides(device):
    # V = 256000 (the looped single pass), and logits rows inside longer rows with an
    # odd offset (no 16-byte accesses), through every policy.
    x = make((2, 256000), "float32", device, seed=12, scale=3.0, numpy_ok=False)
    lab = torch.tensor([5, 255999], device=x.device)
    ref, ref_dx = ce_ref(f64(x), lab.cpu().numpy(), 0.1, "sum", np.array(1.0))
    big = make((4, 1030), "bfloat16", device, seed=13, numpy_ok=False)
    xs = big[:, 3:3 + 1024]
    lab_s = torch.tensor([0, 1023, IGNORE, 17], device=x.device)
    ref_s, ref_sdx = ce_ref(f64(xs), lab_s.cpu().numpy(), 0.0, "mean", np.array(1.0))
    for policy in POLICIES:
        assert_close(ops.cross_entropy(x, lab, label_smoothing=0.1, reduction="sum",
                                       policy=policy), ref, "float32", f"V=256000 ({policy})")
        dx = ce_backward(1.0, x, lab, label_smoothing=0.1, reduction="sum", policy=policy)
        assert_close(dx, ref_dx, "float32", f"V=256000 dlogits ({policy})")
        assert_close(ops.cross_entropy(xs, lab_s, policy=policy), ref_s, "float32",
                     f"strided ({policy})")
        assert_close(ce_backward(1.0, xs, lab_s, policy=policy), ref_sdx,
                     "bfloat16", f"strided dlogits ({policy})")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_cross_entropy_policies_agree_and_are_deterministic(dtype, device):
    x, lab, _ = _ce_case((33, 4097), dtype, "int64", device)
    if isinstance(x, np.ndarray):
        x, lab = torch.from_numpy(x), torch.from_numpy(lab)
    for reduction in ("mean", "sum", "none"):
        run = lambda p: (ops.cross_entropy(x, lab, label_smoothing=0.1, reduction=reduction,  # noqa: E731
                                           policy=p),
                         ce_backward(
                             torch.ones(33, device=x.device) if reduction == "none" else 1.0,
                             x, lab, label_smoothing=0.1, reduction=reduction, policy=p))
        out = {p: run(p) for p in POLICIES}
        for p in POLICIES:
            for a, b in zip(out[p], out["reference"]):
                if device == "cpu":
                    assert same_bits(a, b), f"{reduction}: {p} differs from reference"
                else:
                    assert rel_err(a, f64(b)) <= TOL[dtype], f"{reduction}: {p} vs reference"
        for p in ("fast", "deterministic"):
            assert all(same_bits(a, b) for a, b in zip(out[p], run(p))), f"{p} not bitwise stable"


@pytest.mark.parametrize("device", DEVICES)
def test_cross_entropy_edge_cases(device):
    x = make((3, 5), "float32", device, numpy_ok=False)
    all_ignored = torch.full((3,), IGNORE, device=x.device)
    assert np.isnan(f64(ops.cross_entropy(x, all_ignored)))  # mean over no rows: NaN, like torch
    assert f64(ops.cross_entropy(x, all_ignored, reduction="sum")) == 0
    assert np.all(f64(ce_backward(1.0, x, all_ignored)) == 0)
    # A custom ignore_index; -100 is then an ordinary (out-of-range) label only if used.
    lab = torch.tensor([2, 7, 0], device=x.device)
    ref, _ = ce_ref(f64(x)[[0, 2]], np.array([2, 0]), 0.0, "sum")
    assert_close(ops.cross_entropy(x, lab, ignore_index=7, reduction="sum"), ref, "float32",
                 "ignore_index=7")
    # Zero rows: empty `none`, 0 sum, NaN mean.
    e = make((0, 5), "float32", device, numpy_ok=False)
    el = torch.zeros((0,), dtype=torch.int64, device=x.device)
    assert tuple(ops.cross_entropy(e, el, reduction="none").shape) == (0,)
    assert f64(ops.cross_entropy(e, el, reduction="sum")) == 0
    assert np.isnan(f64(ops.cross_entropy(e, el)))
    assert tuple(ce_backward(1.0, e, el).shape) == (0, 5)
    # NaN in a row propagates to that row only.
    xn = x.clone()
    xn[1, 3] = float("nan")
    lab = torch.tensor([0, 1, 2], device=x.device)
    ln = f64(ops.cross_entropy(xn, lab, reduction="none"))
    assert np.isnan(ln[1]) and np.isfinite(ln[[0, 2]]).all()


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
def test_cross_entropy_out_of_range_labels_cuda(device):
    # On CUDA the labels are never read on the host: an out-of-range label gives NaN
    # for its row (loss and gradient), and no out-of-bounds read.
    x = make((4, 40), "float32", device, numpy_ok=False)
    lab = torch.tensor([3, 40, -5, 1], device=x.device)
    for policy in POLICIES:
        loss = f64(ops.cross_entropy(x, lab, reduction="none", policy=policy))
        assert np.isnan(loss[1]) and np.isnan(loss[2]) and np.isfinite(loss[[0, 3]]).all()
        assert np.isnan(f64(ops.cross_entropy(x, lab, policy=policy)))
        _, lse = ops.cross_entropy(x, lab, return_stats=True, policy=policy)
        dx = f64(ops.cross_entropy_backward(torch.ones(4, device=x.device), x, lab, lse,
                                            reduction="none", policy=policy))
        assert np.isnan(dx[1:3]).all() and np.isfinite(dx[[0, 3]]).all()


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_backward_launch_shapes_cuda(dtype, device):
    # The backward's launch paths: few rows of long V (each row split over column
    # blocks), many rows (one block a row), V not a multiple of the vector width
    # (scalar), labels on the first / last column and at vector and unroll
    # boundaries, ignored rows. dlogits are poisoned with NaN first.
    stream = torch.cuda.current_stream().cuda_stream
    for t, v in [(1, 200003 - 3), (3, 131072), (2, 999), (3000, 512), (7, 8)]:
        x = make((t, v), dtype, device, seed=30 + t, scale=2.0, numpy_ok=False)
        lab_np = np.random.default_rng(31).integers(0, v, t).astype(np.int64)
        edges = [0, v - 1, min(8, v - 1), min(4095, v - 1), min(4096, v - 1)]
        lab_np[: min(t, len(edges))] = edges[: min(t, len(edges))]
        if t > 2:
            lab_np[2::5] = IGNORE
        lab = torch.from_numpy(lab_np).to(device)
        for reduction in ("mean", "none"):
            dloss_np = (np.random.default_rng(32).standard_normal(t) if reduction == "none"
                        else np.array(0.7))
            _, ref_dx = ce_ref(f64(x), lab_np, 0.1, reduction, dloss_np)
            _, lse = ops.cross_entropy(x, lab, label_smoothing=0.1, reduction=reduction,
                                       return_stats=True)
            dloss = torch.tensor(dloss_np, dtype=torch.float32, device=device)
            dx = torch.full_like(x, float("nan"))
            attrs = {"ignore_index": IGNORE, "label_smoothing": 0.1, "reduction": reduction}
            nbytes = core.workspace_bytes("cross_entropy", "backward",
                                          [dloss.shape, x.shape, lab.shape, lse.shape], attrs)
            ws = torch.empty(nbytes, dtype=torch.uint8, device=device)
            core.call_op("cross_entropy", "backward", [dloss, x, lab, lse], [dx],
                         ws if ws.numel() else None, attrs, "fast", stream)
            torch.cuda.synchronize()
            assert not torch.isnan(dx).any(), f"unwritten dlogits T={t} V={v}"
            assert_close(dx, ref_dx, dtype, f"dlogits T={t} V={v} {reduction}")
            again = ops.cross_entropy_backward(dloss, x, lab, lse, label_smoothing=0.1,
                                               reduction=reduction)
            assert same_bits(again, dx), "fast backward is not bitwise stable"


def test_cross_entropy_bad_inputs():
    x = make((4, 8), "float32")
    lab = np.array([1, 2, 3, 4], np.int64)
    with raises("cross_entropy", "label 8 of row 2 is out of range"):
        ops.cross_entropy(x, np.array([1, 2, 8, 4], np.int64))
    with raises("cross_entropy", "label -1 of row 0 is out of range"):
        ce_backward(1.0, x, np.array([-1, 2, 3, 4], np.int32))
    with raises("cross_entropy", "'labels' must be int32 or int64, got float32"):
        ops.cross_entropy(x, lab.astype(np.float32))
    with raises("cross_entropy", "'labels' must be int32 or int64, got uint8"):
        ops.cross_entropy(x, lab.astype(np.uint8))
    with raises("cross_entropy", "unknown reduction 'avg'"):
        ops.cross_entropy(x, lab, reduction="avg")
    with raises("cross_entropy", "unknown reduction 'avg'"):
        ops.cross_entropy_backward(1.0, x, lab, np.zeros(4, np.float32), reduction="avg")
    with raises("cross_entropy", "'labels' must have the leading shape"):
        ops.cross_entropy(x, lab[:3])
    with raises("cross_entropy", "'label_smoothing' must be in"):
        ops.cross_entropy(x, lab, label_smoothing=1.5)
    with raises("cross_entropy", "'logits' must be float32, float16 or bfloat16"):
        ops.cross_entropy(x.astype(np.float64), lab)
    with raises("cross_entropy", "'labels' must be contiguous"):
        ops.cross_entropy(x, np.arange(8, dtype=np.int64)[::2])
    with raises("cross_entropy", "at least one class"):
        ops.cross_entropy(np.zeros((4, 0), np.float32), lab)
    with raises("cross_entropy", "'dloss' must have the shape of 'labels'"):
        ops.cross_entropy_backward(np.ones(3, np.float32), x, lab, np.zeros(4, np.float32),
                                   reduction="none")
    with raises("cross_entropy", "workspace"):
        core.call_op("cross_entropy", "forward", [x, lab], [np.empty((), np.float32), None],
                     None, {}, "fast", 0)


def test_kernels_registered():
    keys = {(k["op"], k["direction"], k["device"], k["dtype"], k["policy"]) for k in core.kernels()}
    devices = ["cpu"] + (["cuda"] if xpuruntime._core.built_with_cuda else [])
    for op in ("rope", "cross_entropy"):
        for d in ("forward", "backward"):
            for dev in devices:
                for dt in DTYPES:
                    for p in POLICIES:
                        assert (op, d, dev, dt, p) in keys


def test_ffi_targets_listed():
    targets = core.ffi_targets()
    if not targets:
        pytest.skip("built without XLA FFI headers")
    for name in ("xpuruntime_rope_fwd", "xpuruntime_rope_bwd", "xpuruntime_cross_entropy_fwd",
                 "xpuruntime_cross_entropy_bwd"):
        assert "cpu" in targets[name]
        if xpuruntime._core.built_with_cuda:
            assert "CUDA" in targets[name]
