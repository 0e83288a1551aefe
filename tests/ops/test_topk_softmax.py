"""topk_softmax (MoE routing) through every frontend (forward, ties, NaN and
infinities, gradients) on the CPU and CUDA, every dtype and policy, against the float64
reference; then the native frontend's strided rows, determinism, errors, corrupt
indices and CUDA-against-CPU runs at the benchmark's sizes.

Inputs are rounded to their dtype first, so the reference sees what the kernel saw:
indices must match exactly (ties to the lower index, NaN above +inf), weights to f32
precision, dlogits to the dtype's tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

import references
from helpers import DEVICES, DTYPES, POLICIES, TOLERANCE, TORCH_DEVICES, cases, rel_err, round_to
from xpuruntime import ops
from xpuruntime._native import InvalidArgumentError, core

OP = "topk_softmax"
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


def case_ids(cases):
    return [f"{'x'.join(map(str, s))}-k{k}" for s, k in cases]


def every_case(shapes_and_k):
    """The grid of the forward and backward tests: (shape, k) x renormalize x dtype x
    policy x device."""
    return cases(renormalize=([True, False], ["renorm", "plain"]),
                 **{"shape,k": (shapes_and_k, case_ids(shapes_and_k))},
                 dtype=DTYPES, policy=POLICIES, device=DEVICES)


def logits_for(shape, dtype, seed=0, scale=2.0):
    """Random normal logits rounded to ``dtype`` (float32 numpy)."""
    return round_to(np.random.default_rng(seed).standard_normal(shape) * scale, dtype)


def check_forward(frontend, x, k, renormalize, policy, dtype, device):
    """The frontend's (weights, indices) against the reference; returned."""
    w, idx = frontend.call(OP, x, dtype=dtype, device=device, policy=policy, k=k,
                           renormalize=renormalize)
    ref = references.topk_softmax(x, k=k, renormalize=renormalize)
    np.testing.assert_array_equal(idx, ref["indices"])
    if ref["weights"].size:
        assert rel_err(w, ref["weights"]) <= WEIGHT_TOL
    return w, idx


# ---- every frontend -----------------------------------------------------------------------------

@every_case(CASES)
def test_forward_matches_reference(frontend, shape, k, dtype, policy, device, renormalize):
    check_forward(frontend, logits_for(shape, dtype, seed=k), k, renormalize, policy, dtype, device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_go_to_the_lower_index(frontend, dtype, policy, device):
    x = np.array([
        [0.0] * 12,                                      # all equal
        [1.0, 3.0, 3.0, 2.0, 3.0, -1.0, 3.0, 0.5, 2.0, 2.0, 2.0, 2.0],
        [-0.0, 0.0, -0.0, 0.0, -1.0, -2.0, -0.0, 0.0, 5.0, 5.0, -3.0, -0.0],  # -0 ties +0
        [-5.0] * 6 + [-4.0] * 6,
    ], np.float32)  # exact in every dtype
    for k in (1, 3, 5, 12):
        for renormalize in (True, False):
            check_forward(frontend, x, k, renormalize, policy, dtype, device)
    w, idx = check_forward(frontend, x, 5, True, policy, dtype, device)
    assert idx[0].tolist() == [0, 1, 2, 3, 4]
    assert idx[1].tolist() == [1, 2, 4, 6, 3]
    assert idx[2].tolist() == [8, 9, 0, 1, 2]
    np.testing.assert_allclose(w[0], 0.2, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("e", [10, 64, 256])
def test_nan_and_infinities(frontend, e, dtype, policy, device):
    """NaN ranks above +inf (lower index first among NaNs), and a row holding NaN or
    +inf, or only -inf, has NaN weights (the formula's 0/0 or inf - inf); -inf entries
    among finite ones just get weight 0."""
    x = logits_for((5, e), dtype, seed=e, scale=1.0)
    x[0, [7, 2]] = np.nan
    x[1, 3] = np.inf
    x[2, :] = -np.inf
    x[3, 1::2] = -np.inf
    x[4, 5] = -np.nan  # sign bit set: still a NaN, still on top
    for k in (1, 4):
        for renormalize in (True, False):
            w, idx = frontend.call(OP, x, dtype=dtype, device=device, policy=policy, k=k,
                                   renormalize=renormalize)
            np.testing.assert_array_equal(idx, references.topk_order(x, k))
            assert np.isnan(w[[0, 1, 2, 4]]).all()
            assert np.isfinite(w[3]).all()
    _, idx = frontend.call(OP, x, dtype=dtype, device=device, policy=policy, k=4)
    assert idx[0, :2].tolist() == [2, 7] and idx[1, 0] == 3 and idx[4, 0] == 5
    assert idx[2].tolist() == [0, 1, 2, 3]


BACKWARD_CASES = [((1, 1), 1), ((7, 10), 3), ((33, 64), 8), ((9, 128), 2), ((5, 256), 8),
                  ((6, 60), 4), ((2, 3, 384), 8), ((4, 1025), 32), ((2, 4096), 8),
                  ((4, 40), 40), ((2, 4096), 100), ((0, 16), 4)]


@every_case(BACKWARD_CASES)
def test_backward_matches_autodiff(grad_frontend, shape, k, dtype, policy, device, renormalize):
    x = logits_for(shape, dtype, seed=k + 1)
    dw = np.random.default_rng(7).standard_normal(shape[:-1] + (k,)).astype(np.float32)
    (w, idx), grads = grad_frontend.grad(OP, x, cotangents=[dw, None], dtype=dtype,
                                         device=device, policy=policy, k=k,
                                         renormalize=renormalize)
    got = grads["dlogits"]
    ref = references.topk_softmax_vjp(x, dweights=dw, indices=idx, renormalize=renormalize)
    if ref["dlogits"].size:
        assert rel_err(got, ref["dlogits"]) <= TOLERANCE[dtype]
    chosen = np.zeros(got.shape, bool)
    np.put_along_axis(chosen, idx, True, axis=-1)
    if renormalize:  # only the chosen entries have a gradient
        assert (got[~chosen] == 0).all()
    elif got.size and shape[-1] > k:
        assert (got[~chosen] != 0).mean() > 0.5  # the softmax's jacobian reaches every entry


# ---- native -------------------------------------------------------------------------------------

def forward(logits, k, renormalize=True, policy="fast"):
    return ops.topk_softmax(logits, k, renormalize=renormalize, policy=policy)


def backward(dweights, logits, weights, indices, renormalize=True, policy="fast"):
    return ops.topk_softmax_backward(dweights, logits, weights, indices, renormalize=renormalize,
                                     policy=policy)


def call_forward(logits, outputs, attrs):
    """The generic core entry with caller-made outputs (wrong ones included)."""
    core.call_op(OP, "forward", [logits], outputs, None, attrs, "fast", 0)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def make_logits(shape, dtype, device, seed=0, scale=2.0):
    """Random normal logits rounded to ``dtype`` as a torch tensor, and their float64 values."""
    import torch
    t = torch.from_numpy(logits_for(shape, "float32", seed, scale))
    t = t.to(getattr(torch, dtype)).to(device)
    return t, f64(t)


def f64(t):
    import torch
    return t.detach().to("cpu", torch.float64).numpy()


def check_native(logits, x64, k, renormalize, policy):
    import torch
    w, idx = forward(logits, k, renormalize, policy)
    assert (w.dtype, idx.dtype) == (torch.float32, torch.int32)
    assert tuple(w.shape) == tuple(idx.shape) == tuple(x64.shape[:-1]) + (k,)
    ref = references.topk_softmax(x64, k=k, renormalize=renormalize)
    np.testing.assert_array_equal(idx.cpu().numpy(), ref["indices"])
    if ref["weights"].size:
        assert rel_err(f64(w), ref["weights"]) <= WEIGHT_TOL
    return w, idx


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_native_strided_rows_read_like_contiguous(torch, dtype, device):
    """Rows with a stride (a slice of a wider array; on CUDA also off a 16-byte
    boundary, so without vector loads) give what the contiguous copy gives."""
    wide, _ = make_logits((64, 304), dtype, device, seed=3)
    for view in (wide[:, :256], wide[:, 1:257], wide[::2, 8:72]):
        dense = view.contiguous()
        for k in (2, 8, 40):
            for renormalize in (True, False):
                w, idx = check_native(view, f64(view), k, renormalize, "fast")
                w0, idx0 = forward(dense, k, renormalize)
                assert torch.equal(idx, idx0)
                assert rel_err(f64(w), f64(w0)) <= WEIGHT_TOL


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_native_backward_reads_strided_inputs(torch, dtype, device):
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
def test_native_deterministic_run_to_run(torch, policy, device):
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

def test_native_errors_name_the_op_and_the_argument(torch):
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


def test_native_backward_errors_name_the_argument(torch):
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
def test_native_corrupt_indices_are_refused_on_the_cpu(torch, renormalize):
    x = torch.randn(4, 16)
    w, idx = forward(x, 3, renormalize)
    g = torch.ones_like(w)
    for row, bad, match in [(2, [1, 16, 3], "row 2 holds 16, outside \\[0, 16\\), the columns of 'logits'"),
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
def test_native_corrupt_indices_give_nan_rows_on_cuda(torch, renormalize, policy, device):
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
def test_native_cuda_matches_cpu_at_scale(torch, e, k, dtype, device):
    logits, x64 = make_logits((32768 if e <= 256 else 2048, e), dtype, device, seed=e + k)
    for renormalize in (True, False):
        w, idx = check_native(logits, x64, k, renormalize, "fast")
        w_cpu, idx_cpu = forward(logits.cpu(), k, renormalize)
        assert torch.equal(idx.cpu(), idx_cpu)
        assert rel_err(f64(w), f64(w_cpu)) <= WEIGHT_TOL
        dw = torch.randn(w.shape, device=device)
        dx = backward(dw, logits, w, idx, renormalize)
        dx_cpu = backward(dw.cpu(), logits.cpu(), w_cpu, idx_cpu, renormalize)
        assert rel_err(f64(dx), f64(dx_cpu)) <= TOLERANCE[dtype]
