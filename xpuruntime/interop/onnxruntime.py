"""ONNX Runtime frontend: the custom-op library (domain ``xpuruntime``) and
helpers to use it in sessions."""

from __future__ import annotations

import pathlib
from typing import Any, Optional

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
    """``onnxruntime.SessionOptions`` (new or given) with xpuruntime's ops registered."""
    from .._extras import require

    ort = require("onnxruntime", "onnx")
    options = options or ort.SessionOptions()
    options.register_custom_ops_library(library_path())
    return options


def inference_session(model: Any, providers: Optional[list] = None, **kwargs: Any) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``model`` (path, bytes or ModelProto) with xpuruntime's ops."""
    from .._extras import require

    ort = require("onnxruntime", "onnx")
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
