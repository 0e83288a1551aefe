"""rms_norm through the native frontend (numpy on the CPU; torch tensors for
half precision and CUDA), against a float64 reference."""

import numpy as np
import pytest

import xpuruntime
from xpuruntime import ops
from conftest import (DTYPES, HAS_TORCH, TORCH_DEVICES, assert_close, random_inputs,
                      rms_norm_reference, to_numpy)

SHAPES = [(1, 1), (3, 7), (5, 4097), (2, 65536), (64, 128), (2, 3, 33), (4, 4096)]
POLICIES = ["fast", "deterministic", "reference"]


def backward(dy, x, w, dh=None, policy=None):
    """rms_norm_backward with the rstd its forward saved (return_stats)."""
    _, rstd = ops.rms_norm(x, w, return_stats=True, policy=policy)
    return ops.rms_norm_backward(dy, x, w, rstd, dh=dh, policy=policy)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("policy", POLICIES)
def test_forward_numpy_f32(rng, shape, policy):
    x = random_inputs(rng, shape)
    w = random_inputs(rng, shape[-1:])
    y = ops.rms_norm(x, w, policy=policy)
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and y.shape == shape
    assert_close(y, rms_norm_reference(x, w)["y"], "float32")


@pytest.mark.parametrize("shape", [(3, 7), (5, 4097), (64, 128)])
def test_residual_numpy_f32(rng, shape):
    x, r = random_inputs(rng, shape), random_inputs(rng, shape)
    w = random_inputs(rng, shape[-1:])
    y, h = ops.rms_norm(x, w, 1e-5, residual=r)
    ref = rms_norm_reference(x, w, 1e-5, residual=r)
    assert_close(h, ref["h"], "float32", "h")
    assert_close(y, ref["y"], "float32", "y")


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 4097), (64, 128)])
def test_backward_numpy_f32(rng, shape):
    x, dy = random_inputs(rng, shape), random_inputs(rng, shape)
    w = random_inputs(rng, shape[-1:])
    dx, dw = backward(dy, x, w)
    ref = rms_norm_reference(x, w, dy=dy)
    if shape[-1] == 1:
        # dx is a cancellation of two terms of size |dy w rstd| down to O(eps):
        # f32 gets it right relative to the terms, not to the tiny result.
        scale = np.abs(dy * w / np.sqrt(x.astype(np.float64) ** 2 + 1e-6)).max()
        assert np.abs(dx - ref["dx"]).max() <= 1e-5 * scale
    else:
        assert_close(dx, ref["dx"], "float32", "dx")
    assert_close(dw, ref["dw"], "float32", "dweight")


def test_zero_rows_and_strided_rows(rng):
    x = np.zeros((0, 16), np.float32)
    assert ops.rms_norm(x, np.ones(16, np.float32)).shape == (0, 16)
    big = random_inputs(rng, (6, 40))
    view = big[:, 3:35]  # rows with a stride of 40 elements
    w = random_inputs(rng, (32,))
    assert_close(ops.rms_norm(view, w), rms_norm_reference(np.ascontiguousarray(view), w)["y"], "float32")


def test_nan_propagates(rng):
    x = random_inputs(rng, (3, 8))
    x[1, 2] = np.nan
    y = ops.rms_norm(x, np.ones(8, np.float32))
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 7), (5, 4097), (2, 65536), (64, 128)])
def test_forward_backward_torch_tensors(rng, device, dtype, shape):
    import torch
    tdt = getattr(torch, dtype)
    x, r, dy = (random_inputs(rng, shape, dtype) for _ in range(3))
    w = random_inputs(rng, shape[-1:], dtype)
    t = lambda a: torch.from_numpy(a).to(device=device, dtype=tdt)  # noqa: E731
    y, h = ops.rms_norm(t(x), t(w), residual=t(r))
    assert isinstance(y, torch.Tensor) and y.dtype == tdt and y.device.type == device
    ref = rms_norm_reference(x, w, residual=r, dtype=dtype)
    assert_close(to_numpy(h), ref["h"], dtype, "h")
    assert_close(to_numpy(y), ref["y"], dtype, "y")
    dx, dw = backward(t(dy), t(x), t(w))
    ref = rms_norm_reference(x, w, dy=dy, dtype=dtype)
    assert_close(to_numpy(dx), ref["dx"], dtype, "dx")
    assert_close(to_numpy(dw), ref["dw"], dtype, "dweight")


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_policies_agree_and_deterministic_repeats(rng, device):
    import torch
    x = torch.from_numpy(random_inputs(rng, (257, 1000))).to(device, torch.bfloat16)
    w = torch.from_numpy(random_inputs(rng, (1000,))).to(device, torch.bfloat16)
    dy = torch.from_numpy(random_inputs(rng, (257, 1000))).to(device, torch.bfloat16)
    outs = {p: backward(dy, x, w, policy=p) for p in POLICIES}
    for p in POLICIES:
        for a, b in zip(outs[p], outs["reference"]):
            assert_close(to_numpy(a), to_numpy(b), "bfloat16", p)
    runs = [backward(dy, x, w, policy="deterministic") for _ in range(5)]
    for dx, dw in runs[1:]:
        assert torch.equal(dx, runs[0][0]) and torch.equal(dw, runs[0][1])


def test_bad_inputs_raise_clear_errors(rng):
    x = random_inputs(rng, (4, 8))
    w = random_inputs(rng, (8,))
    with pytest.raises(ValueError, match=r"rms_norm: 'weight' must have shape \[8\], got \[7\]"):
        ops.rms_norm(x, w[:7])
    with pytest.raises(ValueError, match="rms_norm: 'weight' must be float32, got float64"):
        ops.rms_norm(x, w.astype(np.float64))
    with pytest.raises(ValueError, match="must be float32, float16 or bfloat16, got int32"):
        ops.rms_norm(x.astype(np.int32), w)
    with pytest.raises(ValueError, match="0-d"):
        ops.rms_norm(np.float32(1.0), w)
    with pytest.raises(ValueError, match="'residual' must have the shape of 'x'"):
        ops.rms_norm(x, w, residual=x[:2])
    with pytest.raises(ValueError, match="contiguous in its last dimension"):
        ops.rms_norm(np.asfortranarray(random_inputs(rng, (4, 8))), w)
    with pytest.raises(ValueError, match="'eps' must be >= 0"):
        ops.rms_norm(x, w, -1.0)
    with pytest.raises(ValueError, match="unknown policy"):
        ops.rms_norm(x, w, policy="fastest")
    assert issubclass(xpuruntime.InvalidArgumentError, xpuruntime.Error)


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
def test_mixed_devices_rejected(device):
    import torch
    x = torch.randn(4, 8, device=device)
    with pytest.raises(ValueError, match="all tensors must be on one device"):
        ops.rms_norm(x, torch.randn(8))


# Shapes that land on the v2 CUDA paths (docs/kernels/rms_norm.md): one row split
# over a thread-block cluster (forward 2-8 CTAs, backward 2-8), persistent
# backward groups that walk several rows each (16-byte rows: the v2.1 shared-memory
# ring of 2-4 stages, wrapped several times by (2000, 4096) and (1500, 1000), the
# latter with idle tail threads; scalar rows: next-row prefetch in registers),
# 16-byte and scalar (odd N) vectors, and the fallback past 8 CTAs (N = 65537, 131080).
CLUSTER_SHAPES = [(300, 16384), (40, 32768), (33, 65536), (50, 20001), (3, 65537), (2, 131080),
                  (600, 8192), (2000, 4096), (1500, 1000)]


@pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", CLUSTER_SHAPES)
def test_cluster_paths_cuda(rng, device, dtype, shape):
    import torch
    tdt = getattr(torch, dtype)
    x, r, dy, dh = (random_inputs(rng, shape, dtype) for _ in range(4))
    w = random_inputs(rng, shape[-1:], dtype)
    t = lambda a: torch.from_numpy(a).to(device=device, dtype=tdt)  # noqa: E731
    y, h = ops.rms_norm(t(x), t(w), residual=t(r))
    ref = rms_norm_reference(x, w, residual=r, dtype=dtype)
    assert_close(to_numpy(h), ref["h"], dtype, "h")
    assert_close(to_numpy(y), ref["y"], dtype, "y")
    hn = to_numpy(h)
    for grad_h in (None, dh):
        runs = [backward(t(dy), h, t(w), dh=None if grad_h is None else t(grad_h),
                         policy=p) for p in ("fast", "fast", "reference")]
        ref = rms_norm_reference(hn, w, dy=dy, dtype=dtype)
        if grad_h is not None:
            ref["dx"] = ref["dx"] + grad_h.astype(np.float64)  # dh flows straight into dx
        for dx, dw in runs:
            assert_close(to_numpy(dx), ref["dx"], dtype, "dx")
            assert_close(to_numpy(dw), ref["dw"], dtype, "dweight")
        # `fast` is bitwise deterministic, dweight included.
        assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


def test_return_stats_gives_the_rstd_the_backward_takes(rng):
    x, r, dy = (random_inputs(rng, (2, 3, 40)) for _ in range(3))
    w = random_inputs(rng, (40,))
    y, rstd = ops.rms_norm(x, w, 1e-5, return_stats=True)
    ref = 1.0 / np.sqrt((x.astype(np.float64) ** 2).mean(-1) + 1e-5)
    assert rstd.dtype == np.float32 and rstd.shape == (2, 3)
    assert_close(rstd, ref, "float32")
    y2, h, rstd_h = ops.rms_norm(x, w, residual=r, return_stats=True)
    assert y2.shape == h.shape == x.shape and rstd_h.shape == (2, 3)
    dx, dw = ops.rms_norm_backward(dy, h, w, rstd_h)
    want = rms_norm_reference(h, w, dy=dy)
    assert_close(dx, want["dx"], "float32", "dx")
    assert_close(dw, want["dw"], "float32", "dweight")
    with pytest.raises(ValueError, match=r"^rms_norm: 'rstd' must have 6 elements, got shape \[5\]"):
        ops.rms_norm_backward(dy, h, w, rstd_h.reshape(-1)[:5])
