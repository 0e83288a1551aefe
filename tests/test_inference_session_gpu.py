"""InferenceSession on CUDA (ONNX Runtime's CUDA provider, onnxruntime-gpu): every op type
in f32, f16 and bf16 against the native op with its placement read from ORT's profiler;
zero-copy IO binding (pointer identity, no Memcpy node, no host wait); ordering on the
session's stream both ways; strict refusing a CPU fallback with the node named and why;
device errors. All marked gpu; skipped without a GPU, torch CUDA or the CUDA provider."""

from __future__ import annotations

import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
torch = pytest.importorskip("torch")
from onnx import TensorProto, helper  # noqa: E402

import xpuruntime  # noqa: E402
from xpuruntime import InferenceSession, InvalidArgumentError, KernelNotFoundError  # noqa: E402
from xpuruntime import _session_ort  # noqa: E402
from xpuruntime.interop import onnxruntime as xo  # noqa: E402
from test_inference_session import (  # noqa: E402
    assert_identical, block_inputs, block_model, block_reference, op_case, op_cases)
from test_onnxruntime_attributes import NODE, native  # noqa: E402
from conftest import assert_close  # noqa: E402

pytestmark = pytest.mark.gpu
if not any(d.kind == "cuda" for d in xpuruntime.devices()) or not torch.cuda.is_available():
    pytest.skip("no CUDA device (xpuruntime and torch)", allow_module_level=True)
if _session_ort.CUDA_EP not in ort.get_available_providers():
    pytest.skip(f"this onnxruntime has no {_session_ort.CUDA_EP} (install onnxruntime-gpu)",
                allow_module_level=True)

CUDA, CPU = _session_ort.CUDA_EP, _session_ort.CPU_EP
SLEEP_CYCLES = 200_000_000  # ~0.1 s of GPU time, far longer than any host step here


def profiled(tmp_path):
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "profile")
    return opts


def profile_of(sess):
    """{node: provider} from ORT's profiler (ends this session's profiling)."""
    return _session_ort.provider_per_node(sess._impl.ort_session.end_profiling())


def cuda_feed(rng, rows=5):
    return {k: torch.from_numpy(v).cuda() for k, v in block_inputs(rng, rows).items()}


def host(feed):
    return {k: v.cpu().numpy() for k, v in feed.items()}


# ---- every op type on the CUDA provider ---------------------------------------------------------

CASES = op_cases()


@pytest.mark.parametrize("spec,dtype,table,labels", CASES,
                         ids=[f"{s.onnx_type}-{d}-{t}-{lb}" for s, d, t, lb in CASES])
def test_every_op_type_on_cuda(rng, tmp_path, spec, dtype, table, labels):
    model, inputs = op_case(spec, rng, dtype, table, labels, device="cuda")
    sess = InferenceSession(model, device="cuda", policy="deterministic",
                            options=profiled(tmp_path))  # strict: nothing may fall back
    feed = {i.name: a for i, a in zip(spec.inputs, inputs) if a is not None}
    got = sess.run(feed, like="input")
    assert all(g.is_cuda for g in got)
    want = native(spec, inputs, policy="deterministic")
    assert_identical(got, want, sess.output_names)
    assert profile_of(sess) == {NODE: CUDA}
    assert sess.placement == {NODE: CUDA}


# ---- zero-copy, no host round trip --------------------------------------------------------------

def test_io_binding_is_zero_copy(rng, tmp_path):
    feed = cuda_feed(rng)
    sess = InferenceSession(block_model(), device="cuda", options=profiled(tmp_path))
    sess.run(feed)  # 'loss' has no shape in the model: ORT allocates it once, then the pool
    outs = sess.run(feed)
    assert all(isinstance(o, xpuruntime.Array) and o.device == xpuruntime.Device("cuda", 0)
               for o in outs)
    assert all(type(o._owner).__name__ != "OrtValue" for o in outs)
    assert all(o.stream == sess.stream.handle for o in outs)
    # ORT wrote into the Arrays' own memory (xpuruntime's pool), bound by pointer.
    bound = sess._impl.binding().public.get_outputs()
    assert [v.data_ptr() for v in bound] == [o.ptr for o in outs]
    assert all(v.device_name().lower() == "cuda" for v in bound)
    # Every node on the GPU and no copy node between host and device.
    placement = profile_of(sess)
    assert set(placement.values()) == {CUDA}, placement
    assert not [n for n in placement if "Memcpy" in n]
    assert_close_block(outs, feed)


def test_run_does_not_wait_for_the_device(rng):
    """The call returns with the work still queued: no host synchronization inside."""
    feed = cuda_feed(rng)
    sess = InferenceSession(block_model(), device="cuda")
    sess.run(feed)  # warm up
    torch.cuda.synchronize()
    with torch.cuda.stream(torch.cuda.ExternalStream(sess.stream.handle)):
        torch.cuda._sleep(SLEEP_CYCLES)
    outs = sess.run(feed)
    assert not sess.stream.query(), "run() waited for the device"
    sess.stream.synchronize()
    assert_close_block(outs, feed)


def assert_close_block(outs, feed):
    """Against the same block on the CPU (other kernels: OPS.md's f32 tolerance)."""
    for o, w, name in zip(outs, block_reference(host(feed)), ("probs", "loss")):
        assert_close(torch.from_dlpack(o).cpu().numpy(), w, "float32", name)


# ---- ordering with other work --------------------------------------------------------------------

def test_session_on_a_given_stream_is_ordered_with_its_work(rng):
    side = torch.cuda.Stream()
    sess = InferenceSession(block_model(), device="cuda", stream=side)
    assert sess.stream.handle == side.cuda_stream
    data = cuda_feed(rng)
    x = torch.zeros_like(data["x"])
    with torch.cuda.stream(side):
        torch.cuda._sleep(SLEEP_CYCLES)
        x.copy_(data["x"])  # written late, on the session's stream
        outs = sess.run(dict(data, x=x))
    side.synchronize()
    assert_close_block(outs, data)


def test_inputs_from_another_stream_are_waited_for(rng):
    """Session on its own stream; inputs written on torch's stream after a long sleep: the
    DLPack handshake makes the session's stream wait for them."""
    sess = InferenceSession(block_model(), device="cuda")
    data = cuda_feed(rng)
    x = torch.zeros_like(data["x"])
    torch.cuda.synchronize()
    torch.cuda._sleep(SLEEP_CYCLES)
    x.copy_(data["x"])
    outs = sess.run(dict(data, x=x))
    assert_close_block(outs, data)


def test_outputs_are_waited_for_by_their_consumers(rng):
    """Work queued on the session's stream before the run delays the outputs; torch reading
    them on its own stream waits (DLPack handshake with the Array's stream)."""
    sess = InferenceSession(block_model(), device="cuda")
    data = cuda_feed(rng)
    torch.cuda.synchronize()
    with torch.cuda.stream(torch.cuda.ExternalStream(sess.stream.handle)):
        torch.cuda._sleep(SLEEP_CYCLES)
    probs, loss = sess.run(data, like="input")
    copies = [probs.clone(), loss.clone()]  # on torch's current stream
    torch.cuda.synchronize()
    assert_close_block(copies, data)


# ---- strict and placement -------------------------------------------------------------------------

# Standard ops ONNX Runtime's CUDA provider has had no kernel for; the first that falls back
# here is used (a newer ORT may gain kernels: then the test says so).
FALLBACK_CANDIDATES = ["Det", "Unique"]


def fallback_model(op):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 3])
    outs = [helper.make_tensor_value_info("odd", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("probs", TensorProto.FLOAT, [3, 3])]
    nodes = [helper.make_node(op, ["x"], ["odd"], name="odd0"),
             helper.make_node("Softmax", ["x"], ["probs"], name="softmax", domain=xo.DOMAIN)]
    return xo.make_model(helper.make_graph(nodes, "fallback", [x], outs))


def test_strict_names_the_cpu_nodes_and_why(rng):
    op = next((o for o in FALLBACK_CANDIDATES
               if InferenceSession(fallback_model(o), device="cuda", strict=False)
               .placement.get("odd0") == CPU), None)
    if op is None:
        pytest.skip(f"this onnxruntime has CUDA kernels for all of {FALLBACK_CANDIDATES}")
    lenient = InferenceSession(fallback_model(op), device="cuda", strict=False)
    placed = {k: v for k, v in lenient.placement.items() if "Memcpy" not in k}
    assert placed == {"odd0": CPU, "softmax": CUDA}
    x = torch.randn(3, 3, device="cuda")
    odd, probs = lenient.run([x], like="input")
    torch.testing.assert_close(probs, xpuruntime.ops.softmax(x))
    with pytest.raises(KernelNotFoundError) as e:
        InferenceSession(fallback_model(op), device="cuda")
    msg = str(e.value)
    assert "strict=True: ONNX Runtime would run 1 node(s) of this model on the CPU instead of cuda:0" in msg
    assert f"node 'odd0' ({op}): no CUDA kernel for {op} with these input types" in msg, msg
    assert "softmax" not in msg and "strict=False" in msg


def test_strict_accepts_a_model_that_runs_on_the_gpu(rng):
    sess = InferenceSession(block_model(), device="cuda", strict=True)
    assert set(sess.placement.values()) == {CUDA}


# ---- device, stream and output errors ------------------------------------------------------------

def test_input_on_another_device(rng):
    feed = block_inputs(rng)
    sess = InferenceSession(block_model(), device="cuda")
    with pytest.raises(InvalidArgumentError, match=r"input 'x' is on cpu:0, the session runs on "
                                                   r"cuda:0; move it"):
        sess.run(feed)
    cpu = InferenceSession(block_model())
    with pytest.raises(InvalidArgumentError, match=r"input 'x' is on cuda:0, the session runs on "
                                                   r"cpu:0"):
        cpu.run(dict(feed, x=torch.from_numpy(feed["x"]).cuda()))


def test_strided_cuda_input_is_refused(rng):
    feed = cuda_feed(rng)
    sess = InferenceSession(block_model(), device="cuda")
    strided = torch.empty(8, 5, device="cuda").t()
    with pytest.raises(InvalidArgumentError, match=r"input 'x' is not dense row-major.*contiguous"):
        sess.run(dict(feed, x=strided))


def test_legacy_default_stream_is_refused():
    with pytest.raises(InvalidArgumentError, match="legacy default stream"):
        InferenceSession(block_model(), device="cuda", stream=0)


def test_device_forms_and_numpy_outputs(rng):
    feed = cuda_feed(rng)
    for device in ("cuda", "cuda:0", xpuruntime.Device("cuda", 0)):
        assert InferenceSession(block_model(), device=device).device == xpuruntime.Device("cuda", 0)
    sess = InferenceSession(block_model(), device="cuda")
    with pytest.raises(InvalidArgumentError, match=r"output 'probs' \(float32 on cuda:0\) cannot "
                                                   r"become a numpy array"):
        sess.run(feed, like="numpy")


def test_unknown_output_shape_on_cuda(rng):
    feed = cuda_feed(rng)
    sess = InferenceSession(block_model(out_shape=None), device="cuda")
    first = sess.run(feed)
    assert type(first[0]._owner).__name__ == "OrtValue" and first[0].device.kind == "cuda"
    second = sess.run(feed)
    assert type(second[0]._owner).__name__ != "OrtValue"
    assert_close_block(first, feed)
    assert_close_block(second, feed)
