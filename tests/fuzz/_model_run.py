"""Runs one model-file case (see _model_cases.py) in the child: builds the valid one-node
model, mutates it, and gives it to ``xpuruntime.InferenceSession`` (ONNX Runtime backend)
as bytes or as a file. The case passes when the session refuses the model with an
xpuruntime error naming InferenceSession, the node or its op type, or when it accepts it
and a run with inputs of the model's declared types and shapes either gives outputs or
such an error; when the mutation left the graph as it was, the outputs must be the
valid model's, bit for bit."""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np

import frontends
import xpuruntime
from _spec_examples import example
from _verdict import REFUSED, BadError, FalseRefusal, Wrong
from xpuruntime import _spec

NODE = "node0"


def base_model(case: dict):
    """(valid ModelProto, feeds by input name) of the case's op."""
    spec = _spec.get(case["op"])
    rng = np.random.default_rng(case["seed"])
    inputs, attrs = example(spec.op, (case["rows"],), optional=bool(rng.integers(0, 2)),
                            seed=case["seed"] % 1000)
    arrays = [None if a is None else a.astype(case["dtype"]) if a.dtype.kind == "f" else a
              for a in inputs]
    model = frontends.node_model(spec, arrays, frontends.onnx_attributes(spec, attrs), name=NODE)
    if case["dynamic"]:  # the leading axis of rows and labels as a named dimension
        roles = {s.name: s.role for s in spec.inputs}
        for vi in model.graph.input:
            if roles[vi.name] in ("rows", "labels") and vi.type.tensor_type.shape.dim:
                vi.type.tensor_type.shape.dim[0].dim_param = "B"
    feeds = {s.name: a for s, a in zip(spec.inputs, arrays) if a is not None}
    return model, feeds


def _proto_mutation(model, m: dict) -> None:
    from onnx import helper
    g, node, kind = model.graph, model.graph.node[0], m["kind"]
    if kind == "op_type":
        node.op_type = m["value"]
    elif kind == "domain":
        node.domain = m["value"]
    elif kind == "drop_input":
        node.input[0] = ""
    elif kind == "unknown_input":
        node.input[0] = "nowhere"
    elif kind == "graph_input_missing":
        del g.input[0]
    elif kind == "elem_type":
        g.input[0].type.tensor_type.elem_type = m["value"]
    elif kind == "dim":
        dims = g.input[0].type.tensor_type.shape.dim
        d = dims[m["axis"] % len(dims)] if len(dims) else None
        if d is not None:
            if isinstance(m["value"], str):
                d.dim_param = m["value"]
            elif m["value"] < 2**63:
                d.dim_value = m["value"]
    elif kind == "no_outputs":
        del g.output[:]
    elif kind == "rename_output":
        node.output[0] = "elsewhere"
    elif kind == "opset":
        for o in model.opset_import:
            o.version = m["value"]
    elif kind == "ir_version":
        model.ir_version = max(0, m["value"])
    elif kind == "duplicate_node":
        g.node.append(node)
    elif kind == "unknown_attribute":
        node.attribute.append(helper.make_attribute(m["name"], 1.0))


def mutated(model, m: dict) -> bytes:
    """The model's bytes after the mutation ``m``."""
    kind = m["kind"]
    if kind not in ("truncate", "flip", "overwrite", "insert", "delete", "repeat", "prefix",
                    "random"):
        copy = type(model)()
        copy.CopyFrom(model)
        _proto_mutation(copy, m)
        return copy.SerializeToString()
    data = bytearray(model.SerializeToString())
    at = min(len(data) - 1, int(m.get("at", 0) * len(data)))
    if kind == "truncate":
        return bytes(data[:at])
    if kind == "flip":
        for frac, bit in m["bits"]:
            data[min(len(data) - 1, int(frac * len(data)))] ^= 1 << bit
    elif kind == "overwrite":
        b = bytes.fromhex(m["bytes"])
        data[at:at + len(b)] = b
    elif kind == "insert":
        data[at:at] = bytes.fromhex(m["bytes"])
    elif kind == "delete":
        del data[at:at + m["length"]]
    elif kind == "repeat":
        data[at:at] = data[at:at + m["length"]]
    elif kind == "prefix":
        data[0:0] = bytes.fromhex(m["bytes"])
    elif kind == "random":
        return bytes.fromhex(m["bytes"])
    return bytes(data)


def _names_the_session(text: str, spec) -> bool:
    words = ("InferenceSession", NODE, spec.onnx_type, spec.op)
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(w)}(?![A-Za-z0-9_])", text) for w in words)


def _judge_error(exc: BaseException, spec, what: str) -> BadError | None:
    msg = f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, xpuruntime.Error):
        return BadError(f"{what}: not an xpuruntime error: {msg[:1500]}")
    if not _names_the_session(str(exc), spec):
        return BadError(f"{what}: the message names neither InferenceSession nor the node: "
                        f"{msg[:1500]}")
    return None


def _feed(info, given: dict, rng):
    """An input for a session input: the valid model's where it fits, else random data of
    the declared dtype and shape (unknown dimensions 2); None where numpy has no dtype."""
    a = given.get(info.name)
    dims = [2 if not isinstance(d, int) or d < 0 else d for d in (info.shape or ())]
    if a is not None and (info.dtype in (None, a.dtype.name)) and (
            info.shape is None or len(info.shape) == a.ndim):
        return a
    dtype = info.dtype or "float32"
    if dtype in ("bfloat16", "complex64", "complex128") or "string" in dtype:
        return None
    if np.prod(dims, dtype=np.float64) > 1 << 20:
        return None  # (a mutated dimension of 2**40: nothing to run)
    return rng.standard_normal(dims).astype(dtype) if np.dtype(dtype).kind == "f" else \
        rng.integers(0, 2, dims).astype(dtype)


def run(case: dict) -> str | None:
    """None (it ran) or REFUSED (a right error) when the session did what the module
    docstring says, else the problem."""
    from xpuruntime import InferenceSession
    spec = _spec.get(case["op"])
    model, feeds = base_model(case)
    expected = InferenceSession(model, backend="onnxruntime").run(feeds, like="numpy")
    data = mutated(model, case["mutation"])
    path = None
    try:
        if case["source"] == "file":
            fd, path = tempfile.mkstemp(suffix=".onnx")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        try:
            session = InferenceSession(path or data, backend="onnxruntime")
        except Exception as exc:  # noqa: BLE001 - judged
            return _judge_error(exc, spec, "InferenceSession(model)") or REFUSED
        same = _same_graph(data, model)
        rng = np.random.default_rng(case["seed"])
        inputs = {t.name: _feed(t, feeds if same else {}, rng) for t in session.inputs}
        if any(a is None for a in inputs.values()):
            return None  # accepted; no input numpy can make to run it with
        try:
            got = session.run(inputs, like="numpy")
        except Exception as exc:  # noqa: BLE001 - judged
            if same:
                return FalseRefusal(f"the unchanged graph failed to run: {type(exc).__name__}: "
                                    f"{str(exc)[:1500]}")
            return _judge_error(exc, spec, "InferenceSession.run") or REFUSED
        if same:
            for name, g, e in zip(session.output_names, got, expected):
                if g.dtype != e.dtype or g.shape != e.shape or g.tobytes() != e.tobytes():
                    return Wrong(f"output {name!r} of the unchanged graph differs from the valid "
                                 f"model's ({g.dtype}{list(g.shape)} vs {e.dtype}{list(e.shape)})")
        return None
    finally:
        if path:
            os.unlink(path)


def _same_graph(data: bytes, model) -> bool:
    """Whether ``data`` parses to a model with the valid model's graph (the mutation
    touched only the version fields, or nothing the parser keeps)."""
    import onnx
    try:
        parsed = onnx.load_model_from_string(data)
    except Exception:  # noqa: BLE001
        return False
    return parsed.graph == model.graph and list(parsed.opset_import) == list(model.opset_import)
