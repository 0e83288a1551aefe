"""layer_norm through the native frontend (xpuruntime.ops), against a float64 reference.

Runs on the CPU always and on CUDA too when a GPU and a CUDA build are present.
"""

from __future__ import annotations

import numpy as np
import pytest

import xpuruntime
from xpuruntime import ops
from xpuruntime._native import core

torch = pytest.importorskip("torch")

SHAPES = [(1, 1), (3, 7), (5, 4097), (2, 65536), (64, 128)]
POLICIES = ("fast", "deterministic", "reference")
EPS = 1e-5
OFFSET = 3.0  # a nonzero mean: variance by E[x^2] - E[x]^2 would lose digits here

DEVICES = ["cpu"]
if core.built_with_cuda and core.cuda_device_count() > 0 and torch.cuda.is_available():
    DEVICES.append("cuda")

TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TOL = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2}


# ---- reference ---------------------------------------------------------------------------------

def ref_forward(x, w, b, eps=EPS):
    x = np.asarray(x, np.float64)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    y = (x - mean) * rstd * np.asarray(w, np.float64) + np.asarray(b, np.float64)
    return y, mean.reshape(-1), rstd.reshape(-1)


def ref_backward(dy, x, w, eps=EPS):
    x = np.asarray(x, np.float64)
    dy = np.asarray(dy, np.float64)
    w = np.asarray(w, np.float64)
    n = x.shape[-1]
    mean = x.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps)
    xhat = (x - mean) * rstd
    g = dy * w
    dx = rstd * (g - g.sum(-1, keepdims=True) / n - xhat * (g * xhat).sum(-1, keepdims=True) / n)
    lead = tuple(range(x.ndim - 1))
    return dx, (dy * xhat).sum(lead), dy.sum(lead)


def backward(dy, x, w, b=None, policy=None):
    """layer_norm_backward with the statistics its forward saved (return_stats)."""
    _, mean, rstd = ops.layer_norm(x, w, w if b is None else b, return_stats=True, policy=policy)
    return ops.layer_norm_backward(dy, x, w, mean, rstd, policy=policy)


def rel_err(out, ref):
    out = np.asarray(out, np.float64)
    ref = np.asarray(ref, np.float64)
    assert out.shape == ref.shape
    num = np.linalg.norm((out - ref).ravel())
    den = np.linalg.norm(ref.ravel())
    return num / den if den > 0 else num


def to_np(t):
    return t.detach().to("cpu", torch.float64).numpy() if isinstance(t, torch.Tensor) else t


def make(shape, dtype="float32", device="cpu", seed=0):
    """x (offset normal), weight, bias, dy as torch tensors in dtype on device."""
    rng = np.random.default_rng(seed)
    n = shape[-1]
    arrays = (rng.standard_normal(shape) * 1.5 + OFFSET, rng.standard_normal(n),
              rng.standard_normal(n), rng.standard_normal(shape))
    return tuple(torch.tensor(a, dtype=TORCH_DTYPES[dtype], device=device) for a in arrays)


# ---- forward -----------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_f32(shape, policy, device):
    x, w, b, _ = make(shape, "float32", device)
    y, mean, rstd = ops.layer_norm(x, w, b, return_stats=True, policy=policy)
    ref_y, ref_mean, ref_rstd = ref_forward(to_np(x), to_np(w), to_np(b))
    assert y.dtype == torch.float32 and tuple(y.shape) == shape and y.device == x.device
    assert rel_err(to_np(y), ref_y) <= 1e-5
    assert rel_err(to_np(mean), ref_mean) <= 1e-5
    assert rel_err(to_np(rstd), ref_rstd) <= 1e-5


def test_forward_numpy_in_numpy_out():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 3, 33)) + OFFSET).astype(np.float32)
    w = rng.standard_normal(33).astype(np.float32)
    b = rng.standard_normal(33).astype(np.float32)
    y = ops.layer_norm(x, w, b)
    assert isinstance(y, np.ndarray) and y.shape == x.shape and y.dtype == np.float32
    assert rel_err(y, ref_forward(x, w, b)[0]) <= 1e-5
    y2 = ops.layer_norm(x, w, b, eps=0.5)
    assert rel_err(y2, ref_forward(x, w, b, eps=0.5)[0]) <= 1e-5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_half(shape, dtype, device):
    x, w, b, _ = make(shape, dtype, device)
    for policy in POLICIES:
        y = ops.layer_norm(x, w, b, policy=policy)
        assert y.dtype == TORCH_DTYPES[dtype] and tuple(y.shape) == shape
        # Reference from the rounded inputs: only the kernel's own error counts.
        assert rel_err(to_np(y), ref_forward(to_np(x), to_np(w), to_np(b))[0]) <= TOL[dtype]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [4096, 65536, 70001])  # one CTA, a cluster, the looped kernel
def test_large_mean_small_spread_is_accurate(device, n):
    # Mean 1000, standard deviation 0.1: E[x^2] - E[x]^2 in f32 would be garbage; the
    # CUDA kernels merge per-thread statistics with Chan's formula, which must hold up.
    rng = np.random.default_rng(2)
    x = (1000.0 + 0.1 * rng.standard_normal((4, n))).astype(np.float32)
    w = np.ones(n, np.float32)
    b = np.zeros(n, np.float32)
    y, mean, rstd = ops.layer_norm(torch.tensor(x, device=device), torch.tensor(w, device=device),
                                   torch.tensor(b, device=device), return_stats=True)
    ref_y, ref_mean, ref_rstd = ref_forward(x, w, b)
    assert rel_err(to_np(y), ref_y) <= 1e-3  # x itself carries f32 rounding of 1000 + small
    assert rel_err(to_np(mean), ref_mean) <= 1e-6
    assert rel_err(to_np(rstd), ref_rstd) <= 1e-3


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [4096, 65536])
def test_outlier_first_elements_are_accurate(device, n):
    # The CUDA forward shifts its one-pass sums by the mean of a row's first elements;
    # an outlier there must send the row through the centred second pass.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, n)).astype(np.float32)
    x[:, 0] = 1e4
    x[1, :8] = -3e4
    w = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    y, mean, rstd = ops.layer_norm(torch.tensor(x, device=device), torch.tensor(w, device=device),
                                   torch.tensor(b, device=device), return_stats=True)
    ref_y, ref_mean, ref_rstd = ref_forward(x, w, b)
    assert rel_err(to_np(y), ref_y) <= 1e-5
    assert rel_err(to_np(mean), ref_mean) <= 1e-5
    assert rel_err(to_np(rstd), ref_rstd) <= 1e-5


# ---- backward ----------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_f32(shape, policy, device):
    x, w, b, dy = make(shape, "float32", device, seed=3)
    dx, dw, db = backward(dy, x, w, policy=policy)
    rdx, rdw, rdb = ref_backward(to_np(dy), to_np(x), to_np(w))
    assert dx.dtype == torch.float32 and tuple(dx.shape) == shape
    assert tuple(dw.shape) == (shape[-1],) and tuple(db.shape) == (shape[-1],)
    if shape[-1] == 1:
        # dx is exactly 0 (x - mean = 0), reached as rstd * (g - mean(g)) with
        # rstd = eps^-1/2 ~ 316: f32 rounding of those terms (FMA on the GPU) leaves
        # ~1e-7 of their size. Judge it against that size, not against zero.
        scale = np.abs(to_np(dy) * to_np(w)).max() / np.sqrt(1e-5)
        assert np.abs(to_np(dx) - rdx).max() <= 1e-6 * scale
    else:
        assert rel_err(to_np(dx), rdx) <= 1e-5
    assert rel_err(to_np(dw), rdw) <= 1e-5
    assert rel_err(to_np(db), rdb) <= 1e-5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_with_saved_stats(shape, device):
    x, w, b, dy = make(shape, "float32", device, seed=4)
    # The saved statistics do not depend on bias: the backward is the same either way.
    _, mean, rstd = ops.layer_norm(x, w, b, return_stats=True)
    saved = ops.layer_norm_backward(dy, x, w, mean, rstd)
    other_bias = backward(dy, x, w)
    for a, r in zip(saved, other_bias):
        assert torch.equal(a, r)
    _, rmean, rrstd = ref_forward(to_np(x), to_np(w), to_np(b))
    assert rel_err(to_np(mean), rmean) <= 1e-5
    assert rel_err(to_np(rstd), rrstd) <= 1e-5


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_half(shape, dtype, device):
    x, w, b, dy = make(shape, dtype, device, seed=5)
    rdx, rdw, rdb = ref_backward(to_np(dy), to_np(x), to_np(w))
    for policy in POLICIES:
        dx, dw, db = backward(dy, x, w, policy=policy)
        assert dx.dtype == dw.dtype == db.dtype == TORCH_DTYPES[dtype]
        assert rel_err(to_np(dx), rdx) <= TOL[dtype]
        assert rel_err(to_np(dw), rdw) <= TOL[dtype]
        assert rel_err(to_np(db), rdb) <= TOL[dtype]


def test_backward_matches_torch_autograd():
    x, w, b, dy = make((6, 5, 96), "float32", seed=6)
    xd, wd, bd = (t.double().requires_grad_() for t in (x, w, b))
    torch.nn.functional.layer_norm(xd, (96,), wd, bd, EPS).backward(dy.double())
    dx, dw, db = backward(dy, x, w)
    assert rel_err(to_np(dx), to_np(xd.grad)) <= 1e-5
    assert rel_err(to_np(dw), to_np(wd.grad)) <= 1e-5
    assert rel_err(to_np(db), to_np(bd.grad)) <= 1e-5


# ---- policies and determinism --------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", SHAPES)
def test_policies_agree_and_are_repeatable(shape, dtype, device):
    x, w, b, dy = make(shape, dtype, device, seed=7)
    outs = {}
    for policy in POLICIES:
        fwd = ops.layer_norm(x, w, b, return_stats=True, policy=policy)
        bwd = backward(dy, x, w, policy=policy)
        outs[policy] = fwd + bwd
        # Every policy reduces in a fixed order: bitwise identical run to run.
        again = ops.layer_norm(x, w, b, return_stats=True, policy=policy) + \
            backward(dy, x, w, policy=policy)
        for a, r in zip(outs[policy], again):
            assert torch.equal(a, r), policy
    tol = TOL[dtype]
    for policy in ("deterministic", "reference"):
        for a, r in zip(outs[policy], outs["fast"]):
            if device == "cpu":
                assert torch.equal(a, r)  # one CPU kernel serves every policy
            else:
                assert rel_err(to_np(a), to_np(r)) <= tol


def test_scoped_policy_is_honoured():
    x, w, b, _ = make((3, 7))
    with xpuruntime.policy("reference"):
        y = ops.layer_norm(x, w, b)
    assert torch.equal(y, ops.layer_norm(x, w, b, policy="reference"))


# ---- layouts and special values ------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_strided_rows(device):
    x, w, b, dy = make((6, 200), "float32", device, seed=8)
    xs, dys = x[:, 3:131], dy[:, 5:133]  # row stride 200, misaligned starts
    ws, bs = w[:128].contiguous(), b[:128].contiguous()
    assert not xs.is_contiguous()
    y = ops.layer_norm(xs, ws, bs)
    assert rel_err(to_np(y), ref_forward(to_np(xs), to_np(ws), to_np(bs))[0]) <= 1e-5
    dx, dw, db = backward(dys, xs, ws)
    for out, ref in zip((dx, dw, db), ref_backward(to_np(dys), to_np(xs), to_np(ws))):
        assert rel_err(to_np(out), ref) <= 1e-5


@pytest.mark.parametrize("device", DEVICES)
def test_zero_rows(device):
    x, w, b, dy = make((0, 16), "float32", device)
    y, mean, rstd = ops.layer_norm(x, w, b, return_stats=True)
    assert tuple(y.shape) == (0, 16) and tuple(mean.shape) == (0,) and tuple(rstd.shape) == (0,)
    dx, dw, db = backward(dy, x, w)
    assert tuple(dx.shape) == (0, 16)
    assert torch.equal(dw, torch.zeros_like(w)) and torch.equal(db, torch.zeros_like(b))


@pytest.mark.parametrize("device", DEVICES)
def test_leading_dims(device):
    x, w, b, dy = make((2, 3, 4, 40), "bfloat16", device, seed=9)
    y = ops.layer_norm(x, w, b)
    assert tuple(y.shape) == (2, 3, 4, 40)
    assert rel_err(to_np(y), ref_forward(to_np(x), to_np(w), to_np(b))[0]) <= TOL["bfloat16"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n", [64, 70000])
def test_nan_propagates_to_its_row(device, n):
    x, w, b, dy = make((3, n), "float32", device, seed=10)
    x[1, n // 2] = float("nan")
    y = ops.layer_norm(x, w, b)
    assert torch.isnan(y[1]).all()
    assert torch.isfinite(y[0]).all() and torch.isfinite(y[2]).all()
    dx, _, _ = backward(dy, x, w)
    assert torch.isnan(dx[1]).all() and torch.isfinite(dx[0]).all()


# ---- bad inputs ----------------------------------------------------------------------------------

def _np(shape, dtype=np.float32):
    return np.ones(shape, dtype)


@pytest.mark.parametrize(
    "x, w, b",
    [
        (_np((4, 8)), _np((7,)), _np((8,))),                    # weight shape
        (_np((4, 8)), _np((8,)), _np((9,))),                    # bias shape
        (_np((4, 8)), _np((1, 8)), _np((8,))),                  # weight rank
        (_np((4, 8)), _np((8,), np.float64), _np((8,))),        # weight dtype mismatch
        (_np((4, 8)), _np((8,)), _np((8,), np.float64)),        # bias dtype mismatch
        (_np((4, 8), np.int32), _np((8,), np.int32), _np((8,), np.int32)),  # int dtype
        (_np((4, 8), np.float64), _np((8,), np.float64), _np((8,), np.float64)),  # f64
        (np.float32(1.0).reshape(()), _np((1,)), _np((1,))),     # 0-d
    ],
)
def test_bad_forward_inputs(x, w, b):
    with pytest.raises(ValueError, match="layer_norm"):
        ops.layer_norm(x, w, b)
    with pytest.raises(xpuruntime.InvalidArgumentError, match="layer_norm"):
        ops.layer_norm(x, w, b)


def test_bad_backward_inputs():
    x, w, stat = _np((4, 8)), _np((8,)), _np((4,))
    with pytest.raises(ValueError, match="layer_norm"):
        ops.layer_norm_backward(_np((4, 7)), x, w, stat, stat)          # dy shape
    with pytest.raises(ValueError, match="layer_norm"):
        ops.layer_norm_backward(_np((4, 8), np.float64), x, w, stat, stat)  # dy dtype
    with pytest.raises(ValueError, match="layer_norm"):
        ops.layer_norm_backward(_np((4, 8)), x, _np((9,)), stat, stat)  # weight shape
    with pytest.raises(ValueError, match="layer_norm"):
        ops.layer_norm_backward(_np((4, 8)), x, w, _np((3,)), stat)    # stats size
    with pytest.raises(ValueError, match="layer_norm"):
        ops.layer_norm_backward(_np((4, 8)), x, w, _np((4,), np.float64), stat)  # stats dtype
    with pytest.raises(ValueError, match="^layer_norm: argument 'mean' is required"):
        ops.layer_norm_backward(_np((4, 8)), x, w, None, stat)         # a stat missing


def test_bad_eps():
    with pytest.raises(ValueError, match="layer_norm"):
        ops.layer_norm(_np((2, 4)), _np((4,)), _np((4,)), eps=-1.0)


def test_workspace_size_is_a_pure_function_of_shape():
    def ws(rows, n):
        shapes = [(rows, n), (rows, n), (n,), (rows,), (rows,)]
        return core.workspace_bytes("layer_norm", "backward", shapes, {})
    assert ws(0, 16) == 2 * 16 * 4
    assert ws(3, 7) == 2 * 3 * 7 * 4
    assert ws(10**6, 128) == 2 * 512 * 128 * 4
    assert ws(10**6, 65536) == 2 * 128 * 65536 * 4


# ---- v2 CUDA forward paths (docs/kernels/layer_norm.md) ------------------------------------------
# One CTA per row (4096, 8192), a row split over a thread-block cluster of 2, 4
# and 8 CTAs (16-byte vectors: 32768, 65536, 131072; scalar odd rows: 4097,
# 20001), and the looped fallback past 8 CTAs (65537, 131080). Many rows, so
# that CTAs walk rows and the DSMEM slots alternate.
GPU_FORWARD_SHAPES = [(300, 4096), (129, 8192), (40, 32768), (33, 65536), (5, 131072), (50, 4097),
                      (17, 20001), (3, 65537), (2, 131080), (7, 1), (1000, 16)]


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", GPU_FORWARD_SHAPES)
def test_forward_cluster_paths_cuda(shape, dtype, device):
    if device not in DEVICES:
        pytest.skip("no CUDA device")
    x, w, b, _ = make(shape, dtype, device, seed=11)
    ref_y, ref_mean, ref_rstd = ref_forward(to_np(x), to_np(w), to_np(b))
    runs = [ops.layer_norm(x, w, b, return_stats=True, policy=p)
            for p in ("fast", "fast", "deterministic", "reference")]
    for y, mean, rstd in runs:
        assert rel_err(to_np(y), ref_y) <= TOL[dtype]
        assert rel_err(to_np(mean), ref_mean) <= 1e-5  # f32 statistics whatever the dtype
        assert rel_err(to_np(rstd), ref_rstd) <= 1e-4
    # `fast` is bitwise deterministic (no atomics), and `deterministic` is the same kernel.
    for a, r in zip(runs[0], runs[1]):
        assert torch.equal(a, r)
    for a, r in zip(runs[0], runs[2]):
        assert torch.equal(a, r)
    # Without stats requested, y is unchanged.
    assert torch.equal(ops.layer_norm(x, w, b), runs[0][0])


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("n", [4096, 65536])
def test_forward_cluster_large_mean_cuda(device, n):
    """The centred second pass keeps digits when |mean| >> spread, split rows included."""
    if device not in DEVICES:
        pytest.skip("no CUDA device")
    # As test_large_mean_small_spread_is_accurate: mean 1000, standard deviation 0.1.
    rng = np.random.default_rng(12)
    xn = (1000.0 + 0.1 * rng.standard_normal((8, n))).astype(np.float32)
    x = torch.tensor(xn, device=device)
    w = torch.ones(n, device=device)
    b = torch.zeros(n, device=device)
    y, _, rstd = ops.layer_norm(x, w, b, return_stats=True)
    ref_y, _, ref_rstd = ref_forward(xn, np.ones(n), np.zeros(n))
    assert rel_err(to_np(y), ref_y) <= 1e-3
    assert rel_err(to_np(rstd), ref_rstd) <= 1e-3
