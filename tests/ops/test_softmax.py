"""softmax through every frontend (forward, scale, gradients, errors) against the
float64 reference, then what only one frontend has: the native frontend's masks,
NaN, strides, empty shapes, policies, errors and CUDA paths; the raw XLA FFI
targets and traced policies; torch opcheck."""

from __future__ import annotations

import math

import numpy as np
import pytest

import references
import xpuruntime
from helpers import (DEVICES, DTYPES, POLICIES, TORCH_DEVICES, assert_close, assert_policies_agree,
                     cases, jax_with_targets, make, raises, random_inputs, rel_err, same_bits,
                     shape_id, to_numpy)
from xpuruntime import ops
from xpuruntime._native import core

OP = "softmax"
SHAPES = [(1, 1), (3, 7), (5, 4097), (2, 65536), (64, 128), (2, 3, 64)]
# Every case of the forward and backward tests (through every frontend).
EVERY_CASE = cases(shape=(SHAPES, shape_id), dtype=DTYPES, policy=POLICIES, device=DEVICES)
SCALES = [None, 0.125, 0.25, -1.5, 3.0]
SCALE_SHAPES = [(3, 7), (4, 1000), (5, 4097), (2, 65536)]


def scale_attrs(scale):
    return {} if scale is None else {"scale": scale}


# ---- every frontend -----------------------------------------------------------------------------

@EVERY_CASE
def test_forward(frontend, shape, dtype, policy, device, rng):
    x = random_inputs(rng, shape, dtype, scale=2.0)
    (y,) = frontend.call(OP, x, dtype=dtype, device=device, policy=policy)
    assert_close(y, references.softmax(x)["y"], dtype)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scale", SCALES, ids=str)
@pytest.mark.parametrize("shape", SCALE_SHAPES, ids=shape_id)
def test_scale(frontend, shape, scale, device, rng):
    x = random_inputs(rng, shape)
    (y,) = frontend.call(OP, x, device=device, **scale_attrs(scale))
    assert_close(y, references.softmax(x, **scale_attrs(scale))["y"], "float32", f"scale={scale}")


@EVERY_CASE
def test_backward(grad_frontend, shape, dtype, policy, device, rng):
    x, dy = random_inputs(rng, shape, dtype), random_inputs(rng, shape, dtype)
    (y,), grads = grad_frontend.grad(OP, x, cotangents=[dy], dtype=dtype, device=device,
                                     policy=policy)
    assert_close(y, references.softmax(x)["y"], dtype, "y")
    if shape[-1] == 1:  # softmax of one element is constant: the gradient is exactly 0
        assert np.all(grads["dx"] == 0)
    else:
        assert_close(grads["dx"], references.softmax_vjp(x, dy=dy)["dx"], dtype, "dx")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scale", SCALES, ids=str)
@pytest.mark.parametrize("shape", SCALE_SHAPES, ids=shape_id)
def test_scale_backward(grad_frontend, shape, scale, device, rng):
    x, dy = random_inputs(rng, shape), random_inputs(rng, shape)
    _, grads = grad_frontend.grad(OP, x, cotangents=[dy], device=device, **scale_attrs(scale))
    ref = references.softmax_vjp(x, dy=dy, **scale_attrs(scale))["dx"]
    assert_close(grads["dx"], ref, "float32", f"dx scale={scale}")


# ---- native -------------------------------------------------------------------------------------

def test_native_backward_is_the_analytic_gradient():
    # Against the float64 Jacobian-vector product of softmax itself (not only the formula).
    x = make((4, 33), "float32", seed=6)
    dy = make((4, 33), "float32", seed=7)
    y64 = references.softmax(x, scale=0.7)["y"]
    jac = 0.7 * (np.einsum("ri,ij->rij", y64, np.eye(33)) - np.einsum("ri,rj->rij", y64, y64))
    ref = np.einsum("rij,ri->rj", jac, dy.astype(np.float64))
    dx = ops.softmax_backward(dy, ops.softmax(x, scale=0.7), scale=0.7)
    assert_close(dx, ref, "float32", "softmax backward vs Jacobian")


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_native_masks_nan_and_strided_rows(device):
    x = make((6, 300), "float32", device, seed=8)
    if isinstance(x, np.ndarray):
        x = x.copy()
    x[1, :150] = -np.inf    # masked half row: exp(-inf) = 0
    x[2, 7] = np.nan        # NaN propagates to its row
    y = to_numpy(ops.softmax(x))
    ref = references.softmax(to_numpy(x))["y"]
    ok = [0, 1, 3, 4, 5]
    assert rel_err(y[ok], ref[ok]) <= 1e-5
    assert np.all(y[1, :150] == 0)
    assert np.isnan(y[2]).any()
    # Rows with a stride (every other row of a bigger array) are read, not copied.
    big = make((8, 300), "float32", device, seed=9)
    view = big[::2]
    assert_close(ops.softmax(view), references.softmax(to_numpy(view))["y"], "float32",
                 "strided rows")


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_native_empty(device):
    for shape in [(0, 5), (3, 0), (2, 0, 4)]:
        x = make(shape, "float32", device)
        assert tuple(ops.softmax(x).shape) == shape
        assert tuple(ops.softmax_backward(x, x).shape) == shape


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape", [(5, 4097), (2, 65536), (64, 128)], ids=shape_id)
def test_native_policies_agree_and_are_deterministic(shape, dtype, device):
    x = make(shape, dtype, device, seed=14)
    u = make(shape, dtype, device, seed=15)
    runs = {
        "softmax": lambda p: [ops.softmax(x, scale=0.5, policy=p)],
        "softmax_backward": lambda p: [ops.softmax_backward(u, x, scale=0.5, policy=p)],
    }
    for name, run in runs.items():
        out = {p: run(p) for p in POLICIES}
        assert_policies_agree(out, device, dtype, name)
        for p in ("fast", "deterministic"):
            again = run(p)
            assert all(same_bits(a, b) for a, b in zip(out[p], again)), f"{name}: {p} not bitwise stable"


def test_native_policy_scope():
    x = make((3, 7), "float32")
    with xpuruntime.policy("reference"):
        assert np.array_equal(ops.softmax(x), ops.softmax(x, policy="fast"))


def test_native_bad_inputs():
    torch = pytest.importorskip("torch")
    x = make((4, 8), "float32")
    with raises("softmax", "float32, float16 or bfloat16"):
        ops.softmax(x.astype(np.int32))
    with raises("softmax", "float32, float16 or bfloat16"):
        ops.softmax(x.astype(np.float64))
    with raises("softmax", "at least 1 dimension"):
        ops.softmax(np.float32(1.0).reshape(()))
    with raises("softmax", "contiguous"):
        ops.softmax(x[:, ::2])
    with raises("softmax", "'dy' must have the shape of 'y'"):
        ops.softmax_backward(x[:3], x)
    with raises("softmax", "'dy' must be float32"):
        ops.softmax_backward(torch.from_numpy(x).half(), torch.from_numpy(x))
    with raises("softmax", "'y' must have the shape of 'x'"):
        core.call_op("softmax", "forward", [x], [np.empty((4, 9), np.float32)], None, {},
                     "fast", 0)
    with raises("softmax", "'y' must be float32"):
        core.call_op("softmax", "forward", [x], [np.empty((4, 8), np.float16)], None, {},
                     "fast", 0)
    with raises("softmax", "'scale' must not be NaN"):
        ops.softmax(x, scale=float("nan"))


# v2 CUDA paths (docs/kernels/softmax.md): each shape lands on one launch path of the
# resident kernels (warp per row, one CTA, a cluster of 2/4/8 CTAs at the 8-register
# budget, 8 CTAs at the 16-register budget) or on the looped fallback past 8 CTAs;
# enough rows that every persistent row group walks several rows (next-row prefetch);
# 16-byte and scalar (odd N) rows. 16-byte rows past one packed CTA (bf16 32768 and up,
# f32 32768 and up) take the TMA-staged cluster kernels both ways (forward_staged,
# backward_staged: clusters of 2, 4 and 8, and 3 with a partial last slice in
# sanitize_kernels.py's 40960).
CUDA_SHAPES = [
    (3000, 96),      # warp per row, several rows per warp
    (2000, 257),     # scalar, one CTA
    (1500, 4096),    # one CTA (bf16: 1 vector a thread)
    (700, 8192),     # one CTA (bf16: 2 vectors), f32: a cluster of 2
    (300, 16384),    # bf16: cluster of 2
    (200, 32768),    # bf16: cluster of 4
    (150, 65536),    # bf16: cluster of 8; f32: 8 CTAs at the long-row budget
    (40, 20001),     # scalar, cluster of 8
    (8, 131072),     # bf16: 8 CTAs at the long-row budget; f32: looped fallback
    (5, 65537),      # scalar past 8 CTAs: looped fallback
    (4, 131080),     # 16-byte rows past 8 CTAs: looped fallback
]


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", CUDA_SHAPES, ids=shape_id)
def test_native_cuda_paths(shape, dtype, device):
    x = make(shape, dtype, device, seed=20, scale=3.0)
    dy = make(shape, dtype, device, seed=21)
    for scale in (1.0, -0.7):
        runs = [ops.softmax(x, scale=scale, policy=p) for p in ("fast", "fast", "reference")]
        ref = references.softmax(to_numpy(x), scale=scale)["y"]
        for y in runs:
            assert_close(y, ref, dtype, f"softmax {shape} scale={scale}")
        assert same_bits(runs[0], runs[1]), "softmax fast not bitwise stable"
        y = runs[0]
        grads = [ops.softmax_backward(dy, y, scale=scale, policy=p)
                 for p in ("fast", "fast", "reference")]
        gref = references.softmax_vjp(to_numpy(x), dy=to_numpy(dy), scale=scale)["dx"]
        for dx in grads:
            assert_close(dx, gref, dtype, f"softmax backward {shape} scale={scale}")
        assert same_bits(grads[0], grads[1]), "softmax backward fast not bitwise stable"


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("n", [300, 4096, 65536, 131072])
def test_native_masks_nan_strides(n, device):
    # Masks that cover whole CTA slices of a cluster (and all but one element),
    # a fully masked row (0 / 0: NaN, as the definition), NaN propagation, and
    # strided rows, on every resident path (and the CPU's).
    big = make((12, n), "float32", device, seed=22, scale=2.0)
    x = big[::2].copy() if isinstance(big, np.ndarray) else big[::2].clone()
    x[1, : n // 2] = -math.inf
    x[2, :-1] = -math.inf
    x[3, :] = -math.inf
    x[4, n // 3] = math.nan
    y = to_numpy(ops.softmax(x))
    ref = references.softmax(to_numpy(x))["y"]
    for r in (0, 1, 2, 5):
        assert rel_err(y[r], ref[r]) <= 1e-5, f"row {r}"
    assert np.all(y[1, : n // 2] == 0) and abs(y[2, -1] - 1) <= 1e-6 and np.all(y[2, :-1] == 0)
    assert np.all(np.isnan(y[3])) and np.all(np.isnan(y[4]))
    # The backward from that y: masked entries give exact zeros, the fully masked and
    # the NaN rows NaN.
    g = make((6, n), "float32", device, seed=23)
    dx = to_numpy(ops.softmax_backward(g, ops.softmax(x)))
    dref = references.softmax_vjp(to_numpy(x), dy=to_numpy(g))["dx"]
    for r in (0, 1, 2, 5):
        assert rel_err(dx[r], dref[r]) <= 1e-5, f"backward row {r}"
    assert np.all(dx[1, : n // 2] == 0) and np.all(dx[2, :-1] == 0)
    assert np.all(np.isnan(dx[3])) and np.all(np.isnan(dx[4]))
    view = big[::2]
    assert_close(ops.softmax(view), references.softmax(to_numpy(view))["y"], "float32",
                 "strided rows")
    dy, y_view = big[1::2], ops.softmax(big)[::2]  # strided dy and y
    dx = ops.softmax_backward(dy, y_view)
    assert_close(dx, references.softmax_vjp(to_numpy(view), dy=to_numpy(dy))["dx"], "float32",
                 "strided backward")


# ---- jax ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jax():
    return jax_with_targets(OP)


def test_jax_ffi_softmax(jax):
    """The XLA FFI targets called with jax.ffi directly."""
    jnp = jax.numpy
    x = np.random.default_rng(3).standard_normal((3, 7)).astype(np.float32)
    dy = np.random.default_rng(4).standard_normal((3, 7)).astype(np.float32)
    sds = jax.ShapeDtypeStruct(x.shape, x.dtype)
    y = jax.ffi.ffi_call("xpuruntime_softmax_fwd", sds)(jnp.asarray(x), scale=np.float32(0.5),
                                                        policy="fast")
    assert rel_err(y, references.softmax(x, scale=0.5)["y"]) <= 1e-5
    dx = jax.ffi.ffi_call("xpuruntime_softmax_bwd", sds)(jnp.asarray(dy), y, scale=np.float32(0.5),
                                                         policy="reference")
    assert rel_err(dx, references.softmax_vjp(x, dy=dy, scale=0.5)["dx"]) <= 1e-5


def test_jax_scale_and_policies(jax, rng):
    import xpuruntime.jax as xj
    x = random_inputs(rng, (5, 300))
    ref = references.softmax(x, scale=0.25)["y"]
    for policy in POLICIES:
        assert_close(to_numpy(xj.softmax(jax.numpy.asarray(x), scale=0.25, policy=policy)), ref,
                     "float32", policy)
    text = jax.jit(lambda a: xj.softmax(a, policy="deterministic")).lower(x).compile().as_text()
    assert "xpuruntime_softmax_fwd" in text and "deterministic" in text


def test_jax_trace_time_errors(jax, rng):
    import xpuruntime.jax as xj
    x = jax.numpy.asarray(random_inputs(rng, (4, 8)))
    with pytest.raises(TypeError, match="softmax: 'x' must be float32, float16 or bfloat16, got int32"):
        xj.softmax(x.astype(jax.numpy.int32))


# ---- torch --------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_opcheck(device):
    torch = pytest.importorskip("torch")
    import xpuruntime.interop.torch  # noqa: F401  registers the ops
    x = torch.randn(3, 5, device=device, requires_grad=True)
    torch.library.opcheck(torch.ops.xpuruntime.softmax.default, (x, 0.5, "fast"))


def test_torch_errors():
    torch = pytest.importorskip("torch")
    import xpuruntime.interop.torch as xt
    with pytest.raises(ValueError, match="softmax"):
        xt.softmax(torch.ones(4, 8, dtype=torch.int32))
