"""RMSNorm through an ONNX Runtime session built with onnx.helper."""

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from xpuruntime.interop import onnxruntime as xo  # noqa: E402
from conftest import assert_close, random_inputs, rms_norm_reference  # noqa: E402

ELEM = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}


def make_model(dtype, residual, **attrs):
    t = ELEM[dtype]
    inputs = [helper.make_tensor_value_info("x", t, ["R", "N"]), helper.make_tensor_value_info("w", t, ["N"])]
    outputs = [helper.make_tensor_value_info("y", t, None)]
    if residual:
        inputs.append(helper.make_tensor_value_info("r", t, ["R", "N"]))
        outputs.append(helper.make_tensor_value_info("h", t, None))
    node = helper.make_node("RMSNorm", [i.name for i in inputs], [o.name for o in outputs],
                            domain=xo.DOMAIN, **attrs)
    graph = helper.make_graph([node], "rms_norm", inputs, outputs)
    return xo.make_model(graph)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("shape", [(1, 1), (5, 4097), (64, 128)])
def test_session_forward(rng, dtype, shape):
    x, w = random_inputs(rng, shape, dtype), random_inputs(rng, shape[-1:], dtype)
    sess = xo.inference_session(make_model(dtype, False, epsilon=1e-5))
    (y,) = sess.run(None, {"x": x.astype(dtype), "w": w.astype(dtype)})
    assert y.dtype == np.dtype(dtype)
    assert_close(y, rms_norm_reference(x, w, 1e-5, dtype=dtype)["y"], dtype)


def test_session_residual_default_epsilon(rng):
    x, r, w = random_inputs(rng, (7, 33)), random_inputs(rng, (7, 33)), random_inputs(rng, (33,))
    sess = xo.inference_session(make_model("float32", True))
    y, h = sess.run(None, {"x": x, "w": w, "r": r})
    ref = rms_norm_reference(x, w, 1e-6, residual=r)
    assert_close(h, ref["h"], "float32", "h")
    assert_close(y, ref["y"], "float32", "y")


def test_session_reports_kernel_validation(rng):
    # Shapes the ONNX graph cannot check (weight length vs x's last dim) reach the core.
    t = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("x", t, ["R", "N"]), helper.make_tensor_value_info("w", t, ["M"])]
    node = helper.make_node("RMSNorm", ["x", "w"], ["y"], domain=xo.DOMAIN)
    graph = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info("y", t, None)])
    model = xo.make_model(graph)
    sess = xo.inference_session(model)
    with pytest.raises(Exception, match=r"rms_norm: 'weight' must have shape \[8\], got \[3\]"):
        sess.run(None, {"x": random_inputs(rng, (2, 8)), "w": random_inputs(rng, (3,))})


def test_library_path_exists():
    path = xo.library_path()
    assert path.endswith("libxpuruntime_ort.so")
