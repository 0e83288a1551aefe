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

def test_layer_norm_stats_of_rows_without_columns_are_nan_not_garbage():
    # Issue 15.4: return_stats with N = 0 gave the allocator's bytes.
    for _ in range(3):
        np.full(64, 1e30, np.float32)  # leave non-NaN bytes where the stats may be allocated
        _, mean, rstd = ops.layer_norm(np.ones((3, 0), np.float32), np.ones(0, np.float32),
                                       np.ones(0, np.float32), return_stats=True)
        assert np.isnan(mean).all() and np.isnan(rstd).all()


def test_out_of_range_label_error_names_labels():
    named_error(lambda: ops.cross_entropy(rows((2, 8)), np.array([1, 8], np.int32)),
                "cross_entropy", "labels", xr.InvalidArgumentError)


@pytest.mark.parametrize("value", [2**53 + 1, 2**53 + 2, 2**60, -2**62, 2**63 - 1, 2**64, -2**1100])
def test_integer_attribute_beyond_2_53_is_refused_by_the_core(value):
    # Held in a double, such integers were inexact (2**53 + 1 read as 2**53), and beyond
    # int64 the kernel's cast was undefined (ignore_index=2**70 became INT64_MIN).
    named_error(lambda: xr._core.parse_attrs("cross_entropy", "forward", {"ignore_index": value}, False),
                "cross_entropy", "ignore_index", xr.InvalidArgumentError)


@pytest.mark.parametrize("value", [2**53, -2**53, 2**31])
def test_integer_attribute_up_to_2_53_is_exact(value):
    got = xr._core.parse_attrs("cross_entropy", "forward", {"ignore_index": value}, False)
    assert got["ignore_index"] == value


@pytest.mark.parametrize("frontend", ["native", "torch", "jax"])
def test_tiny_eps_does_not_vanish_in_f32(frontend):
    # eps = 3e-177 became 0 in the kernels' f32, so a constant row (N = 1, or zeros) gave
    # rsqrt(0) = inf and y = NaN where the float64 reference gives the bias.
    x, w, b = rows((4, 1)), np.ones(1, np.float32), rows(1, seed=1)
    if frontend == "native":
        y = ops.layer_norm(x, w, b, eps=3e-177)
        z = ops.rms_norm(np.zeros((2, 4), np.float32), np.ones(4, np.float32), eps=3e-177)
    else:
        mod = pytest.importorskip(frontend)
        if frontend == "torch":
            import xpuruntime.interop.torch as xf
            conv = mod.from_numpy
        else:
            import xpuruntime.jax as xf
            conv = mod.numpy.asarray
        y = xf.layer_norm(conv(x), conv(w), conv(b), eps=3e-177)
        z = xf.rms_norm(conv(np.zeros((2, 4), np.float32)), conv(np.ones(4, np.float32)), eps=3e-177)
    assert np.array_equal(np.asarray(y), np.broadcast_to(b, (4, 1)))
    assert np.array_equal(np.asarray(z), np.zeros((2, 4), np.float32))
    assert xr._core.parse_attrs("layer_norm", "forward", {"eps": 3e-177})["eps"] == np.finfo(np.float32).tiny


def test_native_attribute_errors_are_the_cores():
    # One rule in every frontend: the native frontend's own pre-checks are gone, so its
    # words are the torch and JAX frontends' (a float attribute takes no bool; a value no
    # attribute can be is an InvalidArgumentTypeError).
    x = np.ones((2, 4), np.float32)
    named_error(lambda: ops.softmax(x, scale=True), "softmax", "scale", xr.InvalidArgumentError)
    named_error(lambda: ops.softmax(x, scale=2**1100), "softmax", "scale", xr.InvalidArgumentError)
    for bad in (None, [1.0], b"1"):
        named_error(lambda: ops.softmax(x, scale=bad), "softmax", "scale", xr.InvalidArgumentTypeError)
    named_error(lambda: ops.softmax(x, policy=b"fast"), "softmax", "policy", xr.InvalidArgumentTypeError)
    # numpy's bool is a bool (it is no int and has __float__: it read as a float before).
    cos = np.ones((2, 2), np.float32)
    y = ops.rope(np.ones((1, 2, 1, 4), np.float32), cos, cos, interleaved=np.True_)
    assert y.shape == (1, 2, 1, 4)


def test_native_backward_glue_errors_name_the_op():
    # topk_softmax_backward reads k from the indices: a wrong one named no op or argument
    # ("argument has dtype int8"), a 0-d one raised IndexError.
    logits = rows((3, 8))
    weights, indices = ops.topk_softmax(logits, 2)
    for bad in (indices.astype(np.int8), np.int32(1)):
        named_error(lambda: ops.topk_softmax_backward(weights, logits, weights, bad),
                    "topk_softmax", "indices", xr.InvalidArgumentError)
    # A Python number for dloss with logits of a framework that cannot make one.
    loss, lse = ops.cross_entropy(logits, np.zeros(3, np.int32), return_stats=True)
    named_error(lambda: ops.cross_entropy_backward(1.0, xr.asarray(logits), np.zeros(3, np.int32), lse),
                "cross_entropy", "dloss", xr.InvalidArgumentTypeError)


# ---- native and torch frontends: ranks above 8 fold (DenseOperands, as ORT/XLA/TRT) -------------

def test_native_folds_strided_ranks_above_8_or_says_why():
    # Leading axes fold when their strides collapse into one (here rows of 4 in a row
    # stride of 8); a permuted layout cannot fold without a copy: an error naming it.
    full = rows((2, 3) + (1,) * 7 + (2, 8))
    x = full[..., :4]
    y = ops.softmax(x)
    assert rel_err(y, references.forward("softmax", np.ascontiguousarray(x), scale=1.0)["y"]) <= 1e-5
    named_error(lambda: ops.softmax(full.swapaxes(0, 1)), "softmax", "x", xr.InvalidArgumentError)
    # Every operand that carries rows folds the same axes: labels, row statistics.
    labels = np.zeros(full.shape[:-1], np.int32)
    loss, lse = ops.cross_entropy(full, labels, reduction="none", return_stats=True)
    assert loss.shape == lse.shape == labels.shape
    dlogits = ops.cross_entropy_backward(np.ones(labels.shape, np.float32), full, labels, lse,
                                         reduction="none")
    assert dlogits.shape == full.shape


@pytest.mark.parametrize("rank", [9, 10, 12])
def test_native_folds_ranks_above_8(rank):
    # OPS.md: any number of leading axes. The native frontend refuses them with
    # "xpuruntime supports at most 8 dimensions, got N" (no op named); JAX and ORT fold.
    x = rows((1,) * (rank - 2) + (2, 8))
    y = ops.softmax(x)
    assert rel_err(y, references.forward("softmax", x, scale=1.0)["y"]) <= 1e-5


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


@needs_torch
def test_torch_folds_any_layout_of_rank_above_8():
    import torch
    import xpuruntime.interop.torch as xt
    # torch copies what the core cannot walk (here a permuted rank-11 tensor), then folds.
    x = torch.from_numpy(rows((2, 3) + (1,) * 7 + (2, 8))).transpose(0, 1).requires_grad_()
    y = xt.softmax(x, scale=0.5)
    ref = references.forward("softmax", x.detach().numpy(), scale=0.5)["y"]
    assert y.shape == x.shape and rel_err(y.detach().numpy(), ref) <= 1e-5
    (dx,) = torch.autograd.grad(y.square().sum(), x)
    assert dx.shape == x.shape


# ---- policy errors name the op (the core's attribute rule parses the policy) ---------------------

@needs_torch
@pytest.mark.parametrize("policy", ["bogus", 3])
def test_torch_policy_error_names_the_op(policy):
    import torch
    import xpuruntime.interop.torch as xt
    named_error(lambda: xt.softmax(torch.ones(2, 4), policy=policy), "softmax", "policy")


def test_environment_policy_error_names_the_op(monkeypatch):
    monkeypatch.setenv("XPURUNTIME_POLICY", "bogus")
    named_error(lambda: ops.softmax(np.ones((2, 4), np.float32)), "softmax", "policy")


# ---- torch attributes: the core's one rule, before torch's dispatcher sees them --------------------

@needs_torch
def test_torch_attribute_of_wrong_type_is_a_project_error():
    import torch
    import xpuruntime.interop.torch as xt
    # Was torch's dispatcher RuntimeError ("Expected a value of type 'float' ...").
    named_error(lambda: xt.rms_norm(torch.ones(2, 4), torch.ones(4), eps="abc"), "rms_norm", "eps")
    named_error(lambda: xt.cross_entropy(torch.ones(5, 4), torch.zeros(5, dtype=torch.int32),
                                         ignore_index=2**1100), "cross_entropy", "ignore_index")


@needs_torch
@pytest.mark.parametrize("value", [-1, 1.5, 1.0])
def test_torch_bool_attribute_takes_bools_and_0_1_only(value):
    import torch
    import xpuruntime.interop.torch as xt
    # Silently read as True before (op_spec.h: a bool, or an int 0/1; nothing else).
    named_error(lambda: xt.rope(torch.ones(1, 2, 1, 4), torch.ones(2, 2), torch.ones(2, 2),
                                interleaved=value), "rope", "interleaved")


@needs_torch
def test_torch_float_attribute_refuses_a_bool_and_huge_ints():
    import torch
    import xpuruntime.interop.torch as xt
    # scale=True ran as scale 1.0 (op_spec.h: a float attribute takes floats and ints,
    # not bools); eps=2**1100 raised a bare OverflowError.
    named_error(lambda: xt.softmax(torch.ones(2, 4), scale=True), "softmax", "scale")
    named_error(lambda: xt.rms_norm(torch.ones(2, 4), torch.ones(4), eps=2**1100), "rms_norm", "eps")


@needs_torch
def test_torch_policy_must_be_a_string_as_in_the_native_frontend():
    import torch
    import xpuruntime.interop.torch as xt
    # b"fast" ran as "fast" in torch while ops.softmax refuses it: one rule everywhere.
    named_error(lambda: ops.softmax(np.ones((2, 4), np.float32), policy=b"fast"), "softmax", "policy")
    named_error(lambda: xt.softmax(torch.ones(2, 4), policy=b"fast"), "softmax", "policy")


@needs_torch
def test_torch_attribute_rule_holds_under_compile():
    import torch
    import xpuruntime.interop.torch as xt
    # The rule runs once at trace time; the compiled call computes with the parsed value.
    f = torch.compile(lambda a: xt.softmax(a, scale=2), fullgraph=True)
    x = rows((3, 8))
    ref = references.forward("softmax", x, scale=2.0)["y"]
    assert rel_err(f(torch.from_numpy(x)).numpy(), ref) <= 1e-5
    g = torch.compile(lambda a: xt.softmax(a, scale="2"), fullgraph=True)
    with pytest.raises(Exception, match="softmax: attribute 'scale' must be a float"):
        g(torch.from_numpy(x))


# ---- JAX integer attributes ----------------------------------------------------------------------

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


@needs_jax
def test_jax_huge_integer_attribute_is_a_project_error():
    import jax.numpy as jnp
    import xpuruntime.jax as xj
    # Was RuntimeError: std::bad_cast from the attribute binding.
    named_error(lambda: xj.cross_entropy(jnp.ones((5, 4)), jnp.zeros(5, jnp.int32), ignore_index=2**1100),
                "cross_entropy", "ignore_index")


@needs_jax
def test_jax_fused_linear_cross_entropy_takes_any_int_ignore_index():
    import jax
    import jax.numpy as jnp
    import xpuruntime.jax as xj
    # Its padded chunks carried ignore_index, which int32 labels cannot hold beyond 2**31.
    h, w = jnp.asarray(rows((5, 4))), jnp.asarray(rows((6, 4), seed=1))
    labels = jnp.asarray(np.array([0, 1, 2, 3, 4], np.int32))
    for reduction in ("mean", "none"):
        def loss(h, ignore_index):
            return jnp.sum(xj.fused_linear_cross_entropy(h, w, labels, ignore_index=ignore_index,
                                                          reduction=reduction, chunk_size=2))
        assert rel_err(np.asarray(loss(h, 2**40)), np.asarray(loss(h, -100))) <= 1e-6
        assert rel_err(np.asarray(jax.grad(loss)(h, 2**40)), np.asarray(jax.grad(loss)(h, -100))) <= 1e-6


@needs_jax
def test_jax_trace_time_errors_are_the_cores():
    import jax
    import jax.numpy as jnp
    import xpuruntime.jax as xj
    # _roles.py restated shape rules (and rope's D error named no argument): the check
    # at trace time is now the core's validation, word for word the native frontend's.
    x, labels = rows((2, 3, 8)), np.zeros((2, 3), np.int32)
    cases = [("cross_entropy", (x, labels[:, :2]), {}),
             ("rope", (rows((1, 2, 1, 3)), rows((2, 1)), rows((2, 1))), {}),
             ("rope", (rows((1, 2, 1, 4)), rows((2, 2)), rows((3, 2))), {}),
             ("layer_norm", (x, rows(8), rows(7)), {}),
             ("topk_softmax", (x, 9), {})]
    for op, args, kw in cases:
        with pytest.raises(xr.InvalidArgumentError) as native:
            getattr(ops, op)(*args, **kw)
        jargs = [jnp.asarray(a) if isinstance(a, np.ndarray) else a for a in args]
        with pytest.raises(xr.InvalidArgumentError) as traced:
            jax.jit(getattr(xj, op), static_argnums=(1,) if op == "topk_softmax" else ())(*jargs, **kw)
        assert str(traced.value) == str(native.value)


@needs_jax
def test_jax_symbolic_dims_are_checked_at_stand_ins():
    import jax
    import jax.numpy as jnp
    from jax import export
    import xpuruntime.jax as xj
    b, s = export.symbolic_shape("b, s")

    def exported(fn, *specs):
        return export.export(jax.jit(fn), disabled_checks=xj.export_disabled_checks())(
            *(jax.ShapeDtypeStruct(shape, dtype) for shape, dtype in specs))

    # Valid shape-polymorphic calls pass the core's check (rope's D even, topk's k <= E).
    exported(xj.rope, ((b, s, 2, 8), jnp.float32), ((s, 4), jnp.float32), ((s, 4), jnp.float32))
    exported(lambda x: xj.topk_softmax(x, 8), ((b, s), jnp.float32))
    # Dims written apart cannot be proved equal: refused, saying at which values.
    with pytest.raises(xr.InvalidArgumentError, match=r"swiglu: 'up' must have the shape of 'gate'.*"
                                                      r"\(symbolic dimensions checked at b=2, s=4\)"):
        exported(xj.swiglu, ((b, 8), jnp.float32), ((s, 8), jnp.float32))


# ---- ONNX Runtime dtype mismatches: refused combinations are registered to fail by name -----------

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


def test_onnxruntime_refused_dtypes_leave_valid_nodes_alone():
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper
    from xpuruntime.interop import onnxruntime as xo
    # Refused combinations are registered after the valid ones: a node that leaves the
    # optional residual out still runs in float16, and a residual of another dtype is
    # refused by name.
    def session(residual_type):
        inputs = ["x", "w"] + (["r"] if residual_type else [])
        outputs = ["y", "h"] if residual_type else ["y"]
        node = helper.make_node("RMSNorm", inputs, outputs, domain=xo.DOMAIN, name="n")
        infos = [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2, 4]),
                 helper.make_tensor_value_info("w", TensorProto.FLOAT16, [4])]
        if residual_type:
            infos.append(helper.make_tensor_value_info("r", residual_type, [2, 4]))
        graph = helper.make_graph([node], "g", infos, [onnx.ValueInfoProto(name=n) for n in outputs])
        return xo.inference_session(xo.make_model(graph))

    x, w = rows((2, 4)).astype(np.float16), rows(4, seed=1).astype(np.float16)
    (y,) = session(None).run(None, {"x": x, "w": w})
    ref = references.forward("rms_norm", x.astype(np.float32), w.astype(np.float32), eps=1e-6)["y"]
    assert rel_err(y.astype(np.float32), ref) <= 2e-3
    with pytest.raises(Exception) as info:
        session(TensorProto.FLOAT)
    assert "rms_norm: 'residual' must be float16, got float32" in str(info.value)
