"""topk_softmax (MoE routing), forward and backward, on the CPU and CUDA, every dtype
and policy, against a float64 numpy reference (gradients: float64 torch autograd of
that reference).

Inputs are rounded to their dtype first, so the reference sees what the kernel saw:
indices must match exactly (ties to the lower index, NaN above +inf), weights to f32
precision, dlogits to the dtype's tolerance. Calls go through the native frontend
(``xpuruntime.ops``: outputs allocated from the op spec, then ``core.call_op``).
"""

from __future__ import annotations

import numpy as np
import pytest

from xpuruntime import ops
from xpuruntime._native import InvalidArgumentError, core

torch = pytest.importorskip("torch")

from conftest import DTYPES, TOLERANCE, TORCH_DEVICES, rel_err  # noqa: E402

OP = "topk_softmax"
POLICIES = ["fast", "deterministic", "reference"]
TORCH_DTYPE = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Weights are f32 arithmetic on exactly representable inputs, whatever the logits' dtype.
WEIGHT_TOL = 1e-5

# (shape, k): every kernel path. CUDA: groups of 8/16/32 lanes (E <= 64/128/1024 at
# 16-byte vectors), several warps a row (E > 1024 for 16-bit, > 512 for f32), scalar
# rows (E not a multiple of the vector width), the block sort (k > 32).
CASES = [
    ((1, 1), 1),          # k = E = 1
    ((7, 10), 3),
    ((33, 64), 2),
    ((33, 64), 8),
    ((9, 128), 8),
    ((5, 256), 8),
    ((6, 60), 4),         # E % 8 != 0: scalar loads
    ((3, 1000), 32),      # k = 32: the largest warp-selected k
    ((2, 3, 384), 8),     # rank 3
    ((4, 1025), 5),       # several warps a row
    ((2, 4096), 8),       # the largest E
    ((4, 40), 40),        # k = E > 32: block sort
    ((3, 300), 33),       # block sort, E not a power of two
    ((2, 4096), 100),
    ((0, 16), 4),         # no rows
]
CASE_IDS = [f"{'x'.join(map(str, s))}-k{k}" for s, k in CASES]


# ---- reference ---------------------------------------------------------------------------------

def topk_softmax_ref(logits, k, renormalize=True):
    """float64 (weights, indices): the k largest logits in descending order, ties to the
    lower index, NaN above everything; weights = softmax(logits)[indices], divided by
    their sum when ``renormalize``."""
    x = np.asarray(logits, dtype=np.float64)
    nan = np.isnan(x)
    cols = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    # lexsort: the last key first. NaN first, then larger values, then lower indices;
    # -0.0 and 0.0 compare equal, so they tie.
    order = np.lexsort((cols, -np.where(nan, 0.0, x), ~nan), axis=-1)[..., :k]
    with np.errstate(invalid="ignore"):
        m = x.max(axis=-1, keepdims=True)  # NaN when the row has one
        e = np.exp(x - m)
        p = e / e.sum(axis=-1, keepdims=True)
        w = np.take_along_axis(p, order, axis=-1)
        if renormalize:
            w = w / w.sum(axis=-1, keepdims=True)
    return w, order


def topk_softmax_grad_ref(logits, indices, dweights, renormalize=True):
    """dlogits of sum(weights * dweights) by float64 autograd, the selection held fixed."""
    x = torch.tensor(np.asarray(logits, dtype=np.float64), requires_grad=True)
    p = torch.softmax(x, dim=-1)
    w = p.gather(-1, torch.as_tensor(np.asarray(indices, dtype=np.int64)))
    if renormalize:
        w = w / w.sum(-1, keepdim=True)
    (w * torch.tensor(np.asarray(dweights, dtype=np.float64))).sum().backward()
    return x.grad.numpy()


# ---- the calls ---------------------------------------------------------------------------------

def forward(logits, k, renormalize=True, policy="fast"):
    return ops.topk_softmax(logits, k, renormalize=renormalize, policy=policy)


def backward(dweights, logits, weights, indices, renormalize=True, policy="fast"):
    return ops.topk_softmax_backward(dweights, logits, weights, indices, renormalize=renormalize,
                                     policy=policy)


def call_forward(logits, outputs, attrs):
    """The generic core entry with caller-made outputs (wrong ones included)."""
    core.call_op(OP, "forward", [logits], outputs, None, attrs, "fast", 0)


def make_logits(shape, dtype, device, seed=0, scale=2.0):
    """Random normal logits rounded to ``dtype``, and their exact float64 values."""
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * scale
    t = torch.from_numpy(a).to(TORCH_DTYPE[dtype]).to(device)
    return t, t.to("cpu", torch.float64).numpy()


def f64(t):
    return t.detach().to("cpu", torch.float64).numpy()


def check_forward(logits, x64, k, renormalize, policy):
    w, idx = forward(logits, k, renormalize, policy)
    assert (w.dtype, idx.dtype) == (torch.float32, torch.int32)
    assert tuple(w.shape) == tuple(idx.shape) == tuple(x64.shape[:-1]) + (k,)
    ref_w, ref_idx = topk_softmax_ref(x64, k, renormalize)
    np.testing.assert_array_equal(idx.cpu().numpy(), ref_idx)
    if ref_w.size:
        assert rel_err(f64(w), ref_w) <= WEIGHT_TOL
    return w, idx


# ---- forward -----------------------------------------------------------------------------------

@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,k", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("renormalize", [True, False], ids=["renorm", "plain"])
def test_forward_matches_reference(shape, k, dtype, policy, device, renormalize):
    logits, x64 = make_logits(shape, dtype, device, seed=k)
    check_forward(logits, x64, k, renormalize, policy)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_go_to_the_lower_index(dtype, policy, device):
    rows = [
        [0.0] * 12,                                      # all equal
        [1.0, 3.0, 3.0, 2.0, 3.0, -1.0, 3.0, 0.5, 2.0, 2.0, 2.0, 2.0],
        [-0.0, 0.0, -0.0, 0.0, -1.0, -2.0, -0.0, 0.0, 5.0, 5.0, -3.0, -0.0],  # -0 ties +0
        [-5.0] * 6 + [-4.0] * 6,
    ]
    logits = torch.tensor(rows, dtype=TORCH_DTYPE[dtype], device=device)
    x64 = f64(logits)
    for k in (1, 3, 5, 12):
        for renormalize in (True, False):
            check_forward(logits, x64, k, renormalize, policy)
    w, idx = forward(logits, 5, True, policy)
    assert idx[0].tolist() == [0, 1, 2, 3, 4]
    assert idx[1].tolist() == [1, 2, 4, 6, 3]
    assert idx[2].tolist() == [8, 9, 0, 1, 2]
    np.testing.assert_allclose(w[0].cpu().numpy(), 0.2, rtol=1e-6)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("e", [10, 64, 256])
def test_nan_and_infinities(e, dtype, policy, device):
    """NaN ranks above +inf (lower index first among NaNs), and a row holding NaN or
    +inf, or only -inf, has NaN weights (the formula's 0/0 or inf - inf); -inf entries
    among finite ones just get weight 0."""
    x = np.random.default_rng(e).standard_normal((5, e)).astype(np.float32)
    x[0, [7, 2]] = np.nan
    x[1, 3] = np.inf
    x[2, :] = -np.inf
    x[3, 1::2] = -np.inf
    x[4, 5] = -np.nan  # sign bit set: still a NaN, still on top
    logits = torch.from_numpy(x).to(TORCH_DTYPE[dtype]).to(device)
    x64 = f64(logits)
    for k in (1, 4):
        for renormalize in (True, False):
            w, idx = forward(logits, k, renormalize, policy)
            _, ref_idx = topk_softmax_ref(x64, k, renormalize)
            np.testing.assert_array_equal(idx.cpu().numpy(), ref_idx)
            w = w.cpu().numpy()
            assert np.isnan(w[[0, 1, 2, 4]]).all()
            assert np.isfinite(w[3]).all()
    _, idx = forward(logits, 4, True, policy)
    assert idx[0, :2].tolist() == [2, 7] and idx[1, 0] == 3 and idx[4, 0] == 5
    assert idx[2].tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_strided_rows_read_like_contiguous(dtype, device):
    """Rows with a stride (a slice of a wider array; on CUDA also off a 16-byte
    boundary, so without vector loads) give what the contiguous copy gives."""
    wide, _ = make_logits((64, 304), dtype, device, seed=3)
    for view in (wide[:, :256], wide[:, 1:257], wide[::2, 8:72]):
        dense = view.contiguous()
        for k in (2, 8, 40):
            for renormalize in (True, False):
                w, idx = check_forward(view, f64(view), k, renormalize, "fast")
                w0, idx0 = forward(dense, k, renormalize)
                assert torch.equal(idx, idx0)
                assert rel_err(f64(w), f64(w0)) <= WEIGHT_TOL


# ---- backward ----------------------------------------------------------------------------------

BACKWARD_CASES = [((1, 1), 1), ((7, 10), 3), ((33, 64), 8), ((9, 128), 2), ((5, 256), 8),
                  ((6, 60), 4), ((2, 3, 384), 8), ((4, 1025), 32), ((2, 4096), 8),
                  ((4, 40), 40), ((2, 4096), 100), ((0, 16), 4)]


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,k", BACKWARD_CASES,
                         ids=[f"{'x'.join(map(str, s))}-k{k}" for s, k in BACKWARD_CASES])
@pytest.mark.parametrize("renormalize", [True, False], ids=["renorm", "plain"])
def test_backward_matches_autodiff(shape, k, dtype, policy, device, renormalize):
    logits, x64 = make_logits(shape, dtype, device, seed=k + 1)
    w, idx = forward(logits, k, renormalize, policy)
    dw = torch.from_numpy(np.random.default_rng(7).standard_normal(w.shape).astype(np.float32))
    dw = dw.to(device)
    dx = backward(dw, logits, w, idx, renormalize, policy)
    assert dx.dtype == logits.dtype and dx.shape == logits.shape
    ref = topk_softmax_grad_ref(x64, idx.cpu().numpy(), f64(dw), renormalize)
    got = f64(dx)
    if ref.size:
        assert rel_err(got, ref) <= TOLERANCE[dtype], rel_err(got, ref)
    chosen = np.zeros(ref.shape, bool)
    np.put_along_axis(chosen, idx.cpu().numpy().astype(np.int64), True, axis=-1)
    if renormalize:  # only the chosen entries have a gradient
        assert (got[~chosen] == 0).all()
    elif ref.size and shape[-1] > k:
        assert (got[~chosen] != 0).mean() > 0.5  # the softmax's jacobian reaches every entry


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_backward_reads_strided_inputs(dtype, device):
    logits, x64 = make_logits((16, 96), dtype, device, seed=5)
    for renormalize in (True, False):
        w, idx = forward(logits, 6, renormalize)
        g = torch.randn(16, 12, device=device)[:, ::2]  # rows with a stride, last dim not dense
        g_rows = torch.randn(16, 10, device=device)[:, 2:8]  # a row stride of 10
        w_rows = torch.zeros(16, 9, device=device)
        w_rows[:, 1:7] = w
        with pytest.raises(InvalidArgumentError, match="'dweights'.*contiguous"):
            backward(g, logits, w, idx, renormalize)
        dx = backward(g_rows, logits, w_rows[:, 1:7], idx, renormalize)
        dx0 = backward(g_rows.contiguous(), logits, w, idx, renormalize)
        assert torch.equal(dx, dx0)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("policy", ["fast", "deterministic"])
def test_deterministic_run_to_run(policy, device):
    logits, _ = make_logits((2048, 256), "bfloat16", device, seed=11)
    for renormalize in (True, False):
        w1, i1 = forward(logits, 8, renormalize, policy)
        dw = torch.ones_like(w1)
        d1 = backward(dw, logits, w1, i1, renormalize, policy)
        for _ in range(3):
            w2, i2 = forward(logits, 8, renormalize, policy)
            d2 = backward(dw, logits, w2, i2, renormalize, policy)
            assert torch.equal(i1, i2) and torch.equal(w1, w2)
            assert torch.equal(d1.view(torch.int16), d2.view(torch.int16))


# ---- bad input ---------------------------------------------------------------------------------

def test_errors_name_the_op_and_the_argument():
    x = torch.randn(4, 16)
    for k, attrs, match in [(0, {}, r"'k' must be in \[1, 4096\], got 0"),
                            (17, {}, r"'k' \(required\) must be in \[1, E\] with E = 16 "
                                     r"\(the last dimension of 'logits'\), got 17"),
                            (5000, {}, r"'k' must be in \[1, 4096\], got 5000"),
                            (2.0, {}, "attribute 'k' must be an int, got a float"),
                            (2, {"renormalize": 3}, "'renormalize' must be a bool")]:
        with pytest.raises(InvalidArgumentError, match="topk_softmax: .*" + match):
            ops.topk_softmax(x, k, **attrs)
    w, i = torch.empty(4, 2), torch.empty(4, 2, dtype=torch.int32)
    with pytest.raises(InvalidArgumentError, match=r"topk_softmax: attribute 'k' is required"):
        call_forward(x, [w, i], {})  # OPS.md gives k no default
    with pytest.raises(InvalidArgumentError, match="topk_softmax: .*'topk'"):
        call_forward(x, [w, i], {"k": 2, "topk": 2})
    bad_logits = [(torch.zeros(4, 16, dtype=torch.int32), "'logits' must be float32, float16"),
                  (torch.zeros(4, 16, dtype=torch.float64), "'logits' must be float32"),
                  (torch.tensor(1.0), "'logits' must have at least 1 dimension"),
                  (torch.zeros(2, 5000), "'logits' .* has 5000 experts.*at most 4096"),
                  (torch.zeros(16, 4).t(), "'logits'.*contiguous")]
    for logits, match in bad_logits:
        with pytest.raises(InvalidArgumentError, match="topk_softmax: " + match):
            ops.topk_softmax(logits, 2)
    for outs, match in [([torch.empty(4, 3), i], "'weights' must have shape \\[4, 2\\]"),
                        ([w.double(), i], "'weights' must be float32"),
                        ([w, i.long()], "'indices' must be int32"),
                        ([w, torch.empty(2, 4, dtype=torch.int32).t()], "'indices' must be dense")]:
        with pytest.raises(InvalidArgumentError, match="topk_softmax: .*" + match):
            call_forward(x, outs, {"k": 2})


def test_backward_errors_name_the_argument():
    x = torch.randn(4, 16)
    w, idx = forward(x, 3)
    g = torch.ones_like(w)
    for args, match in [((g[:, :2], x, w, idx), "'dweights' must have shape \\[4, 3\\]"),
                        ((g, x, w, idx[:, :2]), "'dweights' must have shape \\[4, 2\\]"),
                        ((g.double(), x, w, idx), "'dweights' must be float32"),
                        ((g, x, w.half(), idx), "'weights' must be float32"),
                        ((g, x, w, idx.long()), "'indices' must be int32"),
                        ((g, x[:3], w, idx), "'dweights' must have shape \\[3, 3\\]")]:
        with pytest.raises(InvalidArgumentError, match="topk_softmax: " + match):
            backward(*args)


@pytest.mark.parametrize("renormalize", [True, False])
def test_corrupt_indices_are_refused_on_the_cpu(renormalize):
    x = torch.randn(4, 16)
    w, idx = forward(x, 3, renormalize)
    g = torch.ones_like(w)
    for row, bad, match in [(2, [1, 16, 3], "row 2 holds 16, outside \\[0, 16\\)"),
                            (1, [-1, 2, 3], "row 1 holds -1"),
                            (3, [5, 6, 5], "row 3 holds 5 twice")]:
        broken = idx.clone()
        broken[row] = torch.tensor(bad, dtype=torch.int32)
        with pytest.raises(InvalidArgumentError, match="topk_softmax: 'indices' " + match):
            backward(g, x, w, broken, renormalize)


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("renormalize", [True, False])
def test_corrupt_indices_give_nan_rows_on_cuda(renormalize, policy, device):
    """CUDA cannot raise without a sync: it never writes out of bounds and gives the
    row an all-NaN gradient; the other rows are untouched."""
    for e, k in ((16, 3), (200, 8), (3000, 40)):
        x = torch.randn(4, e, device=device)
        w, idx = forward(x, k, renormalize, policy)
        g = torch.ones_like(w)
        good = backward(g, x, w, idx, renormalize, policy)
        broken = idx.clone()
        broken[1, 1] = e + 7
        broken[2, 2] = broken[2, 0]
        dx = backward(g, x, w, broken, renormalize, policy)
        assert torch.isnan(dx[1:3]).all()
        assert torch.equal(dx[[0, 3]], good[[0, 3]])


# ---- CUDA against the CPU at the benchmark's sizes ---------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("e,k", [(64, 2), (64, 8), (128, 2), (128, 8), (256, 2), (256, 8),
                                 (160, 6), (2048, 16), (4096, 8)])
def test_cuda_matches_cpu_at_scale(e, k, dtype, device):
    logits, x64 = make_logits((32768 if e <= 256 else 2048, e), dtype, device, seed=e + k)
    for renormalize in (True, False):
        w, idx = check_forward(logits, x64, k, renormalize, "fast")
        w_cpu, idx_cpu = forward(logits.cpu(), k, renormalize)
        assert torch.equal(idx.cpu(), idx_cpu)
        assert rel_err(f64(w), f64(w_cpu)) <= WEIGHT_TOL
        dw = torch.randn(w.shape, device=device)
        dx = backward(dw, logits, w, idx, renormalize)
        dx_cpu = backward(dw.cpu(), logits.cpu(), w_cpu, idx_cpu, renormalize)
        assert rel_err(f64(dx), f64(dx_cpu)) <= TOLERANCE[dtype]
