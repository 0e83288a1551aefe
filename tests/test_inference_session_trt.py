"""InferenceSession(backend="tensorrt"): the engine cache keys and folder, the errors when
no builder exists, engines on a device TensorRT cannot use, the lean runtime refusing an
engine cleanly (a child process: a crash would fail the test, not end the run), and, where
a full TensorRT and a GPU exist, an engine built, cached and run against the native op."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

import xpuruntime  # noqa: E402
from xpuruntime import Error, InferenceSession, InvalidArgumentError, _session_trt  # noqa: E402
from xpuruntime.interop import onnxruntime as xo  # noqa: E402

HAS_LEAN = importlib.util.find_spec("tensorrt_lean") is not None
HAS_CUDA = any(d.kind == "cuda" for d in xpuruntime.devices())
NO_BUILDER = "no full tensorrt with a builder is importable (not obtainable in this workplace)"


def softmax_model():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])
    node = helper.make_node("Softmax", ["x"], ["y"], name="sm", domain=xo.DOMAIN, scale=0.5)
    return xo.make_model(helper.make_graph([node], "g", [x], [y]))


# ---- the engine cache -----------------------------------------------------------------------

BASE = dict(model=b"model-bytes", device_name="NVIDIA H200", compute_capability=(9, 0),
            tensorrt_version="11.1.0.106", policy="fast", shapes=None)


def key(**changes):
    return _session_trt.engine_cache_key(**{**BASE, **changes})


def test_cache_key_is_stable_and_a_file_name():
    k = key()
    assert k == key() and k.endswith(".engine")
    assert "/" not in k and " " not in k
    assert "_NVIDIA-H200_sm90_trt11.1.0.106_fast_" in k


@pytest.mark.parametrize("change", [
    {"model": b"model-bytes!"}, {"device_name": "NVIDIA H100 80GB HBM3"},
    {"compute_capability": (10, 0)}, {"tensorrt_version": "11.4.0.106"},
    {"policy": "deterministic"}, {"policy": None}, {"shapes": {"x": ((1, 8), (4, 8), (16, 8))}}],
    ids=lambda c: next(iter(c)))
def test_cache_key_changes_with_each_part(change):
    assert key(**change) != key()


def test_cache_key_follows_the_environment_policy(monkeypatch):
    monkeypatch.delenv("XPURUNTIME_POLICY", raising=False)
    plain = key(policy=None)
    monkeypatch.setenv("XPURUNTIME_POLICY", "reference")
    assert key(policy=None) != plain and "_env-reference_" in key(policy=None)


def test_cache_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("XPURUNTIME_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _session_trt.cache_dir() == str(tmp_path / "xdg" / "xpuruntime" / "tensorrt")
    monkeypatch.setenv("XPURUNTIME_CACHE_DIR", str(tmp_path / "mine"))
    assert _session_trt.cache_dir() == str(tmp_path / "mine" / "tensorrt")
    assert _session_trt.cache_dir({"cache_dir": tmp_path / "given"}) == str(tmp_path / "given")


# ---- errors without a builder or a GPU --------------------------------------------------------

@pytest.mark.skipif(_session_trt.has_builder(), reason="a TensorRT builder is importable")
def test_no_builder_is_a_clear_error():
    with pytest.raises(Error, match=r"building an engine from an ONNX model needs the full tensorrt "
                                    r"package with a builder.*trtexec.*backend='onnxruntime'") as e:
        InferenceSession(softmax_model(), backend="tensorrt")
    if HAS_LEAN:
        assert "tensorrt_lean" in str(e.value) and "without a builder" in str(e.value)


def test_auto_without_a_builder_is_onnxruntime():
    if _session_trt.has_builder() and HAS_CUDA:
        pytest.skip("a builder and a GPU: auto picks TensorRT")
    ort = pytest.importorskip("onnxruntime")
    # On a GPU machine whose onnxruntime has no CUDA provider (no onnxruntime-gpu), the
    # rule is the same on the CPU: auto without a builder is ONNX Runtime.
    cuda_ep = "CUDAExecutionProvider" in ort.get_available_providers()
    device = "cuda" if HAS_CUDA and cuda_ep else "cpu"
    assert InferenceSession(softmax_model(), device=device).backend == "onnxruntime"


@pytest.mark.parametrize("given", ["bytes", "file"])
def test_engine_on_the_cpu_is_refused(tmp_path, given):
    data = b"\x00\x01 not onnx, taken as an engine"
    (tmp_path / "m.plan").write_bytes(data)
    model = data if given == "bytes" else str(tmp_path / "m.plan")
    with pytest.raises(InvalidArgumentError, match=r"backend='tensorrt'\) runs on a CUDA device, "
                                                   r"not cpu:0"):
        InferenceSession(model, backend="tensorrt")
    # "auto" takes an engine file to TensorRT, which refuses the CPU the same way.
    if given == "file":
        with pytest.raises(InvalidArgumentError, match="runs on a CUDA device"):
            InferenceSession(model)


def test_bad_options():
    with pytest.raises(InvalidArgumentError, match="options must be a dict with cache_dir, shapes"):
        InferenceSession(softmax_model(), backend="tensorrt", options={"workspace": 1})


def test_empty_engine():
    with pytest.raises(InvalidArgumentError, match="the engine is empty"):
        _session_trt.deserialize(None, b"")


@pytest.mark.skipif(HAS_CUDA, reason="a GPU is present")
def test_no_gpu_no_runtime():
    with pytest.raises(Error, match="no CUDA device is usable, and TensorRT's runtime needs one"):
        _session_trt.deserialize(None, b"not an engine")


@pytest.mark.skipif(not HAS_LEAN, reason="tensorrt-lean-cu13 is not installed")
@pytest.mark.skipif(HAS_CUDA, reason="a GPU is present: the runtime starts (see the GPU test)")
def test_lean_runtime_that_cannot_start_is_a_clear_error():
    """Without a GPU the lean runtime reports that it cannot start; deserializing with it,
    or destroying it, would crash the process (a child here): neither happens."""
    code = ("import tensorrt_lean as trt\n"
            "from xpuruntime import _session_trt, Error\n"
            "try:\n"
            "    _session_trt.start_runtime(trt)\n"
            "except Error as e:\n"
            "    print('ERROR', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tempfile.gettempdir(), timeout=300)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "ERROR InferenceSession (tensorrt): the tensorrt_lean" in r.stdout
    assert "runtime could not start: " in r.stdout and "CUDA" in r.stdout


def test_runtime_module_is_found():
    mod = _session_trt.runtime_module(missing_ok=True)
    if mod is None:
        with pytest.raises(ImportError, match="TensorRT is not importable"):
            _session_trt.runtime_module()
    else:
        assert hasattr(mod, "Runtime")


# ---- on a GPU ---------------------------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
@pytest.mark.skipif(_session_trt.runtime_module(missing_ok=True) is None,
                    reason="no TensorRT runtime (tensorrt or tensorrt-lean-cu13) is installed")
@pytest.mark.parametrize("data", [b"garbage" * 64, b"\x00" * 4096], ids=["text", "zeros"])
def test_corrupt_engine_is_a_clear_error(data):
    with pytest.raises(InvalidArgumentError, match=r"the engine could not be deserialized by "
                                                   r"tensorrt.*corrupt"):
        InferenceSession(data, backend="tensorrt", device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device")
@pytest.mark.skipif(not _session_trt.has_builder(), reason=NO_BUILDER)
def test_engine_built_cached_and_run(tmp_path):
    torch = pytest.importorskip("torch")
    opts = {"cache_dir": str(tmp_path)}
    sess = InferenceSession(softmax_model(), backend="tensorrt", device="cuda", options=opts,
                            policy="deterministic")
    assert sess.backend == "tensorrt" and os.path.isfile(sess._impl.cache_path)
    stamp = os.stat(sess._impl.cache_path).st_mtime_ns
    again = InferenceSession(softmax_model(), backend="tensorrt", device="cuda", options=opts,
                             policy="deterministic")
    assert again._impl.cache_path == sess._impl.cache_path
    assert os.stat(again._impl.cache_path).st_mtime_ns == stamp  # read, not rebuilt
    x = torch.randn(4, 8, device="cuda")
    (y,) = again.run({"x": x}, like="input")
    want = xpuruntime.ops.softmax(x, scale=0.5, policy="deterministic")
    torch.cuda.synchronize()
    assert torch.equal(y, want)
    # The same engine, serialized, through the runtime alone.
    with open(sess._impl.cache_path, "rb") as f:
        plain = InferenceSession(f.read(), backend="tensorrt", device="cuda")
    (z,) = plain.run([x], like="input")
    torch.cuda.synchronize()
    assert torch.equal(z, want)
    assert np.asarray(z.cpu()).shape == (4, 8)
