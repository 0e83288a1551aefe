"""xpuruntime.interop.tensorrt without TensorRT's registry: library_path and load
when the library is missing, module lookup, onnx_for_tensorrt, the info command."""

from __future__ import annotations

import subprocess
import sys

import pytest

from xpuruntime.interop import tensorrt as xt


def test_library_path_says_why_when_missing(monkeypatch):
    monkeypatch.setattr(xt, "_LIB_NAME", "libxpuruntime_trt_missing.so")
    with pytest.raises(FileNotFoundError, match="XPURUNTIME_TENSORRT_ROOT"):
        xt.library_path()
    assert xt.library_path(missing_ok=True) is None
    with pytest.raises(FileNotFoundError):
        xt.load(registry=object())


def test_tensorrt_module_names_both_modules_when_neither_imports(monkeypatch):
    monkeypatch.setattr(xt, "_MODULES", ("no_such_tensorrt", "no_such_tensorrt_lean"))
    with pytest.raises(ImportError, match="tensorrt-lean-cu13"):
        xt.tensorrt_module()


def test_load_reports_a_registry_that_refuses_the_library():
    if xt.library_path(missing_ok=True) is None:
        pytest.skip("built without TensorRT headers")

    class Refusing:
        all_creators = []

        def load_library(self, path):
            return None

    with pytest.raises(RuntimeError, match="did not load"):
        xt.load(Refusing())


def test_info_lists_the_tensorrt_library():
    out = subprocess.run([sys.executable, "-P", "-m", "xpuruntime", "info"], capture_output=True,
                         text=True, check=True).stdout
    line = next(l for l in out.splitlines() if "TensorRT plugin library" in l)
    assert line.endswith(str(xt.library_path(missing_ok=True)))


def test_onnx_for_tensorrt_declares_namespace_and_residual():
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    def rms(name, inputs, outputs):
        return helper.make_node("RMSNorm", inputs, outputs, domain="xpuruntime", name=name)

    then = helper.make_graph([rms("inner", ["x", "w", "r"], ["yi", "hi"])], "then", [],
                             [helper.make_tensor_value_info("yi", TensorProto.FLOAT, None)])
    nodes = [rms("plain", ["x", "w"], ["y1"]), rms("residual", ["x", "w", "r"], ["y2", "h2"]),
             rms("empty_residual", ["x", "w", ""], ["y3"]),
             helper.make_node("Relu", ["x"], ["z"], name="relu"),
             helper.make_node("If", ["c"], ["yi"], name="if", then_branch=then, else_branch=then)]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 4]) for n in ("x", "r")]
    graph = helper.make_graph(nodes, "g", vi + [helper.make_tensor_value_info("w", TensorProto.FLOAT, [4]),
                                                helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y1", TensorProto.FLOAT, [2, 4])])
    model = helper.make_model(graph)
    before = model.SerializeToString()
    out = xt.onnx_for_tensorrt(before)
    assert model.SerializeToString() == before  # the input is not changed

    def attrs(node):
        return {a.name: helper.get_attribute_value(a) for a in node.attribute
                if a.type != onnx.AttributeProto.GRAPH}

    by_name = {n.name: n for n in out.graph.node}
    assert attrs(by_name["plain"]) == {"plugin_namespace": b"xpuruntime"}
    assert attrs(by_name["residual"]) == {"plugin_namespace": b"xpuruntime", "has_residual": 1}
    assert attrs(by_name["empty_residual"]) == {"plugin_namespace": b"xpuruntime"}
    assert attrs(by_name["relu"]) == {}
    inner = by_name["if"].attribute[0].g.node[0]
    assert attrs(inner) == {"plugin_namespace": b"xpuruntime", "has_residual": 1}
