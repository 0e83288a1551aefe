"""Native frontend tests for softmax, swiglu and geglu (forward and backward).

Every result is compared with a float64 numpy reference computed from the very
inputs the kernel saw (rounded to their dtype), as ||out - ref|| / ||ref||, with the
OPS.md tolerances. float32 runs on numpy arrays, float16 / bfloat16 on torch tensors.
CUDA cases run when this build and torch both see a GPU.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import xpuruntime
from xpuruntime import ops
from xpuruntime._native import core

torch = pytest.importorskip("torch")

SHAPES = [(1, 1), (3, 7), (5, 4097), (2, 65536), (64, 128)]
TOL = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2}
POLICIES = ["fast", "deterministic", "reference"]

HAVE_CUDA = core.cuda_device_count() > 0 and torch.cuda.is_available()
DEVICES = ["cpu"] + (["cuda"] if HAVE_CUDA else [])


# ---- helpers ----------------------------------------------------------------------------------

def make(shape, dtype, device="cpu", seed=0, scale=1.0):
    """Random normal input: numpy for float32 on the CPU, torch otherwise."""
    g = np.random.default_rng(seed)
    a = (g.standard_normal(shape) * scale).astype(np.float32)
    if dtype == "float32" and device == "cpu":
        return a
    t = torch.from_numpy(a).to(getattr(torch, dtype))
    return t.to(device)


def f64(a) -> np.ndarray:
    if isinstance(a, np.ndarray):
        return a.astype(np.float64)
    return a.detach().to("cpu", torch.float64).numpy()


def rel_err(out, ref: np.ndarray) -> float:
    out = f64(out)
    assert out.shape == ref.shape
    den = np.linalg.norm(ref)
    num = np.linalg.norm(out - ref)
    return float(num / den) if den > 0 else float(num)


def dtype_of(a) -> str:
    return str(a.dtype).replace("torch.", "")


def assert_close(out, ref, dtype, what):
    err = rel_err(out, ref)
    assert err <= TOL[dtype], f"{what}: relative error {err:.3e} > {TOL[dtype]:.0e}"


def same_bits(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return a.tobytes() == b.tobytes()
    return bool(torch.equal(a.view(torch.int16) if a.element_size() == 2 else a.view(torch.int32),
                            b.view(torch.int16) if b.element_size() == 2 else b.view(torch.int32)))


# ---- float64 references -----------------------------------------------------------------------

def softmax_ref(x, scale=1.0):
    s = scale * x
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_bwd_ref(dy, y, scale=1.0):
    return scale * y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def sigmoid(g):
    return 1.0 / (1.0 + np.exp(-g))


def swiglu_ref(g, u):
    return g * sigmoid(g) * u


def swiglu_bwd_ref(dy, g, u):
    s = sigmoid(g)
    return dy * u * s * (1 + g * (1 - s)), dy * g * s


K = math.sqrt(2 / math.pi)


def gelu_tanh(g):
    return 0.5 * g * (1 + np.tanh(K * (g + 0.044715 * g**3)))


def gelu_tanh_grad(g):
    t = np.tanh(K * (g + 0.044715 * g**3))
    return 0.5 * (1 + t) + 0.5 * g * (1 - t * t) * K * (1 + 3 * 0.044715 * g * g)


def geglu_ref(g, u):
    return gelu_tanh(g) * u


def geglu_bwd_ref(dy, g, u):
    return dy * u * gelu_tanh_grad(g), dy * gelu_tanh(g)


GLU = {
    "swiglu": (ops.swiglu, ops.swiglu_backward, swiglu_ref, swiglu_bwd_ref),
    "geglu": (ops.geglu, ops.geglu_backward, geglu_ref, geglu_bwd_ref),
}


# ---- softmax ----------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_softmax_forward(shape, dtype, policy, device):
    x = make(shape, dtype, device, seed=1, scale=2.0)
    y = ops.softmax(x, policy=policy)
    assert tuple(y.shape) == shape and dtype_of(y) == dtype
    assert_close(y, softmax_ref(f64(x)), dtype, "softmax")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("scale", [0.125, -1.5, 3.0])
@pytest.mark.parametrize("shape", [(3, 7), (4, 1000), (2, 65536)], ids=str)
def test_softmax_scale(shape, scale, device):
    x = make(shape, "float32", device, seed=2)
    y = ops.softmax(x, scale=scale)
    assert_close(y, softmax_ref(f64(x), scale), "float32", f"softmax scale={scale}")
    dy = make(shape, "float32", device, seed=3)
    dx = ops.softmax_backward(dy, y, scale=scale)
    assert_close(dx, softmax_bwd_ref(f64(dy), f64(y), scale), "float32", "softmax backward")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_softmax_backward(shape, dtype, policy, device):
    x = make(shape, dtype, device, seed=4)
    y = ops.softmax(x, policy=policy)
    dy = make(shape, dtype, device, seed=5)
    dx = ops.softmax_backward(dy, y, policy=policy)
    assert tuple(dx.shape) == shape and dtype_of(dx) == dtype
    ref = softmax_bwd_ref(f64(dy), f64(y))
    if shape[-1] == 1:  # softmax of one element is constant: the gradient is exactly 0
        assert np.all(f64(dx) == 0)
        return
    assert_close(dx, ref, dtype, "softmax backward")


def test_softmax_backward_is_the_analytic_gradient():
    # Against the float64 Jacobian-vector product of softmax itself (not only the formula).
    x = make((4, 33), "float32", seed=6)
    dy = make((4, 33), "float32", seed=7)
    y64 = softmax_ref(f64(x), 0.7)
    jac = 0.7 * (np.einsum("ri,ij->rij", y64, np.eye(33)) - np.einsum("ri,rj->rij", y64, y64))
    ref = np.einsum("rij,ri->rj", jac, f64(dy))
    dx = ops.softmax_backward(dy, ops.softmax(x, scale=0.7), scale=0.7)
    assert_close(dx, ref, "float32", "softmax backward vs Jacobian")


@pytest.mark.parametrize("device", DEVICES)
def test_softmax_masks_nan_and_strided_rows(device):
    x = make((6, 300), "float32", device, seed=8)
    if isinstance(x, np.ndarray):
        x = x.copy()
    x[1, :150] = -np.inf    # masked half row: exp(-inf) = 0
    x[2, 7] = np.nan        # NaN propagates to its row
    y = f64(ops.softmax(x))
    ref = softmax_ref(f64(x))
    ok = [0, 1, 3, 4, 5]
    assert rel_err(y[ok], ref[ok]) <= 1e-5
    assert np.all(y[1, :150] == 0)
    assert np.isnan(y[2]).any()
    # Rows with a stride (every other row of a bigger array) are read, not copied.
    big = make((8, 300), "float32", device, seed=9)
    view = big[::2]
    assert_close(ops.softmax(view), softmax_ref(f64(view)), "float32", "strided rows")


@pytest.mark.parametrize("device", DEVICES)
def test_softmax_empty(device):
    for shape in [(0, 5), (3, 0), (2, 0, 4)]:
        x = make(shape, "float32", device)
        assert tuple(ops.softmax(x).shape) == shape
        assert tuple(ops.softmax_backward(x, x).shape) == shape


# ---- swiglu / geglu ---------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("op", ["swiglu", "geglu"])
def test_glu(op, shape, dtype, policy, device):
    fwd, bwd, ref_fwd, ref_bwd = GLU[op]
    g = make(shape, dtype, device, seed=10, scale=2.0)
    u = make(shape, dtype, device, seed=11)
    dy = make(shape, dtype, device, seed=12)
    y = fwd(g, u, policy=policy)
    assert tuple(y.shape) == shape and dtype_of(y) == dtype
    assert_close(y, ref_fwd(f64(g), f64(u)), dtype, op)
    dg, du = bwd(dy, g, u, policy=policy)
    rdg, rdu = ref_bwd(f64(dy), f64(g), f64(u))
    assert dtype_of(dg) == dtype and dtype_of(du) == dtype
    assert_close(dg, rdg, dtype, f"{op} dgate")
    assert_close(du, rdu, dtype, f"{op} dup")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["swiglu", "geglu"])
def test_glu_layouts_and_extremes(op, device):
    fwd, bwd, ref_fwd, ref_bwd = GLU[op]
    # Strided rows, odd lengths (vector body + scalar tail), and an offset start.
    big = make((10, 37), "float32", device, seed=13, scale=3.0)
    g, u = big[::2, 1:], big[1::2, :-1]
    assert_close(fwd(g, u), ref_fwd(f64(g), f64(u)), "float32", f"{op} strided")
    dg, du = bwd(g, u, g)
    rdg, rdu = ref_bwd(f64(g), f64(u), f64(g))
    assert_close(dg, rdg, "float32", f"{op} strided dgate")
    assert_close(du, rdu, "float32", f"{op} strided dup")
    # Large |gate| saturates without overflow; NaN propagates.
    gx = np.array([[-3e38, -200.0, -30.0, 0.0, 30.0, 200.0, 3e38, np.nan]], np.float32)
    ux = np.ones_like(gx)
    if device != "cpu":
        gx, ux = torch.from_numpy(gx).to(device), torch.from_numpy(ux).to(device)
    y = f64(fwd(gx, ux))
    with np.errstate(over="ignore", invalid="ignore"):
        ref = ref_fwd(f64(gx), f64(ux))
    assert np.allclose(y[0, :7], ref[0, :7], rtol=1e-6, atol=1e-30)
    assert np.isnan(y[0, 7])
    dg, _ = bwd(ux, gx, ux)
    assert np.allclose(f64(dg)[0, :7], [0, 0, 0, 0.5, 1, 1, 1], atol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("op", ["swiglu", "geglu"])
def test_glu_empty(op, device):
    fwd, bwd, _, _ = GLU[op]
    x = make((0, 8), "float32", device)
    assert tuple(fwd(x, x).shape) == (0, 8)
    assert all(tuple(t.shape) == (0, 8) for t in bwd(x, x, x))


# ---- policies ---------------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("shape", [(5, 4097), (2, 65536), (64, 128)], ids=str)
def test_policies_agree_and_are_deterministic(shape, dtype, device):
    x = make(shape, dtype, device, seed=14)
    u = make(shape, dtype, device, seed=15)
    runs = {
        "softmax": lambda p: [ops.softmax(x, scale=0.5, policy=p)],
        "softmax_backward": lambda p: [ops.softmax_backward(u, x, scale=0.5, policy=p)],
        "swiglu": lambda p: [ops.swiglu(x, u, policy=p), *ops.swiglu_backward(u, x, u, policy=p)],
        "geglu": lambda p: [ops.geglu(x, u, policy=p), *ops.geglu_backward(u, x, u, policy=p)],
    }
    for name, run in runs.items():
        out = {p: run(p) for p in POLICIES}
        for p in POLICIES:
            for a, b in zip(out[p], out["reference"]):
                if device == "cpu":
                    assert same_bits(a, b), f"{name}: {p} differs from reference on the CPU"
                else:
                    assert rel_err(a, f64(b)) <= TOL[dtype], f"{name}: {p} vs reference"
        for p in ("fast", "deterministic"):
            again = run(p)
            assert all(same_bits(a, b) for a, b in zip(out[p], again)), f"{name}: {p} not bitwise stable"


def test_policy_scope_and_unknown_policy():
    x = make((3, 7), "float32")
    with xpuruntime.policy("reference"):
        assert np.array_equal(ops.softmax(x), ops.softmax(x, policy="fast"))
    with pytest.raises(ValueError, match="policy"):
        ops.swiglu(x, x, policy="fastest")


def test_kernels_registered():
    keys = {(k["op"], k["direction"], k["device"], k["dtype"], k["policy"]) for k in core.kernels()}
    devices = ["cpu"] + (["cuda"] if xpuruntime._core.built_with_cuda else [])
    for op in ("softmax", "swiglu", "geglu"):
        for d in ("forward", "backward"):
            for dev in devices:
                for dt in ("float32", "float16", "bfloat16"):
                    for p in POLICIES:
                        assert (op, d, dev, dt, p) in keys


# ---- bad inputs -------------------------------------------------------------------------------

def raises(op, match):
    return pytest.raises(ValueError, match=rf"^{op}: .*{match}")


def test_softmax_bad_inputs():
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


@pytest.mark.parametrize("op", ["swiglu", "geglu"])
def test_glu_bad_inputs(op):
    fwd, bwd, _, _ = GLU[op]
    g = make((4, 8), "float32")
    with raises(op, "'up' must have the shape of 'gate'"):
        fwd(g, g[:, :4].copy())
    with raises(op, "'up' must be float32, got float16"):
        fwd(g, g.astype(np.float16))
    with raises(op, "'gate' must be float32, float16 or bfloat16"):
        fwd(g.astype(np.int64), g)
    with raises(op, "'up' .*contiguous"):
        fwd(g[:, :4], g[:, ::2])
    with raises(op, "'dy' must have the shape of 'gate'"):
        bwd(g[:2], g, g)
    with raises(op, "'dy' must be float32"):
        bwd(torch.from_numpy(g).bfloat16(), torch.from_numpy(g), torch.from_numpy(g))
    with raises(op, "output 'y' must be dense"):
        core.call_op(op, "forward", [g, g], [np.empty((8, 4), np.float32).T], None, {}, "fast", 0)
    with raises(op, "'dup' must have the shape of 'gate'"):
        core.call_op(op, "backward", [g, g, g], [np.empty_like(g), np.empty((4, 9), np.float32)],
                     None, {}, "fast", 0)


# ---- softmax v2 CUDA paths (docs/kernels/softmax.md) --------------------------------------------
# Each shape lands on one launch path of the resident kernels (warp per row, one
# CTA, a cluster of 2/4/8 CTAs at the 8-register budget, 8 CTAs at the 16-register
# budget) or on the looped fallback past 8 CTAs; enough rows that every persistent
# row group walks several rows (next-row prefetch); 16-byte and scalar (odd N) rows.
SOFTMAX_CUDA_SHAPES = [
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
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
@pytest.mark.parametrize("shape", SOFTMAX_CUDA_SHAPES, ids=str)
def test_softmax_cuda_paths(shape, dtype, device):
    if not HAVE_CUDA:
        pytest.skip("no CUDA device")
    x = make(shape, dtype, device, seed=20, scale=3.0)
    dy = make(shape, dtype, device, seed=21)
    for scale in (1.0, -0.7):
        runs = [ops.softmax(x, scale=scale, policy=p) for p in ("fast", "fast", "reference")]
        ref = softmax_ref(f64(x), scale)
        for y in runs:
            assert_close(y, ref, dtype, f"softmax {shape} scale={scale}")
        assert same_bits(runs[0], runs[1]), "softmax fast not bitwise stable"
        y = runs[0]
        grads = [ops.softmax_backward(dy, y, scale=scale, policy=p)
                 for p in ("fast", "fast", "reference")]
        gref = softmax_bwd_ref(f64(dy), f64(y), scale)
        for dx in grads:
            assert_close(dx, gref, dtype, f"softmax backward {shape} scale={scale}")
        assert same_bits(grads[0], grads[1]), "softmax backward fast not bitwise stable"


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("n", [300, 4096, 65536, 131072])
def test_softmax_cuda_masks_nan_strides(n, device):
    # Masks that cover whole CTA slices of a cluster (and all but one element),
    # a fully masked row (0 / 0: NaN, as the definition), NaN propagation, and
    # strided rows, on every resident path.
    if not HAVE_CUDA:
        pytest.skip("no CUDA device")
    big = make((12, n), "float32", device, seed=22, scale=2.0)
    x = big[::2].clone()
    x[1, : n // 2] = -math.inf
    x[2, :-1] = -math.inf
    x[3, :] = -math.inf
    x[4, n // 3] = math.nan
    y = f64(ops.softmax(x))
    ref = softmax_ref(f64(x))
    for r in (0, 1, 2, 5):
        assert rel_err(y[r], ref[r]) <= 1e-5, f"row {r}"
    assert np.all(y[1, : n // 2] == 0) and abs(y[2, -1] - 1) <= 1e-6 and np.all(y[2, :-1] == 0)
    assert np.all(np.isnan(y[3])) and np.all(np.isnan(y[4]))
    view = big[::2]
    assert_close(ops.softmax(view), softmax_ref(f64(view)), "float32", "strided rows")
    dy = big[1::2]
    dx = ops.softmax_backward(dy, view)
    assert_close(dx, softmax_bwd_ref(f64(dy), f64(view)), "float32", "strided backward")
