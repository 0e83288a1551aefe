"""Regression tests for what the fuzz suite (tests/fuzz) found, one reproducer each,
stated without the fuzz machinery. An error must be one of the project's types
(xpuruntime.Error) and its message must name the op and the argument; a valid call
must match the float64 reference of tests/references.py."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

import references
import xpuruntime as xr
from xpuruntime import ops

from conftest import HAS_JAX, HAS_TORCH, rel_err

needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch not installed")
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="jax not installed")


def named_error(fn, op: str, arg: str, error=xr.Error) -> None:
    """``fn()`` raises ``error`` whose message names ``op`` and ``arg`` as words."""
    with pytest.raises(Exception) as info:
        fn()
    exc = info.value
    assert isinstance(exc, error), f"{type(exc).__name__}: {exc}"
    for word in (op, arg):
        assert re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", str(exc)), (word, str(exc))


def rows(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---- fixed in the core ---------------------------------------------------------------------------

# Open findings of the fuzz suite (issue 15), not yet fixed: each test below states the
# expected behaviour and fails today; strict=False so that a fix turns it green by itself.
OPEN_FINDING = pytest.mark.xfail(strict=False, reason="open fuzz finding (issue 15), see the test")


def test_layer_norm_stats_of_rows_without_columns_are_nan_not_garbage():
    # Issue 15.4: return_stats with N = 0 gave the allocator's bytes.
    for _ in range(3):
        np.full(64, 1e30, np.float32)  # leave non-NaN bytes where the stats may be allocated
        _, mean, rstd = ops.layer_norm(np.ones((3, 0), np.float32), np.ones(0, np.float32),
                                       np.ones(0, np.float32), return_stats=True)
        assert np.isnan(mean).all() and np.isnan(rstd).all()
        _, rstd = ops.rms_norm(np.ones((3, 0), np.float32), np.ones(0, np.float32), return_stats=True)
        assert np.isnan(rstd).all()


def test_out_of_range_label_error_names_labels():
    named_error(lambda: ops.cross_entropy(rows((2, 8)), np.array([1, 8], np.int32)),
                "cross_entropy", "labels", xr.InvalidArgumentError)


@pytest.mark.parametrize("value", [2**53 + 2, 2**60, -2**62, 2**63 - 1])
def test_integer_attribute_beyond_2_53_is_refused_by_the_core(value):
    # Held in a double, such integers were inexact, and beyond int64 the kernel's cast
    # was undefined (ignore_index=2**70 became INT64_MIN).
    named_error(lambda: xr._core.parse_attrs("cross_entropy", "forward", {"ignore_index": value}, False),
                "cross_entropy", "ignore_index", xr.InvalidArgumentError)


# ---- open: native and torch frontends (ranks above 8) ------------------------------------------

@OPEN_FINDING
@pytest.mark.parametrize("rank", [9, 10, 12])
def test_native_folds_ranks_above_8(rank):
    # OPS.md: any number of leading axes. The native frontend refuses them with
    # "xpuruntime supports at most 8 dimensions, got N" (no op named); JAX and ORT fold.
    x = rows((1,) * (rank - 2) + (2, 8))
    y = ops.softmax(x)
    assert rel_err(y, references.forward("softmax", x, scale=1.0)["y"]) <= 1e-5


@OPEN_FINDING
@needs_torch
@pytest.mark.parametrize("rank", [9, 11])
def test_torch_folds_ranks_above_8(rank):
    import torch
    import xpuruntime.interop.torch as xt
    x = rows((1,) * (rank - 2) + (3, 8))
    w = rows(8, seed=1)
    y = xt.rms_norm(torch.from_numpy(x), torch.from_numpy(w))
    ref = references.forward("rms_norm", x, w, eps=1e-6)["y"]
    assert rel_err(y.numpy(), ref) <= 1e-5


# ---- open: policy errors that do not name the op -----------------------------------------------

@OPEN_FINDING
@needs_torch
@pytest.mark.parametrize("policy", ["bogus", 3])
def test_torch_policy_error_names_the_op(policy):
    import torch
    import xpuruntime.interop.torch as xt
    named_error(lambda: xt.softmax(torch.ones(2, 4), policy=policy), "softmax", "policy")


def test_environment_policy_error_names_the_op(monkeypatch):
    monkeypatch.setenv("XPURUNTIME_POLICY", "bogus")
    named_error(lambda: ops.softmax(np.ones((2, 4), np.float32)), "softmax", "policy")


# ---- open: torch attributes of the wrong type ----------------------------------------------------

@OPEN_FINDING
@needs_torch
def test_torch_attribute_of_wrong_type_is_a_project_error():
    import torch
    import xpuruntime.interop.torch as xt
    # Was torch's dispatcher RuntimeError ("Expected a value of type 'float' ...").
    named_error(lambda: xt.rms_norm(torch.ones(2, 4), torch.ones(4), eps="abc"), "rms_norm", "eps")
    named_error(lambda: xt.cross_entropy(torch.ones(5, 4), torch.zeros(5, dtype=torch.int32),
                                         ignore_index=2**1100), "cross_entropy", "ignore_index")


@OPEN_FINDING
@needs_torch
@pytest.mark.parametrize("value", [-1, 1.5, 1.0])
def test_torch_bool_attribute_takes_bools_and_0_1_only(value):
    import torch
    import xpuruntime.interop.torch as xt
    # Silently read as True before (op_spec.h: a bool, or an int 0/1; nothing else).
    named_error(lambda: xt.rope(torch.ones(1, 2, 1, 4), torch.ones(2, 2), torch.ones(2, 2),
                                interleaved=value), "rope", "interleaved")


# ---- open: JAX integer attributes ---------------------------------------------------------------

@OPEN_FINDING
@needs_jax
@pytest.mark.parametrize("ignore_index", [2**31, -2**31 - 1, -2**53])
def test_jax_cross_entropy_takes_any_int_ignore_index(ignore_index):
    import jax.numpy as jnp
    import xpuruntime.jax as xj
    # Valid ints beyond int32 raised OverflowError in the jnp reduction (x64 off).
    x, labels = rows((5, 4)), np.array([0, 1, 2, 3, 0], np.int32)
    loss = xj.cross_entropy(jnp.asarray(x), jnp.asarray(labels), ignore_index=ignore_index)
    ref = references.forward("cross_entropy", x, labels, ignore_index=ignore_index,
                             label_smoothing=0.0, reduction="mean")["loss"]
    assert rel_err(np.asarray(loss), ref) <= 1e-5


@OPEN_FINDING
@needs_jax
def test_jax_huge_integer_attribute_is_a_project_error():
    import jax.numpy as jnp
    import xpuruntime.jax as xj
    # Was RuntimeError: std::bad_cast from the attribute binding.
    named_error(lambda: xj.cross_entropy(jnp.ones((5, 4)), jnp.zeros(5, jnp.int32), ignore_index=2**1100),
                "cross_entropy", "ignore_index")


# ---- open: ONNX Runtime dtype mismatches -----------------------------------------------------------

@OPEN_FINDING
def test_onnxruntime_dtype_mismatch_names_the_input():
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    from xpuruntime.interop import onnxruntime as xo
    node = helper.make_node("SwiGLU", ["gate", "up"], ["y"], domain=xo.DOMAIN, name="n")
    graph = helper.make_graph([node], "g", [
        helper.make_tensor_value_info("gate", TensorProto.FLOAT, [2, 4]),
        helper.make_tensor_value_info("up", TensorProto.FLOAT16, [2, 4])],
        [onnx.ValueInfoProto(name="y")])
    # Was ORT's "no kernel def matches node inputs for Op: SwiGLU" (no input named).
    with pytest.raises(Exception) as info:
        xo.inference_session(xo.make_model(graph))
    msg = str(info.value)
    assert "SwiGLU" in msg or "swiglu" in msg
    assert re.search(r"(?<![A-Za-z0-9_])(gate|up)(?![A-Za-z0-9_])", msg), msg
