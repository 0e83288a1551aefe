"""TensorRT frontend: the plugin library (one ``IPluginV3`` per op, namespace
``xpuruntime``) and loading it into a TensorRT plugin registry.

The library works with the full ``tensorrt`` package and with the lean runtime
(``tensorrt_lean``, ``pip install tensorrt-lean-cu13``), which has the real plugin
registry but no builder. See docs/tensorrt.md.
"""

from __future__ import annotations

import importlib
import pathlib
from typing import Any, Optional

from ._library import packaged_library

NAMESPACE = "xpuruntime"
VERSION = "1"
_LIB_NAME = "libxpuruntime_trt.so"
_MODULES = ("tensorrt", "tensorrt_lean", "tensorrt_lean_bindings")

# Registries the library was loaded into (by id), with the handle they returned:
# loading twice would register every creator twice.
_loaded: dict[int, Any] = {}


def library_path(missing_ok: bool = False) -> Optional[str]:
    """Absolute path of the TensorRT plugin library (``libxpuruntime_trt.so``).

    Raises FileNotFoundError (or returns None with ``missing_ok``) when this build
    has none: TensorRT's headers were not found when it was built, or it was built
    without CUDA.
    """
    return packaged_library(
        _LIB_NAME, missing_ok,
        "xpuruntime was built without the TensorRT plugin library (it needs TensorRT's headers, "
        "found through XPURUNTIME_TENSORRT_ROOT=<folder with include/NvInferRuntime.h> or the "
        "system include paths, and the CUDA build); set it and reinstall")


def tensorrt_module() -> Any:
    """The importable TensorRT Python module: ``tensorrt``, else ``tensorrt_lean`` (or its
    bindings wheel alone, ``tensorrt_lean_bindings``).

    Raises ImportError naming both when neither is installed.
    """
    errors = []
    for name in _MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        if hasattr(module, "get_plugin_registry"):
            return module
        errors.append(f"{name}: has no get_plugin_registry")
    raise ImportError("xpuruntime: TensorRT is not importable; install tensorrt or the lean runtime "
                      "(`pip install tensorrt-lean-cu13`): " + "; ".join(errors))


def load(registry: Any = None) -> dict[str, Any]:
    """Loads the plugin library into ``registry`` (default: the plugin registry of
    ``tensorrt`` or ``tensorrt_lean``, whichever is importable) and returns its
    creators, ``{plugin name (the ONNX op type): IPluginCreatorV3One}``.

    Loading into the same registry again returns the same creators. Raises
    FileNotFoundError when the library was not built and RuntimeError when the
    registry refuses it.
    """
    path = library_path()
    if registry is None:
        registry = tensorrt_module().get_plugin_registry()
    if id(registry) not in _loaded:
        handle = registry.load_library(path)
        if handle is None:
            raise RuntimeError(f"the TensorRT plugin registry did not load {path} (see TensorRT's log)")
        _loaded[id(registry)] = (registry, handle)
    return creators(registry)


def creators(registry: Any) -> dict[str, Any]:
    """The xpuruntime creators registered in ``registry``, by plugin name."""
    return {c.name: c for c in registry.all_creators
            if c.plugin_namespace == NAMESPACE and c.plugin_version == VERSION}


def onnx_for_tensorrt(model: Any) -> Any:
    """A copy of the ``onnx.ModelProto`` ``model`` for TensorRT's ONNX parser.

    Every ``xpuruntime``-domain node (in the graph, its subgraphs and local
    functions) gets ``plugin_namespace="xpuruntime"`` (parsers that do not fall back
    to the node's domain look plugins up by that attribute) and, where it is given an
    optional input that adds outputs, the plugin field declaring it (``has_residual=1``
    on an ``RMSNorm`` with three inputs): TensorRT fixes a plugin's outputs when the
    plugin is created. The model itself is not changed, so it still runs unchanged in
    ONNX Runtime. Accepts a ModelProto, bytes or a path; returns a ModelProto.
    """
    from .._extras import require
    from .. import _spec

    onnx = require("onnx", "onnx")
    if isinstance(model, (str, pathlib.Path)):
        model = onnx.load(str(model))
    elif isinstance(model, (bytes, bytearray)):
        model = onnx.load_from_string(bytes(model))
    out = onnx.ModelProto()
    out.CopyFrom(model)

    def visit(nodes: Any) -> None:
        for node in nodes:
            for attr in node.attribute:  # subgraphs of If / Loop / Scan
                for g in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    visit(g.node)
            if node.domain != NAMESPACE:
                continue
            have = {a.name for a in node.attribute}
            if "plugin_namespace" not in have:
                node.attribute.append(onnx.helper.make_attribute("plugin_namespace", NAMESPACE))
            try:
                spec = _spec.by_onnx_type(node.op_type)
            except ValueError:
                continue  # the parser will name the unknown op type
            given = [i < len(node.input) and node.input[i] != "" for i in range(len(spec.inputs))]
            for i in sorted({o.present_if for o in spec.outputs
                             if o.use == "result" and o.present_if is not None}):
                field = f"has_{spec.inputs[i].name}"
                if given[i] and field not in have:
                    node.attribute.append(onnx.helper.make_attribute(field, 1))

    visit(out.graph.node)
    for function in out.functions:
        visit(function.node)
    return out
