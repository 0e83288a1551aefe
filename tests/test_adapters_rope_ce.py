"""rope / cross_entropy through the other adapters on the CPU: the ONNX Runtime
custom-op library (RoPE, CrossEntropy in domain xpuruntime) and the XLA FFI targets
called directly with jax.ffi.ffi_call. Skipped when a framework is missing."""

from __future__ import annotations

import os

import numpy as np
import pytest

from xpuruntime._native import core
from xpuruntime.interop import onnxruntime as xo

ORT_LIB = xo.library_path(missing_ok=True) or ""


def rel(a, b):
    b = np.asarray(b, np.float64)
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


def rope_ref(x, c, s, interleaved):
    c, s = c[None, :, None, :], s[None, :, None, :]
    y = np.empty_like(x)
    if interleaved:
        x1, x2 = x[..., 0::2], x[..., 1::2]
        y[..., 0::2], y[..., 1::2] = x1 * c - x2 * s, x2 * c + x1 * s
    else:
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        y[..., :h], y[..., h:] = x1 * c - x2 * s, x2 * c + x1 * s
    return y


def ce_ref(x, lab, ls, reduction, ignore_index=-100):
    m = x.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[:, 0]
    keep = lab != ignore_index
    safe = np.where(keep, lab, 0)
    l = lse - (1 - ls) * x[np.arange(len(lab)), safe] - ls * x.mean(-1)
    l = np.where(keep, l, 0.0)
    if reduction == "none":
        return l, lse
    return (l.sum() if reduction == "sum" else l.sum() / keep.sum()), lse


def inputs(seed=0):
    g = np.random.default_rng(seed)
    x = g.standard_normal((2, 5, 3, 8)).astype(np.float32)
    ang = g.uniform(-3, 3, (5, 4))
    return x, np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)


# ---- ONNX Runtime -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ort_model():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    if not os.path.exists(ORT_LIB):
        pytest.skip("libxpuruntime_ort.so is not built")
    from onnx import helper

    def make(op, ins, outs, **attrs):
        """ins / outs: lists of (name, TensorProto type, shape)."""
        vi = lambda n, t, s: helper.make_tensor_value_info(n, t, list(s))  # noqa: E731
        node = helper.make_node(op, [n for n, _, _ in ins], [n for n, _, _ in outs],
                                domain="xpuruntime", **attrs)
        graph = helper.make_graph([node], op, [vi(*i) for i in ins], [vi(*o) for o in outs])
        so = ort.SessionOptions()
        so.register_custom_ops_library(ORT_LIB)
        return ort.InferenceSession(xo.make_model(graph).SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
    return make


@pytest.mark.parametrize("interleaved", [0, 1])
@pytest.mark.parametrize("cs", ["float", "float16"])
def test_ort_rope(ort_model, interleaved, cs):
    from onnx import TensorProto
    x, c, s = inputs()
    x16 = x.astype(np.float16)
    ct = TensorProto.FLOAT if cs == "float" else TensorProto.FLOAT16
    c_in, s_in = (c, s) if cs == "float" else (c.astype(np.float16), s.astype(np.float16))
    sess = ort_model("RoPE", [("x", TensorProto.FLOAT16, x.shape), ("c", ct, c.shape),
                              ("s", ct, s.shape)], [("y", TensorProto.FLOAT16, x.shape)],
                     interleaved=interleaved)
    y = sess.run(None, {"x": x16, "c": c_in, "s": s_in})[0]
    assert y.dtype == np.float16
    ref = rope_ref(x16.astype(np.float64), c_in.astype(np.float64), s_in.astype(np.float64),
                   interleaved)
    assert rel(y, ref) <= 2e-3


@pytest.mark.parametrize("ltype", ["int64", "int32"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ort_cross_entropy(ort_model, ltype, reduction):
    from onnx import TensorProto
    g = np.random.default_rng(1)
    x = g.standard_normal((7, 33)).astype(np.float32)
    lab = g.integers(0, 33, 7).astype(ltype)
    lab[3] = -1
    lt = TensorProto.INT64 if ltype == "int64" else TensorProto.INT32
    loss_shape = (7,) if reduction == "none" else ()
    sess = ort_model("CrossEntropy", [("x", TensorProto.FLOAT, x.shape), ("l", lt, (7,))],
                     [("loss", TensorProto.FLOAT, loss_shape), ("lse", TensorProto.FLOAT, (7,))],
                     ignore_index=-1, label_smoothing=0.1, reduction=reduction)
    loss, lse = sess.run(None, {"x": x, "l": lab})
    ref, ref_lse = ce_ref(x.astype(np.float64), lab, 0.1, reduction, ignore_index=-1)
    assert loss.shape == loss_shape
    assert rel(loss, ref) <= 1e-5
    keep = lab != -1
    assert rel(lse[keep], ref_lse[keep]) <= 1e-5


def test_ort_cross_entropy_errors(ort_model):
    from onnx import TensorProto
    x = np.zeros((2, 4), np.float32)
    sess = ort_model("CrossEntropy", [("x", TensorProto.FLOAT, x.shape),
                                      ("l", TensorProto.INT64, (2,))],
                     [("loss", TensorProto.FLOAT, ())])
    with pytest.raises(Exception, match="cross_entropy: label 4 of row 1 is out of range"):
        sess.run(None, {"x": x, "l": np.array([0, 4], np.int64)})
    with pytest.raises(Exception, match="cross_entropy: unknown reduction 'avg'"):
        ort_model("CrossEntropy", [("x", TensorProto.FLOAT, x.shape),
                                   ("l", TensorProto.INT64, (2,))],
                  [("loss", TensorProto.FLOAT, ())], reduction="avg")


# ---- XLA FFI targets --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jax_ffi():
    jax = pytest.importorskip("jax")
    import xpuruntime.jax  # noqa: F401  registers every target on every platform
    if "xpuruntime_rope_fwd" not in core.ffi_targets():
        pytest.skip("built without XLA FFI headers")
    return jax


@pytest.mark.parametrize("interleaved", [False, True])
def test_xla_rope(jax_ffi, interleaved):
    jax, jnp = jax_ffi, jax_ffi.numpy
    x, c, s = inputs(2)
    sds = jax.ShapeDtypeStruct(x.shape, x.dtype)
    y = jax.ffi.ffi_call("xpuruntime_rope_fwd", sds)(
        jnp.asarray(x), jnp.asarray(c), jnp.asarray(s), interleaved=interleaved, policy="fast")
    x64, c64, s64 = (a.astype(np.float64) for a in (x, c, s))
    assert rel(y, rope_ref(x64, c64, s64, interleaved)) <= 1e-5
    dx = jax.ffi.ffi_call("xpuruntime_rope_bwd", sds)(
        y, jnp.asarray(c), jnp.asarray(s), interleaved=interleaved, policy="reference")
    assert rel(dx, x64) <= 1e-5  # the inverse rotation
    with pytest.raises(Exception, match="rope: 'cos' must have shape"):
        jax.ffi.ffi_call("xpuruntime_rope_fwd", sds)(
            jnp.asarray(x), jnp.asarray(c[:2]), jnp.asarray(s), interleaved=interleaved,
            policy="fast").block_until_ready()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_xla_cross_entropy(jax_ffi, reduction):
    jax, jnp = jax_ffi, jax_ffi.numpy
    g = np.random.default_rng(3)
    x = g.standard_normal((6, 17)).astype(np.float32)
    lab = g.integers(0, 17, 6).astype(np.int32)
    lab[2] = -100
    t = 6
    attrs = dict(ignore_index=np.int64(-100), label_smoothing=np.float32(0.1),
                 reduction=reduction, policy="fast")
    loss_sds = jax.ShapeDtypeStruct((t,) if reduction == "none" else (), np.float32)
    ws = core.workspace_bytes("cross_entropy", "forward", [x.shape, lab.shape],
                              {"reduction": reduction})
    loss, lse, _ = jax.ffi.ffi_call(
        "xpuruntime_cross_entropy_fwd",
        (loss_sds, jax.ShapeDtypeStruct((t,), np.float32), jax.ShapeDtypeStruct((ws,), np.uint8)),
    )(jnp.asarray(x), jnp.asarray(lab), **attrs)
    ref, _ = ce_ref(x.astype(np.float64), lab, 0.1, reduction)
    assert rel(loss, ref) <= 1e-5
    dloss = np.ones(loss_sds.shape, np.float32)
    bws = core.workspace_bytes("cross_entropy", "backward",
                               [dloss.shape, x.shape, lab.shape, (t,)], {"reduction": reduction})
    dx, _ = jax.ffi.ffi_call(
        "xpuruntime_cross_entropy_bwd",
        (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((bws,), np.uint8)),
    )(jnp.asarray(dloss), jnp.asarray(x), jnp.asarray(lab), lse, **attrs)
    # Analytic float64 gradient.
    x64 = x.astype(np.float64)
    p = np.exp(x64 - x64.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    onehot = np.eye(17)[np.where(lab < 0, 0, lab)]
    grad = p - 0.9 * onehot - 0.1 / 17
    grad[lab == -100] = 0
    if reduction == "mean":
        grad /= (lab != -100).sum()
    assert rel(dx, grad) <= 1e-5
