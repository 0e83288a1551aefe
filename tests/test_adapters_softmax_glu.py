"""softmax / swiglu / geglu through the other adapters on the CPU: the ONNX Runtime
custom-op library (Softmax, SwiGLU, GeGLU in domain xpuruntime) and the XLA FFI
targets called directly with jax.ffi.ffi_call. Skipped when a framework is missing."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import xpuruntime
from xpuruntime._native import core

from xpuruntime.interop import onnxruntime as xo  # noqa: E402

ORT_LIB = xo.library_path(missing_ok=True) or ""


def gelu_tanh(g):
    return 0.5 * g * (1 + np.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g**3)))


def silu(g):
    return g / (1 + np.exp(-g))


def softmax(x, scale=1.0):
    e = np.exp(scale * x - (scale * x).max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b))


# ---- ONNX Runtime -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ort_session():
    ort = pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    if not os.path.exists(ORT_LIB):
        pytest.skip("libxpuruntime_ort.so is not built")
    from onnx import TensorProto, helper

    def make(op, n_inputs, shape, **attrs):
        ins = [helper.make_tensor_value_info(f"i{k}", TensorProto.FLOAT, list(shape))
               for k in range(n_inputs)]
        out = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))
        node = helper.make_node(op, [f"i{k}" for k in range(n_inputs)], ["y"],
                                domain="xpuruntime", **attrs)
        model = xo.make_model(helper.make_graph([node], op, ins, [out]))
        so = ort.SessionOptions()
        so.register_custom_ops_library(ORT_LIB)
        return ort.InferenceSession(model.SerializeToString(), so,
                                    providers=["CPUExecutionProvider"])
    return make


@pytest.mark.parametrize("attrs,scale", [({}, 1.0), ({"scale": 0.25}, 0.25)])
def test_ort_softmax(ort_session, attrs, scale):
    x = np.random.default_rng(0).standard_normal((5, 4097)).astype(np.float32)
    y = ort_session("Softmax", 1, x.shape, **attrs).run(None, {"i0": x})[0]
    assert rel(y, softmax(x.astype(np.float64), scale)) <= 1e-5


@pytest.mark.parametrize("op,act", [("SwiGLU", silu), ("GeGLU", gelu_tanh)])
def test_ort_glu(ort_session, op, act):
    g = np.random.default_rng(1).standard_normal((64, 128)).astype(np.float32)
    u = np.random.default_rng(2).standard_normal((64, 128)).astype(np.float32)
    y = ort_session(op, 2, g.shape).run(None, {"i0": g, "i1": u})[0]
    assert rel(y, act(g.astype(np.float64)) * u) <= 1e-5


# ---- XLA FFI targets --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def jax_ffi():
    jax = pytest.importorskip("jax")
    import xpuruntime.jax  # noqa: F401  registers every target on every platform
    if "xpuruntime_softmax_fwd" not in core.ffi_targets():
        pytest.skip("built without XLA FFI headers")
    return jax


def test_xla_softmax(jax_ffi):
    jax, jnp = jax_ffi, jax_ffi.numpy
    x = np.random.default_rng(3).standard_normal((3, 7)).astype(np.float32)
    dy = np.random.default_rng(4).standard_normal((3, 7)).astype(np.float32)
    sds = jax.ShapeDtypeStruct(x.shape, x.dtype)
    y = jax.ffi.ffi_call("xpuruntime_softmax_fwd", sds)(jnp.asarray(x), scale=np.float32(0.5),
                                                        policy="fast")
    assert rel(y, softmax(x.astype(np.float64), 0.5)) <= 1e-5
    dx = jax.ffi.ffi_call("xpuruntime_softmax_bwd", sds)(jnp.asarray(dy), y, scale=np.float32(0.5),
                                                         policy="reference")
    y64 = np.asarray(y, np.float64)
    ref = 0.5 * y64 * (dy - (dy * y64).sum(-1, keepdims=True))
    assert rel(dx, ref) <= 1e-5


@pytest.mark.parametrize("op,act", [("swiglu", silu), ("geglu", gelu_tanh)])
def test_xla_glu(jax_ffi, op, act):
    jax, jnp = jax_ffi, jax_ffi.numpy
    g = np.random.default_rng(5).standard_normal((5, 33)).astype(np.float32)
    u = np.random.default_rng(6).standard_normal((5, 33)).astype(np.float32)
    sds = jax.ShapeDtypeStruct(g.shape, g.dtype)
    y = jax.ffi.ffi_call(f"xpuruntime_{op}_fwd", sds)(jnp.asarray(g), jnp.asarray(u), policy="fast")
    assert rel(y, act(g.astype(np.float64)) * u) <= 1e-5
    dg, du = jax.ffi.ffi_call(f"xpuruntime_{op}_bwd", (sds, sds))(
        jnp.asarray(u), jnp.asarray(g), jnp.asarray(u), policy="deterministic")
    assert rel(du, u * act(g.astype(np.float64))) <= 1e-5
    with pytest.raises(Exception, match=f"{op}: 'up' must have the shape of 'gate'"):
        jax.ffi.ffi_call(f"xpuruntime_{op}_fwd", sds)(
            jnp.asarray(g), jnp.asarray(u[:2]), policy="fast").block_until_ready()
