"""rope through every frontend (forward and gradient, both pair layouts, float32 tables
and tables in x's dtype, errors) against the float64 reference, then what only one
frontend has: the native frontend's strides, policies, special values, CUDA launch
paths and errors; the raw XLA FFI targets, vmap and trace-time errors; torch
opcheck and errors."""

from __future__ import annotations

import numpy as np
import pytest

import references
from helpers import (DEVICES, DTYPES, POLICIES, TORCH_DEVICES, assert_close, assert_policies_agree,
                     cases, jax_with_targets, like, make, raises, random_inputs, rel_err, round_to,
                     same_bits, shape_id, to_numpy)
from xpuruntime import ops
from xpuruntime._native import core

OP = "rope"
SHAPES = [(1, 1, 1, 2), (2, 5, 3, 8), (2, 7, 4, 128)]
TABLES = ["float32", "x"]  # cos / sin in float32, or in x's dtype
# Every case of the forward and backward tests (through every frontend).
EVERY_CASE = cases(shape=(SHAPES, shape_id), dtype=DTYPES,
                   interleaved=([False, True], ["halves", "interleaved"]), table=TABLES,
                   policy=POLICIES, device=DEVICES)


def angles(rng, seq, d, dtype="float32"):
    """cos / sin [S, D/2] of random angles, rounded to dtype (float32 numpy)."""
    a = rng.uniform(-np.pi, np.pi, (seq, d // 2))
    return round_to(np.cos(a), dtype), round_to(np.sin(a), dtype)


# ---- every frontend -----------------------------------------------------------------------------

@EVERY_CASE
def test_forward(frontend, shape, dtype, interleaved, table, policy, device, rng):
    table_dtype = dtype if table == "x" else "float32"
    x = random_inputs(rng, shape, dtype)
    c, s = angles(rng, shape[1], shape[3], table_dtype)
    (y,) = frontend.call(OP, x, c, s, dtype=dtype, table_dtype=table_dtype, device=device,
                         policy=policy, interleaved=interleaved)
    assert_close(y, references.rope(x, c, s, interleaved=interleaved)["y"], dtype)


@EVERY_CASE
def test_backward(grad_frontend, shape, dtype, interleaved, table, policy, device, rng):
    table_dtype = dtype if table == "x" else "float32"
    x, dy = random_inputs(rng, shape, dtype), random_inputs(rng, shape, dtype)
    c, s = angles(rng, shape[1], shape[3], table_dtype)
    (y,), grads = grad_frontend.grad(OP, x, c, s, cotangents=[dy], dtype=dtype,
                                     table_dtype=table_dtype, device=device, policy=policy,
                                     interleaved=interleaved)
    assert_close(y, references.rope(x, c, s, interleaved=interleaved)["y"], dtype, "y")
    ref = references.rope_vjp(x, c, s, dy=dy, interleaved=interleaved)
    assert_close(grads["dx"], ref["dx"], dtype, "dx")


def test_shape_error_names_the_argument(frontend, rng):
    x = random_inputs(rng, (2, 3, 2, 8))
    c, s = angles(rng, 3, 8)
    with pytest.raises(Exception, match=r"rope: 'cos' must have shape \[3, 4\], got \[3, 5\]"):
        frontend.call(OP, x, np.ones((3, 5), np.float32), s)


# ---- native -------------------------------------------------------------------------------------

def tables(seq, d, dtype, device, seed=1):
    """cos / sin [S, D/2] of random angles, rounded to dtype: numpy for float32 on the
    CPU, torch otherwise."""
    c, s = angles(np.random.default_rng(seed), seq, d)
    if dtype == "float32" and device == "cpu":
        return c, s
    import torch
    conv = lambda a: torch.from_numpy(a).to(getattr(torch, dtype)).to(device)  # noqa: E731
    return conv(c), conv(s)


def ref(x, c, s, interleaved=False, backward=False):
    s = to_numpy(s)
    return references.rope(to_numpy(x), to_numpy(c), -s if backward else s,
                           interleaved=interleaved)["y"]


@pytest.mark.parametrize("interleaved", [False, True])
def test_native_backward_is_the_vjp(interleaved):
    # Against float64 autograd of the rotation written in torch (its transpose).
    torch = pytest.importorskip("torch")
    shape = (2, 3, 2, 6)
    x, dy = make(shape, "float32", seed=4), make(shape, "float32", seed=5)
    c, s = tables(3, 6, "float32", "cpu")
    xt = torch.tensor(to_numpy(x), requires_grad=True)
    ct, st = (torch.tensor(to_numpy(a))[None, :, None, :] for a in (c, s))
    if interleaved:
        x1, x2 = xt[..., 0::2], xt[..., 1::2]
        y = torch.stack([x1 * ct - x2 * st, x2 * ct + x1 * st], -1).flatten(-2)
    else:
        x1, x2 = xt[..., :3], xt[..., 3:]
        y = torch.cat([x1 * ct - x2 * st, x2 * ct + x1 * st], -1)
    y.backward(torch.tensor(to_numpy(dy)))
    dx = ops.rope_backward(dy, c, s, interleaved=interleaved)
    assert_close(dx, xt.grad.numpy(), "float32", "rope backward vs autograd")


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_native_strided_and_unaligned(dtype, interleaved, device):
    # Rows of D inside longer rows (row stride D + 8), and cos / sin starting one
    # element into their storage (no 16-byte accesses possible): read, not copied.
    pytest.importorskip("torch")
    b, seq, h, d = 2, 6, 3, 64
    big = make((b, seq, h, d + 8), dtype, device, seed=6, numpy_ok=False)
    x = big[..., 4:4 + d]
    cbig, sbig = tables(seq, d + 2, dtype, device, seed=7)
    cbig = like(to_numpy(cbig).astype(np.float32), x, dtype)
    sbig = like(to_numpy(sbig).astype(np.float32), x, dtype)
    c, s = cbig[:, 1:1 + d // 2], sbig[:, 1:1 + d // 2]
    want = ref(x, c, s, interleaved)
    for policy in POLICIES:
        assert_close(ops.rope(x, c, s, interleaved=interleaved, policy=policy), want, dtype,
                     f"strided rope ({policy})")


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_native_policies_agree_and_are_deterministic(dtype, device):
    pytest.importorskip("torch")
    shape = (2, 7, 4, 128)
    x = make(shape, dtype, device, seed=8, numpy_ok=False)
    c, s = tables(7, 128, "float32", device)
    c, s = like(to_numpy(c).astype(np.float32), x), like(to_numpy(s).astype(np.float32), x)
    for interleaved in (False, True):
        out = {p: ops.rope(x, c, s, interleaved=interleaved, policy=p) for p in POLICIES}
        back = {p: ops.rope_backward(x, c, s, interleaved=interleaved, policy=p) for p in POLICIES}
        assert_policies_agree({p: [out[p], back[p]] for p in POLICIES}, device, dtype, "rope")
        again = ops.rope(x, c, s, interleaved=interleaved, policy="fast")
        assert same_bits(again, out["fast"])


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_native_empty_and_nan(device):
    pytest.importorskip("torch")
    x = make((0, 4, 2, 8), "float32", device, numpy_ok=False)
    c, s = tables(4, 8, "float32", device)
    c, s = like(to_numpy(c).astype(np.float32), x), like(to_numpy(s).astype(np.float32), x)
    assert tuple(ops.rope(x, c, s).shape) == (0, 4, 2, 8)
    x = make((1, 4, 2, 8), "float32", device, numpy_ok=False)
    x[0, 1, 0, 2] = float("nan")
    y = to_numpy(ops.rope(x, c, s))
    assert np.isnan(y[0, 1, 0, 2]) and np.isnan(y[0, 1, 0, 6])
    assert np.isfinite(np.delete(y.reshape(-1), [8 * 2 + 2, 8 * 2 + 6])).all()


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("interleaved", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_native_launch_shapes_cuda(dtype, interleaved, device):
    # The CUDA launch paths: R = 4, 2 and 1 heads a thread (H = 8, 4, 6, 2, 3, 1),
    # vector groups that do and do not divide D / 2 (D = 2 and 6 fall to scalar),
    # cos / sin in f32 and in x's dtype. Outputs are poisoned with NaN first, so an
    # element no thread writes fails the check.
    import torch
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
                assert not torch.isnan(y).any(), f"unwritten elements H={h} D={d}"
                assert_close(y, ref(x, c, s, interleaved, backward), dtype,
                             f"rope H={h} D={d} cs={cs_dtype} bwd={backward}")


def test_native_bad_inputs():
    torch = pytest.importorskip("torch")
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


# ---- jax ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jax():
    return jax_with_targets(OP)


@pytest.mark.parametrize("interleaved", [False, True])
def test_jax_ffi(jax, rng, interleaved):
    """The XLA FFI targets called with jax.ffi directly."""
    jnp = jax.numpy
    x = random_inputs(rng, (2, 5, 3, 8))
    c, s = angles(rng, 5, 8)
    sds = jax.ShapeDtypeStruct(x.shape, x.dtype)
    y = jax.ffi.ffi_call("xpuruntime_rope_fwd", sds)(
        jnp.asarray(x), jnp.asarray(c), jnp.asarray(s), interleaved=interleaved, policy="fast")
    assert rel_err(y, ref(x, c, s, interleaved)) <= 1e-5
    dx = jax.ffi.ffi_call("xpuruntime_rope_bwd", sds)(
        y, jnp.asarray(c), jnp.asarray(s), interleaved=interleaved, policy="reference")
    assert rel_err(dx, x) <= 1e-5  # the inverse rotation
    with pytest.raises(Exception, match="rope: 'cos' must have shape"):
        jax.ffi.ffi_call("xpuruntime_rope_fwd", sds)(
            jnp.asarray(x), jnp.asarray(c[:2]), jnp.asarray(s), interleaved=interleaved,
            policy="fast").block_until_ready()


@pytest.mark.parametrize("interleaved", [False, True])
def test_jax_vmap(jax, rng, interleaved):
    import xpuruntime.jax as xj
    jnp = jax.numpy
    x = random_inputs(rng, (2, 2, 7, 4, 16))
    c, s = angles(rng, 7, 16)
    got = jax.vmap(lambda a: xj.rope(a, jnp.asarray(c), jnp.asarray(s),
                                     interleaved=interleaved))(jnp.asarray(x))
    for i in range(2):
        assert_close(to_numpy(got[i]), ref(x[i], c, s, interleaved), "float32", "vmap")


def test_jax_errors(jax):
    import xpuruntime.jax as xj
    jnp = jax.numpy
    # Trace-time errors are the core's, naming the argument (issue 15).
    with pytest.raises(ValueError, match=r"rope: the head dimension D \(last dim of 'x'\) must be even"):
        xj.rope(jnp.ones((1, 2, 1, 3)), jnp.ones((2, 1)), jnp.ones((2, 1)))
    with pytest.raises(ValueError, match=r"rope: 'x' must be 4-d \[B, S, H, D\]"):
        jax.jit(xj.rope)(jnp.ones((2, 1, 4)), jnp.ones((2, 2)), jnp.ones((2, 2)))
    with pytest.raises(ValueError, match=r"rope: 'sin' must have shape \[2, 2\], got \[3, 2\]"):
        xj.rope(jnp.ones((1, 2, 1, 4)), jnp.ones((2, 2)), jnp.ones((3, 2)))
    with pytest.raises(TypeError, match="rope: 'cos' must be float16 or float32, got bfloat16"):
        xj.rope(jnp.ones((1, 2, 1, 4), jnp.float16), jnp.ones((2, 2), jnp.bfloat16), jnp.ones((2, 2)))


# ---- torch --------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_opcheck(device):
    torch = pytest.importorskip("torch")
    import xpuruntime.interop.torch  # noqa: F401  registers the ops
    x = torch.randn(2, 5, 3, 8, device=device, requires_grad=True)
    cos, sin = torch.randn(5, 4, device=device), torch.randn(5, 4, device=device)
    torch.library.opcheck(torch.ops.xpuruntime.rope.default, (x, cos, sin, True, "fast"))


def test_torch_errors():
    torch = pytest.importorskip("torch")
    import xpuruntime.interop.torch as xt
    with pytest.raises(ValueError, match="rope"):
        xt.rope(torch.randn(1, 2, 1, 3), torch.randn(2, 1), torch.randn(2, 1))
