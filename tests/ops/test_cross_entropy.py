"""cross_entropy through every frontend (loss and dlogits for every reduction, label
smoothing, both label dtypes, ignore_index, errors) against the float64 reference,
then what only one frontend has: the native frontend's saved lse, long and strided
rows, policies, edge cases, CUDA launch paths and errors; the raw XLA FFI targets,
vmap and trace-time errors; torch opcheck, torch.compile and errors."""

from __future__ import annotations

import numpy as np
import pytest

import references
from helpers import (DEVICES, DTYPES, POLICIES, TORCH_DEVICES, assert_close, assert_policies_agree,
                     cases, jax_with_targets, like, make, raises, random_inputs, rel_err,
                     same_bits, shape_id, to_numpy)
from xpuruntime import ops
from xpuruntime._native import core

OP = "cross_entropy"
SHAPES = [(1, 1), (7, 33), (5, 4097), (3, 70000)]
REDUCTIONS = ["mean", "sum", "none"]
IGNORE = -100
# Every case of the forward and backward tests (through every frontend).
EVERY_CASE = cases(shape=(SHAPES, shape_id), dtype=DTYPES, ls=([0.0, 0.1], ["ls0", "ls0.1"]),
                   reduction=REDUCTIONS, ltype=["int32", "int64"], policy=POLICIES,
                   device=DEVICES)


def labels_for(rng, t, v, ltype="int64", ignore=IGNORE):
    """Random labels; rows 1, 4, 7, ... are ``ignore`` (row 0 always counts)."""
    lab = rng.integers(0, v, t).astype(np.int64)
    lab[1::3] = ignore
    return lab.astype(ltype)


def dloss_for(rng, t, reduction):
    return (rng.standard_normal(t) if reduction == "none" else np.array(0.7)).astype(np.float32)


# ---- every frontend -----------------------------------------------------------------------------

@EVERY_CASE
def test_forward(frontend, shape, dtype, ls, reduction, ltype, policy, device, rng):
    x = random_inputs(rng, shape, dtype, scale=2.0)
    lab = labels_for(rng, *shape, ltype)
    attrs = dict(label_smoothing=ls, reduction=reduction)
    (loss,) = frontend.call(OP, x, lab, dtype=dtype, device=device, policy=policy, **attrs)
    # The loss is f32 whatever the logits' dtype: judged at f32 accuracy.
    assert_close(loss, references.cross_entropy(x, lab, **attrs)["loss"], "float32", "loss")


@EVERY_CASE
def test_backward(grad_frontend, shape, dtype, ls, reduction, ltype, policy, device, rng):
    x = random_inputs(rng, shape, dtype, scale=2.0)
    lab = labels_for(rng, *shape, ltype)
    dloss = dloss_for(rng, shape[0], reduction)
    attrs = dict(label_smoothing=ls, reduction=reduction)
    (loss,), grads = grad_frontend.grad(OP, x, lab, cotangents=[dloss], dtype=dtype,
                                        device=device, policy=policy, **attrs)
    assert_close(loss, references.cross_entropy(x, lab, **attrs)["loss"], "float32", "loss")
    ref = references.cross_entropy_vjp(x, lab, dloss=dloss, **attrs)["dlogits"]
    assert_close(grads["dlogits"], ref, dtype, "dlogits")
    assert np.all(grads["dlogits"][lab == IGNORE] == 0)


@pytest.mark.parametrize("ignore_index", [-1, 7])
def test_ignore_index(frontend, ignore_index, rng):
    x = random_inputs(rng, (7, 33))
    lab = labels_for(rng, 7, 33, ignore=ignore_index)
    attrs = dict(ignore_index=ignore_index, label_smoothing=0.1, reduction="sum")
    (loss,) = frontend.call(OP, x, lab, **attrs)
    assert_close(loss, references.cross_entropy(x, lab, **attrs)["loss"], "float32")


def test_out_of_range_label_names_the_row(frontend):
    # On the CPU the labels are read on the host: a label outside [0, V) is an error.
    with pytest.raises(Exception, match="cross_entropy: 'labels': label 4 of row 1 is out of range"):
        frontend.call(OP, np.zeros((2, 4), np.float32), np.array([0, 4], np.int64))


def test_unknown_reduction_is_refused(frontend):
    with pytest.raises(Exception, match="cross_entropy: unknown reduction 'avg'"):
        frontend.call(OP, np.zeros((2, 4), np.float32), np.array([0, 1], np.int64),
                      reduction="avg")


# ---- native -------------------------------------------------------------------------------------

def ce_case(shape, dtype, ltype, device, seed=10):
    x = make(shape, dtype, device, seed=seed, scale=2.0)
    lab_np = labels_for(np.random.default_rng(9), *shape, ltype)
    lab = lab_np if isinstance(x, np.ndarray) else like(lab_np, x)
    return x, lab, lab_np


def ref_loss(x, lab, **attrs):
    return references.cross_entropy(to_numpy(x), to_numpy(lab).astype(np.int64), **attrs)["loss"]


def ref_dlogits(x, lab, dloss, **attrs):
    return references.cross_entropy_vjp(to_numpy(x), to_numpy(lab).astype(np.int64),
                                        dloss=dloss, **attrs)["dlogits"]


def ce_backward(dloss, x, lab, *, policy=None, **attrs):
    """cross_entropy_backward with the lse its forward saved (return_stats)."""
    _, lse = ops.cross_entropy(x, lab, return_stats=True, policy=policy, **attrs)
    return ops.cross_entropy_backward(dloss, x, lab, lse, policy=policy, **attrs)


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7, 33), (5, 4097)], ids=shape_id)
def test_native_backward_takes_the_lse_of_any_reduction(shape, dtype, reduction, device):
    # The saved lse depends on the logits and ignore_index only: one saved by a forward
    # of another reduction serves as well.
    x, lab, lab_np = ce_case(shape, dtype, "int64", device)
    dloss_np = dloss_for(np.random.default_rng(11), shape[0], reduction)
    attrs = dict(ignore_index=IGNORE, label_smoothing=0.1, reduction=reduction)
    want = ref_dlogits(x, lab_np, dloss_np, **attrs)
    _, lse = ops.cross_entropy(x, lab, return_stats=True, **attrs)
    other = ops.cross_entropy(x, lab, ignore_index=IGNORE, reduction="none", return_stats=True)[1]
    assert_close(lse, references.cross_entropy(to_numpy(x), lab_np, **attrs)["lse"], "float32")
    for saved in (lse, other):
        dx = ops.cross_entropy_backward(like(dloss_np, x), x, lab, saved, **attrs)
        assert_close(dx, want, dtype, "dlogits")


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_native_long_rows_and_strides(device):
    # V = 256000 (the looped single pass), and logits rows inside longer rows with an
    # odd offset (no 16-byte accesses), through every policy.
    torch = pytest.importorskip("torch")
    x = make((2, 256000), "float32", device, seed=12, scale=3.0, numpy_ok=False)
    lab = torch.tensor([5, 255999], device=x.device)
    attrs = dict(label_smoothing=0.1, reduction="sum")
    ref, ref_dx = ref_loss(x, lab, **attrs), ref_dlogits(x, lab, 1.0, **attrs)
    big = make((4, 1030), "bfloat16", device, seed=13, numpy_ok=False)
    xs = big[:, 3:3 + 1024]
    lab_s = torch.tensor([0, 1023, IGNORE, 17], device=x.device)
    ref_s, ref_sdx = ref_loss(xs, lab_s), ref_dlogits(xs, lab_s, 1.0)
    for policy in POLICIES:
        assert_close(ops.cross_entropy(x, lab, **attrs, policy=policy), ref, "float32",
                     f"V=256000 ({policy})")
        dx = ce_backward(1.0, x, lab, **attrs, policy=policy)
        assert_close(dx, ref_dx, "float32", f"V=256000 dlogits ({policy})")
        assert_close(ops.cross_entropy(xs, lab_s, policy=policy), ref_s, "float32",
                     f"strided ({policy})")
        assert_close(ce_backward(1.0, xs, lab_s, policy=policy), ref_sdx,
                     "bfloat16", f"strided dlogits ({policy})")


@pytest.mark.parametrize("device", TORCH_DEVICES)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_native_policies_agree_and_are_deterministic(dtype, device):
    torch = pytest.importorskip("torch")
    x, lab, _ = ce_case((33, 4097), dtype, "int64", device)
    if isinstance(x, np.ndarray):
        x, lab = torch.from_numpy(x), torch.from_numpy(lab)
    for reduction in REDUCTIONS:
        run = lambda p: (ops.cross_entropy(x, lab, label_smoothing=0.1, reduction=reduction,  # noqa: E731
                                           policy=p),
                         ce_backward(
                             torch.ones(33, device=x.device) if reduction == "none" else 1.0,
                             x, lab, label_smoothing=0.1, reduction=reduction, policy=p))
        out = {p: run(p) for p in POLICIES}
        assert_policies_agree(out, device, dtype, reduction)
        for p in ("fast", "deterministic"):
            assert all(same_bits(a, b) for a, b in zip(out[p], run(p))), f"{p} not bitwise stable"


@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_native_edge_cases(device):
    torch = pytest.importorskip("torch")
    x = make((3, 5), "float32", device, numpy_ok=False)
    all_ignored = torch.full((3,), IGNORE, device=x.device)
    assert np.isnan(to_numpy(ops.cross_entropy(x, all_ignored)))  # mean over no rows: NaN, like torch
    assert to_numpy(ops.cross_entropy(x, all_ignored, reduction="sum")) == 0
    assert np.all(to_numpy(ce_backward(1.0, x, all_ignored)) == 0)
    # A custom ignore_index; -100 is then an ordinary (out-of-range) label only if used.
    lab = torch.tensor([2, 7, 0], device=x.device)
    ref = ref_loss(to_numpy(x)[[0, 2]], np.array([2, 0]), reduction="sum")
    assert_close(ops.cross_entropy(x, lab, ignore_index=7, reduction="sum"), ref, "float32",
                 "ignore_index=7")
    # Zero rows: empty `none`, 0 sum, NaN mean.
    e = make((0, 5), "float32", device, numpy_ok=False)
    el = torch.zeros((0,), dtype=torch.int64, device=x.device)
    assert tuple(ops.cross_entropy(e, el, reduction="none").shape) == (0,)
    assert to_numpy(ops.cross_entropy(e, el, reduction="sum")) == 0
    assert np.isnan(to_numpy(ops.cross_entropy(e, el)))
    assert tuple(ce_backward(1.0, e, el).shape) == (0, 5)
    # NaN in a row propagates to that row only.
    xn = x.clone()
    xn[1, 3] = float("nan")
    lab = torch.tensor([0, 1, 2], device=x.device)
    ln = to_numpy(ops.cross_entropy(xn, lab, reduction="none"))
    assert np.isnan(ln[1]) and np.isfinite(ln[[0, 2]]).all()


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
def test_native_out_of_range_labels_cuda(device):
    # On CUDA the labels are never read on the host: an out-of-range label gives NaN
    # for its row (loss and gradient), and no out-of-bounds read.
    import torch
    x = make((4, 40), "float32", device, numpy_ok=False)
    lab = torch.tensor([3, 40, -5, 1], device=x.device)
    for policy in POLICIES:
        loss = to_numpy(ops.cross_entropy(x, lab, reduction="none", policy=policy))
        assert np.isnan(loss[1]) and np.isnan(loss[2]) and np.isfinite(loss[[0, 3]]).all()
        assert np.isnan(to_numpy(ops.cross_entropy(x, lab, policy=policy)))
        _, lse = ops.cross_entropy(x, lab, return_stats=True, policy=policy)
        dx = to_numpy(ops.cross_entropy_backward(torch.ones(4, device=x.device), x, lab, lse,
                                                 reduction="none", policy=policy))
        assert np.isnan(dx[1:3]).all() and np.isfinite(dx[[0, 3]]).all()


@pytest.mark.gpu
@pytest.mark.parametrize("device", [pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_native_backward_launch_shapes_cuda(dtype, device):
    # The backward's launch paths: few rows of long V (each row split over column
    # blocks), many rows (one block a row), V not a multiple of the vector width
    # (scalar), labels on the first / last column and at vector and unroll
    # boundaries, ignored rows. dlogits are poisoned with NaN first.
    import torch
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
            attrs = {"ignore_index": IGNORE, "label_smoothing": 0.1, "reduction": reduction}
            ref_dx = ref_dlogits(x, lab_np, dloss_np, **attrs)
            _, lse = ops.cross_entropy(x, lab, label_smoothing=0.1, reduction=reduction,
                                       return_stats=True)
            dloss = torch.tensor(dloss_np, dtype=torch.float32, device=device)
            dx = torch.full_like(x, float("nan"))
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


def test_native_bad_inputs():
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


# ---- jax ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jax():
    return jax_with_targets(OP)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_jax_ffi(jax, rng, reduction):
    """The XLA FFI targets called with jax.ffi directly (workspaces sized by hand)."""
    jnp = jax.numpy
    t, v = 6, 17
    x = random_inputs(rng, (t, v))
    lab = labels_for(rng, t, v, "int32")
    attrs = dict(ignore_index=np.int64(IGNORE), label_smoothing=np.float32(0.1),
                 reduction=reduction, policy="fast")
    loss_sds = jax.ShapeDtypeStruct((t,) if reduction == "none" else (), np.float32)
    ws = core.workspace_bytes("cross_entropy", "forward", [x.shape, lab.shape],
                              {"reduction": reduction})
    loss, lse, _ = jax.ffi.ffi_call(
        "xpuruntime_cross_entropy_fwd",
        (loss_sds, jax.ShapeDtypeStruct((t,), np.float32), jax.ShapeDtypeStruct((ws,), np.uint8)),
    )(jnp.asarray(x), jnp.asarray(lab), **attrs)
    ref_attrs = dict(label_smoothing=0.1, reduction=reduction)
    assert rel_err(loss, ref_loss(x, lab, **ref_attrs)) <= 1e-5
    dloss = np.ones(loss_sds.shape, np.float32)
    bws = core.workspace_bytes("cross_entropy", "backward",
                               [dloss.shape, x.shape, lab.shape, (t,)], {"reduction": reduction})
    dx, _ = jax.ffi.ffi_call(
        "xpuruntime_cross_entropy_bwd",
        (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((bws,), np.uint8)),
    )(jnp.asarray(dloss), jnp.asarray(x), jnp.asarray(lab), lse, **attrs)
    assert rel_err(dx, ref_dlogits(x, lab, dloss, **ref_attrs)) <= 1e-5


def test_jax_vmap(jax, rng):
    import xpuruntime.jax as xj
    jnp = jax.numpy
    cases = [(random_inputs(rng, (6, 50)), labels_for(rng, 6, 50, "int32")) for _ in range(3)]
    lg = jnp.stack([jnp.asarray(c[0]) for c in cases])
    lb = jnp.stack([jnp.asarray(c[1]) for c in cases])
    for reduction in REDUCTIONS:
        f = lambda a, b: xj.cross_entropy(a, b, reduction=reduction)  # noqa: E731
        losses = jax.vmap(f)(lg, lb)
        grads = jax.vmap(jax.grad(lambda a, b: jnp.sum(f(a, b))))(lg, lb)
        for i, (logits, labels) in enumerate(cases):
            dl = np.ones(6, np.float32) if reduction == "none" else np.float32(1)
            assert_close(to_numpy(losses[i]), ref_loss(logits, labels, reduction=reduction),
                         "float32", reduction)
            assert_close(to_numpy(grads[i]), ref_dlogits(logits, labels, dl, reduction=reduction),
                         "float32", f"grad {reduction}")


def test_jax_errors(jax):
    import xpuruntime.jax as xj
    jnp = jax.numpy
    with pytest.raises(TypeError, match="cross_entropy: 'labels' must be int32 or int64"):
        xj.cross_entropy(jnp.ones((3, 5)), jnp.ones(3))
    with pytest.raises(ValueError, match="unknown reduction"):
        xj.cross_entropy(jnp.ones((3, 5)), jnp.zeros(3, jnp.int32), reduction="max")


# ---- torch --------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", TORCH_DEVICES)
def test_torch_opcheck_and_compile(device):
    torch = pytest.importorskip("torch")
    import xpuruntime.interop.torch as xt
    logits = torch.randn(6, 40, device=device, requires_grad=True)
    labels = torch.randint(0, 40, (6,), device=device)
    torch.library.opcheck(torch.ops.xpuruntime.cross_entropy.default,
                          (logits, labels, -100, 0.0, "mean", "fast"))
    fn = torch.compile(lambda a, b: xt.cross_entropy(a, b), fullgraph=True)
    fn(logits, labels).backward()
    ref = logits.detach().clone().requires_grad_()
    torch.nn.functional.cross_entropy(ref, labels).backward()
    assert_close(to_numpy(logits.grad), to_numpy(ref.grad), "float32", "dlogits", factor=10)


def test_torch_errors():
    torch = pytest.importorskip("torch")
    import xpuruntime.interop.torch as xt
    with pytest.raises(ValueError, match="cross_entropy"):
        xt.cross_entropy(torch.randn(3, 5), torch.tensor([0, 7, 1]))
    with pytest.raises(ValueError, match="cross_entropy"):
        xt.cross_entropy(torch.randn(3, 5), torch.tensor([0, 1, 1]), reduction="max")
