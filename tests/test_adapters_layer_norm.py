"""layer_norm through the XLA FFI targets (called with jax.ffi directly) and the
ONNX Runtime custom op, on the CPU, against a float64 reference."""

from __future__ import annotations

import os

import numpy as np
import pytest

from xpuruntime._native import core

EPS = 1e-5


def ref_forward(x, w, b, eps=EPS):
    x = np.asarray(x, np.float64)
    mean = x.mean(-1, keepdims=True)
    rstd = 1.0 / np.sqrt(((x - mean) ** 2).mean(-1, keepdims=True) + eps)
    return (x - mean) * rstd * w + b, mean.reshape(-1), rstd.reshape(-1)


def rel_err(out, ref):
    out, ref = np.asarray(out, np.float64), np.asarray(ref, np.float64)
    return np.linalg.norm((out - ref).ravel()) / np.linalg.norm(ref.ravel())


def data(shape, seed=0):
    rng = np.random.default_rng(seed)
    n = shape[-1]
    return ((rng.standard_normal(shape) + 3.0).astype(np.float32),
            rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32),
            rng.standard_normal(shape).astype(np.float32))


# ---- XLA FFI -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jax_ffi():
    jax = pytest.importorskip("jax")
    import xpuruntime.jax  # noqa: F401  registers every target on every platform
    if "xpuruntime_layer_norm_fwd" not in core.ffi_targets():
        pytest.skip("built without XLA FFI headers")
    return jax


def test_xla_forward_and_backward(jax_ffi):
    jax = jax_ffi
    jnp = jax.numpy
    x, w, b, dy = data((4, 3, 96))
    rows, n = 12, 96
    f32 = jnp.float32

    @jax.jit
    def fwd(x, w, b):
        return jax.ffi.ffi_call(
            "xpuruntime_layer_norm_fwd",
            (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((rows,), f32),
             jax.ShapeDtypeStruct((rows,), f32)),
        )(x, w, b, eps=np.float32(EPS), policy="fast")

    y, mean, rstd = fwd(x, w, b)
    ry, rmean, rrstd = ref_forward(x, w, b)
    assert rel_err(y, ry) <= 1e-5 and rel_err(mean, rmean) <= 1e-5 and rel_err(rstd, rrstd) <= 1e-5

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

    # float64 analytic gradients
    xd, dyd = x.astype(np.float64), dy.astype(np.float64)
    mu = xd.mean(-1, keepdims=True)
    rs = 1.0 / np.sqrt(((xd - mu) ** 2).mean(-1, keepdims=True) + EPS)
    xhat = (xd - mu) * rs
    g = dyd * w
    rdx = rs * (g - g.mean(-1, keepdims=True) - xhat * (g * xhat).mean(-1, keepdims=True))
    assert rel_err(dx, rdx) <= 1e-5
    assert rel_err(dw, (dyd * xhat).sum((0, 1))) <= 1e-5
    assert rel_err(db, dyd.sum((0, 1))) <= 1e-5


def test_xla_error_is_reported(jax_ffi):
    jax = jax_ffi
    x, w, b, _ = data((2, 8))
    call = jax.ffi.ffi_call(
        "xpuruntime_layer_norm_fwd",
        (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((2,), np.float32),
         jax.ShapeDtypeStruct((2,), np.float32)))
    with pytest.raises(Exception, match="layer_norm"):
        jax.block_until_ready(call(x, w[:7], b, eps=np.float32(EPS), policy="fast"))


# ---- ONNX Runtime ------------------------------------------------------------------------------

from xpuruntime.interop import onnxruntime as xo  # noqa: E402

ORT_LIB = xo.library_path(missing_ok=True) or ""


@pytest.mark.parametrize("epsilon", [None, 0.25])
def test_onnxruntime_layer_norm(epsilon):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    if not os.path.exists(ORT_LIB):
        pytest.skip("libxpuruntime_ort.so is not built")
    from onnx import TensorProto, helper

    attrs = {} if epsilon is None else {"epsilon": epsilon}
    node = helper.make_node("LayerNorm", ["x", "w", "b"], ["y"], domain="xpuruntime", **attrs)
    graph = helper.make_graph(
        [node], "ln",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 64]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [64]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 64])])
    model = xo.make_model(graph)
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(ORT_LIB)
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x, w, b, _ = data((5, 64), seed=1)
    (y,) = sess.run(None, {"x": x, "w": w, "b": b})
    eps = 1e-5 if epsilon is None else epsilon
    assert rel_err(y, ref_forward(x, w, b, eps)[0]) <= 1e-5
