"""ONNX Runtime frontend: the custom-op library (domain ``xpuruntime``) and
helpers to use it in sessions."""

from __future__ import annotations

import pathlib
from typing import Any, Iterator, Optional

DOMAIN = "xpuruntime"
_LIB_NAME = "libxpuruntime_ort.so"


def library_path(missing_ok: bool = False) -> Optional[str]:
    """Absolute path of the ONNX Runtime custom-op library.

    Raises FileNotFoundError (or returns None with ``missing_ok``) when this build
    has none: the ORT headers were not found when it was built.
    """
    from ._library import packaged_library

    return packaged_library(_LIB_NAME, missing_ok,
                            "xpuruntime was built without ONNX Runtime headers; run "
                            "scripts/fetch-ort-headers and reinstall")


def session_options(options: Any = None) -> Any:
    """``onnxruntime.SessionOptions`` (new or given) with xpuruntime's ops registered.

    Sessions made with these check attribute types and values when they are created;
    call ``check_model(model)`` first to also catch misspelled attribute names."""
    from .._extras import require

    ort = require("onnxruntime", "onnx")
    options = options or ort.SessionOptions()
    options.register_custom_ops_library(library_path())
    return options


def inference_session(model: Any, providers: Optional[list] = None, **kwargs: Any) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``model`` (path, bytes or ModelProto) with
    xpuruntime's ops, after ``check_model(model)``."""
    from .._extras import require

    ort = require("onnxruntime", "onnx")
    check_model(model)
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    return ort.InferenceSession(model, sess_options=session_options(kwargs.pop("sess_options", None)),
                                providers=providers or ["CPUExecutionProvider"], **kwargs)


# ONNX IR version written by make_model: the newest that ONNX Runtime 1.20+ loads
# (the onnx package may default to a newer one than the installed runtime reads).
IR_VERSION = 10


def make_model(graph: Any, opset: int = 17) -> Any:
    """An ``onnx.ModelProto`` of ``graph`` importing the default domain (``opset``)
    and the ``xpuruntime`` domain, at an IR version ONNX Runtime can load."""
    from .._extras import require

    onnx = require("onnx", "onnx")
    return onnx.helper.make_model(
        graph, ir_version=IR_VERSION,
        opset_imports=[onnx.helper.make_opsetid("", opset), onnx.helper.make_opsetid(DOMAIN, 1)])


# ---- checking a model's xpuruntime nodes against the op specs ---------------------------------

def _load(model: Any) -> Any:
    """``model`` (path, bytes or ModelProto) as an ``onnx.ModelProto`` (external data not read)."""
    from .._extras import require

    onnx = require("onnx", "onnx")
    if hasattr(model, "graph"):
        return model
    if isinstance(model, (bytes, bytearray)):
        return onnx.load_model_from_string(bytes(model))
    return onnx.load(str(model), load_external_data=False)


def _nodes(graph: Any) -> Iterator[Any]:
    """Every node of ``graph`` and of the subgraphs in its nodes' attributes."""
    for node in graph.node:
        yield node
        for a in node.attribute:
            for g in ([a.g] if a.HasField("g") else []) + list(a.graphs):
                yield from _nodes(g)


_ONNX_SCALARS = {"FLOAT": "f", "INT": "i", "STRING": "s"}
_EXPECTED = {"float": "a float", "int": "an int", "bool": "a bool (or int 0/1)", "string": "a string"}


def _node_attrs(spec: Any, node: Any, label: str) -> dict:
    """The node's attributes as Python values for the core's attribute rule."""
    from .._native import InvalidArgumentError
    from onnx import AttributeProto

    known = {a.onnx_name: a.type for a in spec.attrs}
    known["policy"] = "string"
    out: dict = {}
    for a in node.attribute:
        if a.name in out:
            raise InvalidArgumentError(f"{label}: {spec.op}: attribute '{a.name}' given twice")
        kind = AttributeProto.AttributeType.Name(a.type)
        field = _ONNX_SCALARS.get(kind)
        if field is None and a.name in known:
            raise InvalidArgumentError(
                f"{label}: {spec.op}: attribute '{a.name}' must be {_EXPECTED[known[a.name]]}, "
                f"got ONNX attribute type {kind}")
        value = getattr(a, field) if field else ""  # an unknown name is refused by name
        out[a.name] = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return out


def check_model(model: Any) -> None:
    """Check every node of domain ``xpuruntime`` in ``model`` (path, bytes or ModelProto;
    subgraphs and model-local functions included) against its op spec: a known op type,
    and attribute names, types and values by the core's one attribute rule (ONNX names).

    The custom-op library checks attribute types and values itself when a session
    creates its kernels, but ONNX Runtime's kernel API cannot list a node's attribute
    names, so a misspelled attribute is found only here (``inference_session`` calls
    this; call it yourself before ``onnxruntime.InferenceSession``).

    Raises ``xpuruntime.InvalidArgumentError`` (a ValueError) starting with
    ``"<OpType> node '<name>': "`` and naming the attribute and the expected type.
    """
    from .. import _spec
    from .._native import InvalidArgumentError

    proto = _load(model)
    for g in [proto.graph, *proto.functions]:
        for node in _nodes(g):
            if node.domain != DOMAIN:
                continue
            label = f"{node.op_type} node '{node.name}'"
            try:
                spec = _spec.by_onnx_type(node.op_type)
            except ValueError:
                known = ", ".join(s.onnx_type for s in _spec.all_specs() if s.direction == "forward")
                raise InvalidArgumentError(
                    f"{label}: unknown op type in domain {DOMAIN!r}; known: {known}") from None
            try:
                _spec.normalize_attrs(spec, _node_attrs(spec, node, label), onnx_names=True)
            except InvalidArgumentError as e:
                if str(e).startswith(label):
                    raise
                raise InvalidArgumentError(f"{label}: {e}") from None
