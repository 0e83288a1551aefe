"""xpuruntime.InferenceSession on the CPU (ONNX Runtime backend): construction from a path,
bytes or a ModelProto; any DLPack array in (numpy, torch, jax, xpuruntime.Array; dict or
list); xpuruntime.Array or the input's framework out; introspection; every bad input; the
policy rule; placement and strict; every op type against the native op.

The CUDA parts are in test_inference_session_gpu.py, TensorRT in
test_inference_session_trt.py."""

from __future__ import annotations

import glob
import os
import tempfile

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

import xpuruntime  # noqa: E402
import xpuruntime.ops  # noqa: E402
from xpuruntime import InferenceSession, InvalidArgumentError, _session_ort, _spec  # noqa: E402
from xpuruntime.interop import onnxruntime as xo  # noqa: E402
from conftest import HAS_JAX, HAS_TORCH  # noqa: E402
from test_onnxruntime_attributes import (  # noqa: E402
    FORWARD, NODE, dtype_variants, example_inputs, native, node_model, result_names)

if xo.library_path(missing_ok=True) is None:
    pytest.skip("libxpuruntime_ort.so is not built", allow_module_level=True)

F32 = TensorProto.FLOAT


def block_model(out_shape=("T", 8)):
    """RMSNorm -> standard Relu -> Softmax(scale=0.5) and CrossEntropy(none) of the same rows:
    named dims, two xpuruntime outputs and one standard node."""
    inputs = [helper.make_tensor_value_info("x", F32, ["T", 8]),
              helper.make_tensor_value_info("w", F32, [8]),
              helper.make_tensor_value_info("labels", TensorProto.INT64, ["T"])]
    outputs = [helper.make_tensor_value_info("probs", F32, list(out_shape) if out_shape else None),
               helper.make_tensor_value_info("loss", F32, None)]
    nodes = [helper.make_node("RMSNorm", ["x", "w"], ["n"], name="norm", domain=xo.DOMAIN),
             helper.make_node("Relu", ["n"], ["r"], name="relu"),
             helper.make_node("Softmax", ["r"], ["probs"], name="softmax", domain=xo.DOMAIN,
                              scale=0.5),
             helper.make_node("CrossEntropy", ["n", "labels"], ["loss"], name="ce",
                              domain=xo.DOMAIN, reduction="none")]
    return xo.make_model(helper.make_graph(nodes, "block", inputs, outputs))


def block_inputs(rng, rows=5):
    return {"x": rng.standard_normal((rows, 8)).astype(np.float32),
            "w": rng.standard_normal(8).astype(np.float32),
            "labels": rng.integers(0, 8, rows).astype(np.int64)}


def block_reference(feed):
    """The block through the native ops (the same CPU kernels: identical results)."""
    ops = xpuruntime.ops
    n = np.asarray(ops.rms_norm(feed["x"], feed["w"]))
    probs = ops.softmax(np.maximum(n, 0), scale=0.5)
    loss = ops.cross_entropy(n, feed["labels"], reduction="none")
    return [np.asarray(probs), np.asarray(loss)]


def assert_block(outs, feed):
    for got, want, name in zip(outs, block_reference(feed), ("probs", "loss")):
        got = np.asarray(got)
        assert got.shape == want.shape and got.dtype == want.dtype, name
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.fixture
def model():
    return block_model()


@pytest.fixture
def feed(rng):
    return block_inputs(rng)


# ---- construction -------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["ModelProto", "bytes", "bytearray", "path", "pathlike"])
def test_construction(model, feed, tmp_path, form):
    path = tmp_path / "block.onnx"
    onnx.save(model, str(path))
    given = {"ModelProto": model, "bytes": model.SerializeToString(),
             "bytearray": bytearray(model.SerializeToString()), "path": str(path),
             "pathlike": path}[form]
    sess = InferenceSession(given)
    assert sess.backend == "onnxruntime" and sess.device == xpuruntime.Device("cpu")
    assert_block(sess.run(feed), feed)


@pytest.mark.parametrize("device", ["cpu", "cpu:0", xpuruntime.Device("cpu")])
def test_cpu_device_forms(model, feed, device):
    assert InferenceSession(model, device=device).device == xpuruntime.Device("cpu")


def test_introspection(model):
    sess = InferenceSession(model)
    assert sess.inputs == (xpuruntime.TensorInfo("x", "float32", ("T", 8)),
                           xpuruntime.TensorInfo("w", "float32", (8,)),
                           xpuruntime.TensorInfo("labels", "int64", ("T",)))
    assert sess.input_names == ("x", "w", "labels")
    assert sess.output_names == ("probs", "loss")
    assert sess.outputs[0] == xpuruntime.TensorInfo("probs", "float32", ("T", 8))
    # Declared without a shape: ORT's "[]" is an unknown rank here, not a scalar.
    assert sess.outputs[1] == xpuruntime.TensorInfo("loss", "float32", None)
    assert "x" in repr(sess) and "onnxruntime" in repr(sess)
    assert sess.stream is None and sess.policy is None and sess.strict


# ---- inputs of every framework, dict and list ---------------------------------------------------

def _convert(feed, framework):
    if framework == "numpy":
        return dict(feed)
    if framework == "torch":
        torch = pytest.importorskip("torch")
        return {k: torch.from_numpy(v) for k, v in feed.items()}
    if framework == "jax":  # int64 labels stay numpy (jax holds int32 without x64): mixed is fine
        jnp = pytest.importorskip("jax.numpy")
        return {k: v if v.dtype == np.int64 else jnp.asarray(v) for k, v in feed.items()}
    return {k: xpuruntime.asarray(v) for k, v in feed.items()}


FRAMEWORKS = ["numpy", "xpuruntime",
              pytest.param("torch", marks=pytest.mark.skipif(not HAS_TORCH, reason="no torch")),
              pytest.param("jax", marks=pytest.mark.skipif(not HAS_JAX, reason="no jax"))]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("as_list", [False, True])
def test_inputs_of_every_framework(model, feed, framework, as_list):
    sess = InferenceSession(model)
    given = _convert(feed, framework)
    outs = sess.run(list(given.values()) if as_list else given)
    assert all(isinstance(o, xpuruntime.Array) and o.device == sess.device for o in outs)
    assert_block(outs, feed)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_like_input(model, feed, framework):
    sess = InferenceSession(model)
    given = _convert(feed, framework)
    outs = sess.run(given, like="input")
    first = type(next(iter(given.values())))
    kind = {"numpy": np.ndarray, "xpuruntime": xpuruntime.Array}.get(framework)
    if framework == "torch":
        import torch
        kind = torch.Tensor
    if framework == "jax":
        import jax
        kind = jax.Array
    assert all(isinstance(o, kind) for o in outs), (first, [type(o) for o in outs])
    assert_block([np.asarray(o) for o in outs], feed)


def test_like_framework_names(model, feed):
    sess = InferenceSession(model)
    outs = sess.run(feed, like="numpy")
    assert all(type(o) is np.ndarray for o in outs)
    assert_block(outs, feed)
    with pytest.raises(InvalidArgumentError, match=r"like='tensorflow'; expected None, 'input'"):
        sess.run(feed, like="tensorflow")


def test_outputs_are_zero_copy_views_of_the_pool(model, feed):
    sess = InferenceSession(model)
    probs, loss = sess.run(feed)
    assert np.from_dlpack(probs).ctypes.data == probs.ptr
    # Bound into ORT by pointer: the IO binding holds the Array's own memory.
    bound = sess._impl.binding().public.get_outputs()
    assert [v.data_ptr() for v in bound] == [probs.ptr, loss.ptr]


def test_single_array_for_a_one_input_model(rng):
    x = helper.make_tensor_value_info("x", F32, ["R", 8])
    y = helper.make_tensor_value_info("y", F32, ["R", 8])
    node = helper.make_node("Softmax", ["x"], ["y"], domain=xo.DOMAIN)
    sess = InferenceSession(xo.make_model(helper.make_graph([node], "g", [x], [y])))
    a = rng.standard_normal((3, 8)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(sess.run(a)[0]), np.asarray(xpuruntime.ops.softmax(a)))


def test_output_names_subset_and_order(model, feed):
    sess = InferenceSession(model)
    probs, loss = block_reference(feed)
    (only,) = sess.run(feed, output_names=["loss"])
    np.testing.assert_array_equal(np.asarray(only), loss)
    swapped = sess.run(feed, output_names=("loss", "probs"))
    np.testing.assert_array_equal(np.asarray(swapped[1]), probs)
    assert_block(sess.run(feed), feed)  # all outputs again after a subset
    with pytest.raises(InvalidArgumentError, match="unknown output 'nope'; the model's outputs are "
                                                   "'probs', 'loss'"):
        sess.run(feed, output_names=["nope"])


def test_outputs_of_unknown_shape_learnt_then_pooled(feed):
    """'probs' declared without a shape: ORT allocates it the first time (kept alive by the
    Array), then it comes from xpuruntime's pool for the same input shapes."""
    sess = InferenceSession(block_model(out_shape=None))
    first = sess.run(feed)
    assert type(first[0]._owner).__name__ == "OrtValue"
    second = sess.run(feed)
    assert type(second[0]._owner).__name__ != "OrtValue"
    assert_block(first, feed)
    assert_block(second, feed)


def test_strided_cpu_input_is_copied(model, feed):
    sess = InferenceSession(model)
    strided = dict(feed, x=np.asfortranarray(feed["x"]))
    assert not strided["x"].flags.c_contiguous
    assert_block(sess.run(strided), feed)


def test_zero_rows(model, rng):
    feed = block_inputs(rng, rows=0)
    outs = InferenceSession(model).run(feed)
    assert [o.shape for o in outs] == [(0, 8), (0,)]


def test_several_input_shapes(model, rng):
    sess = InferenceSession(model)
    for rows in (1, 7, 3, 7):
        feed = block_inputs(rng, rows)
        assert_block(sess.run(feed), feed)


# ---- bad inputs ---------------------------------------------------------------------------------

BAD_INPUTS = [
    ("unknown", lambda f: dict(f, y=f["x"]), r"unknown input 'y'; the model's inputs are 'x', 'w', "
                                              r"'labels'"),
    ("missing", lambda f: {"x": f["x"], "w": f["w"]}, r"missing input 'labels'"),
    ("count", lambda f: [f["x"], f["w"]], r"2 input\(s\) given, the model takes 3 \('x', 'w', "
                                          r"'labels'\)"),
    ("dtype", lambda f: dict(f, x=f["x"].astype(np.float64)),
     r"input 'x': dtype float64, the model wants float32"),
    ("label dtype", lambda f: dict(f, labels=f["labels"].astype(np.int32)),
     r"input 'labels': dtype int32, the model wants int64"),
    ("rank", lambda f: dict(f, x=f["x"][None]),
     r"input 'x': rank 3 \(shape \(1, 5, 8\)\), the model wants rank 2 \(\[T, 8\]\)"),
    ("fixed dim", lambda f: dict(f, w=f["w"][:4]),
     r"input 'w': dimension 0 is 4, the model wants 8 \(shape \[8\], given \(4,\)\)"),
    ("named dim", lambda f: dict(f, labels=f["labels"][:3]),
     r"input 'labels': dimension 0 \('T'\) is 3, but input 'x' has 'T' = 5"),
    ("not an array", lambda f: dict(f, w=[1.0] * 8),
     r"'w' must be an array \(numpy, torch, jax, cupy or another DLPack producer\), got list"),
    ("None", lambda f: dict(f, w=None), r"'w' is required, got None"),
    ("object array", lambda f: dict(f, w=np.array([None] * 8)), r"'w' is a numpy array of Python "
                                                                 r"objects"),
]


@pytest.mark.parametrize("make,message", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input(model, feed, make, message):
    sess = InferenceSession(model)
    with pytest.raises(InvalidArgumentError, match="InferenceSession.run: " + message):
        sess.run(make(feed))
    assert_block(sess.run(feed), feed)  # the session still works


def test_kernel_errors_name_the_node(model, feed):
    sess = InferenceSession(model)
    bad = dict(feed, labels=np.full(5, 9, np.int64))
    with pytest.raises(xpuruntime.Error, match=r"CrossEntropy node 'ce': cross_entropy: 'labels': label 9"):
        sess.run(bad)


# ---- bad models ---------------------------------------------------------------------------------

def test_missing_model_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model file '.*nope.onnx' does not exist"):
        InferenceSession(str(tmp_path / "nope.onnx"))


@pytest.mark.parametrize("data", [b"\x00\xffnot a model at all\x13", b"\x08\x07"],
                         ids=["garbage", "no-graph"])
def test_corrupt_model(tmp_path, data):
    with pytest.raises(InvalidArgumentError, match=r"is not a valid ONNX model"):
        InferenceSession(data, backend="onnxruntime")
    path = tmp_path / "bad.onnx"
    path.write_bytes(data)
    with pytest.raises(InvalidArgumentError, match=r"bad.onnx is not a valid ONNX model"):
        InferenceSession(str(path), backend="onnxruntime")


def test_truncated_model_file(model, tmp_path):
    path = tmp_path / "cut.onnx"
    path.write_bytes(model.SerializeToString()[:-7])
    with pytest.raises(InvalidArgumentError, match="cut.onnx is not a valid ONNX model"):
        InferenceSession(str(path), backend="onnxruntime")


def test_empty_model(tmp_path):
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(InvalidArgumentError, match="is empty"):
        InferenceSession(str(tmp_path / "empty.onnx"))


def test_model_of_wrong_type():
    with pytest.raises(TypeError, match="model must be a path, bytes or an onnx.ModelProto"):
        InferenceSession(12)


def test_unknown_xpuruntime_op_type():
    x = helper.make_tensor_value_info("x", F32, [2, 8])
    node = helper.make_node("RMSNrom", ["x"], ["y"], name="typo", domain=xo.DOMAIN)
    model = xo.make_model(helper.make_graph([node], "g", [x], [x]))
    with pytest.raises(InvalidArgumentError, match=r"RMSNrom node 'typo': unknown op type in domain "
                                                   r"'xpuruntime'; known: RMSNorm, LayerNorm"):
        InferenceSession(model)


def test_bad_attribute_is_refused_before_ort(rng):
    spec = _spec.by_onnx_type("Softmax")
    model = node_model(spec, example_inputs(spec, rng), scal=2.0)
    with pytest.raises(InvalidArgumentError, match=f"Softmax node '{NODE}': softmax: unknown "
                                                   "attribute 'scal'"):
        InferenceSession(model)


def test_an_engine_file_is_not_for_onnxruntime(tmp_path):
    (tmp_path / "m.engine").write_bytes(b"\x01\x02engine")
    with pytest.raises(InvalidArgumentError, match="not a valid ONNX model"):
        InferenceSession(str(tmp_path / "m.engine"), backend="onnxruntime")


# ---- arguments ----------------------------------------------------------------------------------

def test_bad_arguments(model):
    with pytest.raises(InvalidArgumentError, match="unknown backend 'tvm'"):
        InferenceSession(model, backend="tvm")
    with pytest.raises(InvalidArgumentError, match="unknown policy 'quick'"):
        InferenceSession(model, policy="quick")
    with pytest.raises(InvalidArgumentError, match="unknown device kind 'tpu'"):
        InferenceSession(model, device="tpu")
    with pytest.raises(InvalidArgumentError, match="stream= is for CUDA sessions"):
        InferenceSession(model, stream=xpuruntime.Stream("cpu"))
    with pytest.raises(InvalidArgumentError, match=r"unknown ONNX Runtime option\(s\) \['threads'\]"):
        InferenceSession(model, options={"threads": 2})
    with pytest.raises(TypeError, match="options must be an onnxruntime.SessionOptions"):
        InferenceSession(model, options=3)


@pytest.mark.skipif(xpuruntime.devices()[-1].kind == "cuda", reason="a CUDA device is present")
def test_cuda_device_without_a_gpu(model):
    with pytest.raises(InvalidArgumentError, match="invalid CUDA device index 0"):
        InferenceSession(model, device="cuda")


def test_auto_backend_on_the_cpu_is_onnxruntime(model):
    assert InferenceSession(model, backend="auto").backend == "onnxruntime"


def test_user_session_options(model, feed):
    """Options are the user's: the library is registered once, whatever reuses them."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    a = InferenceSession(model, options=opts)
    b = InferenceSession(model, options={"session_options": opts}, strict=False)
    assert_block(a.run(feed), feed)
    assert_block(b.run(feed), feed)


# ---- policy -------------------------------------------------------------------------------------

def test_with_policy_rewrites_every_xpuruntime_node(model):
    from xpuruntime.session import with_policy
    marked = with_policy(model, "fast")  # a node's own policy is replaced, not doubled
    out = with_policy(marked, "deterministic")
    got = {n.name: [a.s for a in n.attribute if a.name == "policy"] for n in out.graph.node}
    assert got == {"norm": [b"deterministic"], "relu": [], "softmax": [b"deterministic"],
                   "ce": [b"deterministic"]}
    assert all(a.name != "policy" for n in model.graph.node for a in n.attribute)  # not in place


@pytest.mark.parametrize("policy", ["fast", "deterministic", "reference"])
def test_policy_reaches_the_kernels(rng, policy):
    spec = _spec.by_onnx_type("CrossEntropy")
    inputs = example_inputs(spec, rng)
    sess = InferenceSession(node_model(spec, inputs), policy=policy)
    assert sess.policy == policy
    feed = {i.name: a for i, a in zip(spec.inputs, inputs) if a is not None}
    (got,) = sess.run(feed)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(native(spec, inputs, policy=policy)[0]))


def test_policy_none_keeps_the_environment_rule(rng, monkeypatch):
    spec = _spec.by_onnx_type("Softmax")
    model = node_model(spec, example_inputs(spec, rng))
    monkeypatch.setenv("XPURUNTIME_POLICY", "bogus")  # read by the library for every node
    with pytest.raises(xpuruntime.Error, match=r"unknown policy 'bogus'.*XPURUNTIME_POLICY"):
        InferenceSession(model)
    InferenceSession(model, policy="reference")  # the explicit policy wins


# ---- placement and strict -----------------------------------------------------------------------

@pytest.mark.parametrize("strict", [True, False])
def test_placement_on_the_cpu(model, feed, strict):
    sess = InferenceSession(model, strict=strict)
    if not _session_ort.has_assignment_info():
        assert sess.placement is None
        sess.run(feed)
    assert sess.placement == {"norm": "CPUExecutionProvider", "relu": "CPUExecutionProvider",
                              "softmax": "CPUExecutionProvider", "ce": "CPUExecutionProvider"}


def test_placement_from_the_profiler(model, feed, monkeypatch):
    """onnxruntime < 1.24 has no assignment record: the first run is profiled, the profile
    read and removed, later runs are not profiled."""
    monkeypatch.setattr(_session_ort, "has_assignment_info", lambda: False)
    sess = InferenceSession(model)
    assert sess.placement is None
    prefix = f"xpuruntime_placement_{os.getpid()}_{id(sess._impl)}"
    assert_block(sess.run(feed), feed)
    assert sess.placement == {"norm": "CPUExecutionProvider", "relu": "CPUExecutionProvider",
                              "softmax": "CPUExecutionProvider", "ce": "CPUExecutionProvider"}
    assert not glob.glob(os.path.join(tempfile.gettempdir(), prefix + "*"))
    assert_block(sess.run(feed), feed)
    assert sess._impl.ort_session.end_profiling() == ""  # profiling ended with the first run


def test_unnamed_nodes_get_names(rng):
    x = helper.make_tensor_value_info("x", F32, ["R", 8])
    nodes = [helper.make_node("Softmax", ["x"], ["a"], domain=xo.DOMAIN),
             helper.make_node("Softmax", ["a"], ["b"], domain=xo.DOMAIN),
             helper.make_node("Relu", ["b"], ["y"])]
    y = helper.make_tensor_value_info("y", F32, ["R", 8])
    sess = InferenceSession(xo.make_model(helper.make_graph(nodes, "g", [x], [y])))
    sess.run(rng.standard_normal((2, 8)).astype(np.float32))
    assert set(sess.placement.values()) == {"CPUExecutionProvider"}
    assert len(sess.placement) == 3


def test_placement_probe_in_a_child(model):
    """The child strict=True uses to say which nodes would run on the CPU, and why: with the
    CPU provider alone, every node, and no reason in ORT's log."""
    nodes = _session_ort.cpu_nodes(model.SerializeToString(), ["CPUExecutionProvider"])
    assert sorted((n, op, dom) for n, op, dom, _ in nodes) == [
        ("ce", "CrossEntropy", "xpuruntime"), ("norm", "RMSNorm", "xpuruntime"),
        ("relu", "Relu", ""), ("softmax", "Softmax", "xpuruntime")]
    assert {why for *_, why in nodes} == {_session_ort._UNKNOWN}


def test_reasons_from_the_log():
    log = ("2026-12-01 [W:onnxruntime:Default, cuda_execution_provider.cc:2100 GetCapability] CUDA "
           "kernel not found in registries for Op type: Det node name: det0\x1b[m\n"
           "2026-12-01 [I:onnxruntime:, fallback_cpu_capability.cc:160 GetCpuPreferredNodes] Force "
           "fallback to CPU execution for node: shape_of_x\n")
    reasons = _session_ort._reasons(log)
    assert set(reasons) == {"det0", "shape_of_x"}
    assert reasons["det0"].startswith("no CUDA kernel for Det with these input types")
    assert "on purpose" in reasons["shape_of_x"]


# ---- every op type through the session, against the native op ----------------------------------

def _bf16_model(spec, inputs):
    """node_model of float16 placeholders with every float16 tensor declared bfloat16."""
    m = node_model(spec, inputs)
    for v in [*m.graph.input, *m.graph.output]:
        if v.type.tensor_type.elem_type == TensorProto.FLOAT16:
            v.type.tensor_type.elem_type = TensorProto.BFLOAT16
    return m


def op_cases(dtypes=("float32", "float16", "bfloat16")):
    """(spec, dtype, table, labels) for every forward op type and dtype variant (bfloat16
    takes float16's: rope's tables in x's dtype or f32; int32 or int64 labels)."""
    return [(s, d, table, labels) for s in FORWARD for d in dtypes
            for v, table, labels in dtype_variants(s) if v == ("float32" if d == "float32" else "float16")]


def op_case(spec, rng, dtype, table, labels, device="cpu"):
    """(model, inputs in spec order) of one case: numpy on the CPU for f32/f16, torch
    otherwise (bfloat16, CUDA)."""
    proto_dtype = "float16" if dtype == "bfloat16" else dtype
    inputs = example_inputs(spec, rng, proto_dtype, table=table, labels=labels)
    model = _bf16_model(spec, inputs) if dtype == "bfloat16" else node_model(spec, inputs)
    if dtype == "bfloat16" or device != "cpu":
        torch = pytest.importorskip("torch")
        as_torch = {"float16": getattr(torch, dtype)}
        inputs = [None if a is None else torch.from_numpy(a).to(device=device,
                  dtype=as_torch.get(a.dtype.name)) for a in inputs]
    return model, inputs


def assert_identical(got, want, names):
    """The session and the native op run the same kernel (deterministic): same bits."""
    assert len(got) == len(names)
    for g, w, name in zip(got, want, names):
        assert g.dtype == w.dtype and tuple(g.shape) == tuple(w.shape), name
        if hasattr(g, "cpu"):  # torch
            g, w = g.cpu(), w.cpu()
            if g.is_floating_point():  # compare bits: NaN == NaN, -0 != +0
                g, w = g.reshape(-1).view(_int_of(g)), w.reshape(-1).view(_int_of(w))
            assert bool((g == w).all()), name
        else:
            np.testing.assert_array_equal(g, np.asarray(w), err_msg=name)


def _int_of(t):
    import torch
    return {2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()]


CASES = op_cases()


@pytest.mark.parametrize("spec,dtype,table,labels", CASES,
                         ids=[f"{s.onnx_type}-{d}-{t}-{lb}" for s, d, t, lb in CASES])
def test_every_op_type_matches_native(rng, spec, dtype, table, labels):
    model, inputs = op_case(spec, rng, dtype, table, labels)
    sess = InferenceSession(model, policy="deterministic")
    assert sess.output_names == tuple(result_names(spec, inputs))
    feed = {i.name: a for i, a in zip(spec.inputs, inputs) if a is not None}
    got = sess.run(feed, like="input")
    assert_identical(got, native(spec, inputs, policy="deterministic"), sess.output_names)


def test_every_forward_op_is_covered():
    assert {(c[0].onnx_type, c[1]) for c in CASES} == {
        (s.onnx_type, d) for s in FORWARD for d in ("float32", "float16", "bfloat16")}
