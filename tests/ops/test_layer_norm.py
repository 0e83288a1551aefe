"""layer_norm through every frontend (forward, eps, gradients, errors) against the
float64 reference, then what only one frontend has: the native frontend's saved
statistics, accuracy cases, layouts, policies and CUDA paths; the raw XLA FFI
targets and JAX batching; torch opcheck."""

from __future__ import annotations

import numpy as np
import pytest

import references
import xpuruntime
from helpers import (DEVICES, DTYPES, POLICIES, TOLERANCE, TORCH_DEVICES, assert_close,
                     assert_policies_agree, cases, jax_with_targets, random_inputs, rel_err,
                     shape_id, to_numpy)
from xpuruntime import ops
from xpuruntime._native import core

OP = "layer_norm"
SHAPES = [(1, 1), (3, 7), (5, 4097), (2, 65536), (64, 128), (2, 3, 64)]
# Every case of the forward and backward tests (through every frontend).
EVERY_CASE = cases(shape=(SHAPES, shape_id), dtype=DTYPES, policy=POLICIES, device=DEVICES)
EPS = 1e-5
OFFSET = 3.0  # a nonzero mean: variance by E[x^2] - E[x]^2 would lose digits here


def inputs(rng, shape, dtype):
    """x (offset normal), weight, bias, dy rounded to dtype."""
    n = shape[-1:]
    return (random_inputs(rng, shape, dtype, offset=OFFSET, scale=1.5),
            random_inputs(rng, n, dtype), random_inputs(rng, n, dtype),
            random_inputs(rng, shape, dtype))


# ---- every frontend -----------------------------------------------------------------------------

@EVERY_CASE
def test_forward(frontend, shape, dtype, policy, device, rng):
    x, w, b, _ = inputs(rng, shape, dtype)
    (y,) = frontend.call(OP, x, w, b, dtype=dtype, device=device, policy=policy)
    assert_close(y, references.layer_norm(x, w, b)["y"], dtype)


@pytest.mark.parametrize("eps", [None, 0.25, 0.5], ids=["default_eps", "eps0.25", "eps0.5"])
def test_eps(frontend, eps, rng):
    x, w, b, _ = inputs(rng, (5, 64), "float32")
    attrs = {} if eps is None else {"eps": eps}
    (y,) = frontend.call(OP, x, w, b, **attrs)
    assert_close(y, references.layer_norm(x, w, b, **attrs)["y"], "float32")


@EVERY_CASE
def test_backward(grad_frontend, shape, dtype, policy, device, rng):
    x, w, b, dy = inputs(rng, shape, dtype)
    (y,), grads = grad_frontend.grad(OP, x, w, b, cotangents=[dy], dtype=dtype, device=device,
                                     policy=policy)
    ref = references.layer_norm_vjp(x, w, b, dy=dy)
    assert_close(y, references.layer_norm(x, w, b)["y"], dtype, "y")
    if shape[-1] == 1:
        # dx is exactly 0 (x - mean = 0), reached as rstd * (g - mean(g)) with
        # rstd = eps^-1/2 ~ 316: rounding of those terms (FMA on the GPU) leaves a
        # fraction of their size. Judge it against that size, not against zero.
        scale = np.abs(dy * w).max() / np.sqrt(EPS)
        assert np.abs(grads["dx"] - ref["dx"]).max() <= 0.1 * TOLERANCE[dtype] * scale
    else:
        assert_close(grads["dx"], ref["dx"], dtype, "dx")
    assert_close(grads["dweight"], ref["dweight"], dtype, "dweight")
    assert_close(grads["dbias"], ref["dbias"], dtype, "dbias")


def test_shape_error_names_the_argument(frontend, rng):
    x, w, b, _ = inputs(rng, (4, 8), "float32")
    with pytest.raises(Exception, match=r"layer_norm: 'bias' must have shape \[8\], got \[7\]"):
        frontend.call(OP, x, w, b[:7])


# ---- native -------------------------------------------------------------------------------------

def make(shape, dtype="float32", device="cpu", seed=0):
    """x (offset normal), weight, bias, dy as torch tensors in dtype on device."""
    import torch
    rng = np.random.default_rng(seed)
    n = shape[-1]
    arrays = (rng.standard_normal(shape) * 1.5 + OFFSET, rng.standard_normal(n),
              rng.standard_normal(n), rng.standard_normal(shape))
    return tuple(torch.tensor(a, dtype=getattr(torch, dtype), device=device) for a in arrays)


def ref_stats(x, w, b, eps=EPS):
    r = references.layer_norm(to_numpy(x), to_numpy(w), to_numpy(b), eps=eps)
    return r["y"], r["mean"], r["rstd"]


def ref_grads(dy, x, w, b=None):
    r = references.layer_norm_vjp(to_numpy(x), to_numpy(w), np.zeros(w.shape[-1]), dy=to_numpy(dy))
    return r["dx"], r["dweight"], r["dbias"]


def backward(dy, x, w, b=None, policy=None):
    """layer_norm_backward with the statistics its forward saved (return_stats)."""
    _, mean, rstd = ops.layer_norm(x, w, w if b is None else b, return_stats=True, policy=policy)
    return ops.layer_norm_backward(dy, x, w, mean, rstd, policy=policy)


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("shape", SHAPES[:5], ids=shape_id)
def test_native_return_stats(torch, shape, policy, device):
    x, w, b, _ = make(shape, "float32", device)
    y, mean, rstd = ops.layer_norm(x, w, b, return_stats=True, policy=policy)
    ref_y, ref_mean, ref_rstd = ref_stats(x, w, b)
    assert y.dtype == torch.float32 and tuple(y.shape) == shape and y.device == x.device
    assert rel_err(y, ref_y) <= 1e-5
    assert rel_err(mean, ref_mean) <= 1e-5
    assert rel_err(rstd, ref_rstd) <= 1e-5


def test_native_numpy_in_numpy_out():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((4, 3, 33)) + OFFSET).astype(np.float32)
    w = rng.standard_normal(33).astype(np.float32)
    b = rng.standard_normal(33).astype(np.float32)
    y = ops.layer_norm(x, w, b)
    assert isinstance(y, np.ndarray) and y.shape == x.shape and y.dtype == np.float32
    assert rel_err(y, references.layer_norm(x, w, b)["y"]) <= 1e-5
    y2 = ops.layer_norm(x, w, b, eps=0.5)
    assert rel_err(y2, references.layer_norm(x, w, b, eps=0.5)["y"]) <= 1e-5


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("n", [4096, 65536, 70001])  # one CTA, a cluster, the looped kernel
def test_native_large_mean_small_spread_is_accurate(torch, device, n):
    # Mean 1000, standard deviation 0.1: E[x^2] - E[x]^2 in f32 would be garbage; the
    # CUDA kernels merge per-thread statistics with Chan's formula, which must hold up.
    rng = np.random.default_rng(2)
    x = (1000.0 + 0.1 * rng.standard_normal((4, n))).astype(np.float32)
    w = np.ones(n, np.float32)
    b = np.zeros(n, np.float32)
    y, mean, rstd = ops.layer_norm(torch.tensor(x, device=device), torch.tensor(w, device=device),
                                   torch.tensor(b, device=device), return_stats=True)
    ref_y, ref_mean, ref_rstd = ref_stats(x, w, b)
    assert rel_err(y, ref_y) <= 1e-3  # x itself carries f32 rounding of 1000 + small
    assert rel_err(mean, ref_mean) <= 1e-6
    assert rel_err(rstd, ref_rstd) <= 1e-3


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("n", [4096, 65536])
def test_native_outlier_first_elements_are_accurate(torch, device, n):
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
    ref_y, ref_mean, ref_rstd = ref_stats(x, w, b)
    assert rel_err(y, ref_y) <= 1e-5
    assert rel_err(mean, ref_mean) <= 1e-5
    assert rel_err(rstd, ref_rstd) <= 1e-5


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("shape", SHAPES[:5], ids=shape_id)
def test_native_backward_with_saved_stats(torch, shape, device):
    x, w, b, dy = make(shape, "float32", device, seed=4)
    # The saved statistics do not depend on bias: the backward is the same either way.
    _, mean, rstd = ops.layer_norm(x, w, b, return_stats=True)
    saved = ops.layer_norm_backward(dy, x, w, mean, rstd)
    other_bias = backward(dy, x, w)
    for a, r in zip(saved, other_bias):
        assert torch.equal(a, r)
    _, rmean, rrstd = ref_stats(x, w, b)
    assert rel_err(mean, rmean) <= 1e-5
    assert rel_err(rstd, rrstd) <= 1e-5


def test_native_backward_matches_torch_autograd(torch):
    x, w, b, dy = make((6, 5, 96), "float32", seed=6)
    xd, wd, bd = (t.double().requires_grad_() for t in (x, w, b))
    torch.nn.functional.layer_norm(xd, (96,), wd, bd, EPS).backward(dy.double())
    dx, dw, db = backward(dy, x, w)
    assert rel_err(dx, to_numpy(xd.grad)) <= 1e-5
    assert rel_err(dw, to_numpy(wd.grad)) <= 1e-5
    assert rel_err(db, to_numpy(bd.grad)) <= 1e-5


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES[:5], ids=shape_id)
def test_native_policies_agree_and_are_repeatable(torch, shape, dtype, device):
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
    assert_policies_agree(outs, device, dtype, "layer_norm", against="fast")


def test_native_scoped_policy_is_honoured(torch):
    x, w, b, _ = make((3, 7))
    with xpuruntime.policy("reference"):
        y = ops.layer_norm(x, w, b)
    assert torch.equal(y, ops.layer_norm(x, w, b, policy="reference"))


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_native_strided_rows(torch, device):
    x, w, b, dy = make((6, 200), "float32", device, seed=8)
    xs, dys = x[:, 3:131], dy[:, 5:133]  # row stride 200, misaligned starts
    ws, bs = w[:128].contiguous(), b[:128].contiguous()
    assert not xs.is_contiguous()
    y = ops.layer_norm(xs, ws, bs)
    assert rel_err(y, ref_stats(xs, ws, bs)[0]) <= 1e-5
    dx, dw, db = backward(dys, xs, ws)
    for out, ref in zip((dx, dw, db), ref_grads(dys, xs, ws)):
        assert rel_err(out, ref) <= 1e-5


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_native_zero_rows(torch, device):
    x, w, b, dy = make((0, 16), "float32", device)
    y, mean, rstd = ops.layer_norm(x, w, b, return_stats=True)
    assert tuple(y.shape) == (0, 16) and tuple(mean.shape) == (0,) and tuple(rstd.shape) == (0,)
    dx, dw, db = backward(dy, x, w)
    assert tuple(dx.shape) == (0, 16)
    assert torch.equal(dw, torch.zeros_like(w)) and torch.equal(db, torch.zeros_like(b))


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_native_leading_dims(torch, device):
    x, w, b, dy = make((2, 3, 4, 40), "bfloat16", device, seed=9)
    y = ops.layer_norm(x, w, b)
    assert tuple(y.shape) == (2, 3, 4, 40)
    assert rel_err(y, ref_stats(x, w, b)[0]) <= TOLERANCE["bfloat16"]


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("n", [64, 70000])
def test_native_nan_propagates_to_its_row(torch, device, n):
    x, w, b, dy = make((3, n), "float32", device, seed=10)
    x[1, n // 2] = float("nan")
    y = ops.layer_norm(x, w, b)
    assert torch.isnan(y[1]).all()
    assert torch.isfinite(y[0]).all() and torch.isfinite(y[2]).all()
    dx, _, _ = backward(dy, x, w)
    assert torch.isnan(dx[1]).all() and torch.isfinite(dx[0]).all()


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
def test_native_bad_forward_inputs(x, w, b):
    with pytest.raises(ValueError, match="layer_norm"):
        ops.layer_norm(x, w, b)
    with pytest.raises(xpuruntime.InvalidArgumentError, match="layer_norm"):
        ops.layer_norm(x, w, b)


def test_native_bad_backward_inputs():
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
    with pytest.raises(ValueError, match="^layer_norm: 'mean' is required"):
        ops.layer_norm_backward(_np((4, 8)), x, w, None, stat)         # a stat missing


def test_native_bad_eps():
    with pytest.raises(ValueError, match="layer_norm"):
        ops.layer_norm(_np((2, 4)), _np((4,)), _np((4,)), eps=-1.0)


def test_native_workspace_size_is_a_pure_function_of_shape():
    def ws(rows, n):
        shapes = [(rows, n), (rows, n), (n,), (rows,), (rows,)]
        return core.workspace_bytes("layer_norm", "backward", shapes, {})
    assert ws(0, 16) == 2 * 16 * 4
    assert ws(3, 7) == 2 * 3 * 7 * 4
    assert ws(10**6, 128) == 2 * 512 * 128 * 4
    assert ws(10**6, 65536) == 2 * 128 * 65536 * 4


# v2 CUDA forward paths (docs/kernels/layer_norm.md): one CTA per row (4096, 8192), a
# row split over a thread-block cluster of 2, 4 and 8 CTAs (16-byte vectors: 32768,
# 65536, 131072; scalar odd rows: 4097, 20001), and the looped fallback past 8 CTAs
# (65537, 131080). Many rows, so that CTAs walk rows and the DSMEM slots alternate.
GPU_FORWARD_SHAPES = [(300, 4096), (129, 8192), (40, 32768), (33, 65536), (5, 131072), (50, 4097),
                      (17, 20001), (3, 65537), (2, 131080), (7, 1), (1000, 16)]


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", GPU_FORWARD_SHAPES)
def test_native_forward_cluster_paths_cuda(torch, shape, dtype, device):
    x, w, b, _ = make(shape, dtype, device, seed=11)
    ref_y, ref_mean, ref_rstd = ref_stats(x, w, b)
    runs = [ops.layer_norm(x, w, b, return_stats=True, policy=p)
            for p in ("fast", "fast", "deterministic", "reference")]
    for y, mean, rstd in runs:
        assert rel_err(y, ref_y) <= TOLERANCE[dtype]
        assert rel_err(mean, ref_mean) <= 1e-5  # f32 statistics whatever the dtype
        assert rel_err(rstd, ref_rstd) <= 1e-4
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
def test_native_forward_cluster_large_mean_cuda(torch, device, n):
    """The centred second pass keeps digits when |mean| >> spread, split rows included."""
    # As test_native_large_mean_small_spread_is_accurate: mean 1000, standard deviation 0.1.
    rng = np.random.default_rng(12)
    xn = (1000.0 + 0.1 * rng.standard_normal((8, n))).astype(np.float32)
    x = torch.tensor(xn, device=device)
    w = torch.ones(n, device=device)
    b = torch.zeros(n, device=device)
    y, _, rstd = ops.layer_norm(x, w, b, return_stats=True)
    ref_y, _, ref_rstd = ref_stats(xn, np.ones(n), np.zeros(n))
    assert rel_err(y, ref_y) <= 1e-3
    assert rel_err(rstd, ref_rstd) <= 1e-3


# ---- jax ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jax():
    return jax_with_targets(OP)


def test_jax_ffi_forward_and_backward(jax, rng):
    """The XLA FFI targets called with jax.ffi directly."""
    jnp = jax.numpy
    x, w, b, dy = inputs(rng, (4, 3, 96), "float32")
    rows = 12
    f32 = jnp.float32

    @jax.jit
    def fwd(x, w, b):
        return jax.ffi.ffi_call(
            "xpuruntime_layer_norm_fwd",
            (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((rows,), f32),
             jax.ShapeDtypeStruct((rows,), f32)),
        )(x, w, b, eps=np.float32(EPS), policy="fast")

    y, mean, rstd = fwd(x, w, b)
    ref = references.layer_norm(x, w, b)
    assert rel_err(y, ref["y"]) <= 1e-5
    assert rel_err(np.asarray(mean).reshape(4, 3), ref["mean"]) <= 1e-5
    assert rel_err(np.asarray(rstd).reshape(4, 3), ref["rstd"]) <= 1e-5

    ws = core.workspace_bytes("layer_norm", "backward",
                              [x.shape, x.shape, w.shape, (rows,), (rows,)], {})

    @jax.jit
    def bwd(dy, x, w, mean, rstd):
        return jax.ffi.ffi_call(
            "xpuruntime_layer_norm_bwd",
            (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct(w.shape, w.dtype),
             jax.ShapeDtypeStruct(w.shape, w.dtype), jax.ShapeDtypeStruct((ws,), jnp.uint8)),
        )(dy, x, w, mean, rstd, policy="deterministic")

    dx, dw, db, _ = bwd(dy, x, w, mean, rstd)
    ref = references.layer_norm_vjp(x, w, b, dy=dy)
    assert rel_err(dx, ref["dx"]) <= 1e-5
    assert rel_err(dw, ref["dweight"]) <= 1e-5
    assert rel_err(db, ref["dbias"]) <= 1e-5


def test_jax_ffi_error_is_reported(jax, rng):
    x, w, b, _ = inputs(rng, (2, 8), "float32")
    call = jax.ffi.ffi_call(
        "xpuruntime_layer_norm_fwd",
        (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((2,), np.float32),
         jax.ShapeDtypeStruct((2,), np.float32)))
    with pytest.raises(Exception, match="layer_norm"):
        jax.block_until_ready(call(x, w[:7], b, eps=np.float32(EPS), policy="fast"))


def test_jax_batched_parameters(jax, rng):
    import xpuruntime.jax as xj
    jnp = jax.numpy
    x, dy = random_inputs(rng, (3, 4, 32)), random_inputs(rng, (3, 4, 32))
    w, b = random_inputs(rng, (3, 32)), random_inputs(rng, (3, 32))
    loss = lambda a, c, d, g: jnp.sum(xj.layer_norm(a, c, d) * g)  # noqa: E731
    grads = jax.vmap(jax.grad(loss, argnums=(0, 1, 2)))(*map(jnp.asarray, (x, w, b, dy)))
    ys = jax.vmap(xj.layer_norm)(*map(jnp.asarray, (x, w, b)))
    for i in range(3):
        assert_close(to_numpy(ys[i]), references.layer_norm(x[i], w[i], b[i])["y"], "float32")
        ref = references.layer_norm_vjp(x[i], w[i], b[i], dy=dy[i])
        for g, key in zip(grads, ("dx", "dweight", "dbias")):
            assert_close(to_numpy(g[i]), ref[key], "float32", key)


def test_jax_trace_time_errors(jax, rng):
    import xpuruntime.jax as xj
    x = jax.numpy.asarray(random_inputs(rng, (4, 8)))
    with pytest.raises(ValueError, match=r"layer_norm: 'bias' must have shape \[8\], got \[7\]"):
        xj.layer_norm(x, x[0], x[0, :7])


# ---- torch --------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_opcheck(torch, device):
    import xpuruntime.interop.torch  # noqa: F401  registers the ops
    x, w, b = (torch.randn(s, device=device, requires_grad=True) for s in ((3, 5), (5,), (5,)))
    torch.library.opcheck(torch.ops.xpuruntime.layer_norm.default, (x, w, b, 1e-5, "fast"))


def test_torch_errors(torch):
    import xpuruntime.interop.torch as xt
    x = torch.randn(4, 8)
    with pytest.raises(ValueError, match=r"layer_norm: 'bias' must have shape \[8\]"):
        xt.layer_norm(x, torch.randn(8), torch.randn(7))
