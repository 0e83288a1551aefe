"""Counts the collected test cases per op and per frontend (the table issue 11 asks
for before and after moving the per-op tests into tests/ops).

    python -P scripts/count_test_cases.py [--json FILE] [--ids FILE] [--passed JUNIT_XML]
                                          [pytest args, default: tests]

``--passed``: count only the cases that passed in the run that wrote that JUnit XML
(``pytest --junitxml``), i.e. what actually ran here rather than what was collected.

A case's ops: the op of ``tests/ops/test_<op>.py``; else the op names (and ONNX op
types) in the test's name and parameters, longest first (``topk_softmax`` is not
also ``softmax``); else a few multi-op tests named below; else the file name. A
case counts once for every op it covers. Its frontend: the ``frontend`` parameter;
else a ``test_<frontend>_`` prefix; else ``xla``/``ffi``/``ort`` in the name; else
the file name; else ``native`` inside tests/ops. ``gpu``: cases carrying the gpu mark.
"""

from __future__ import annotations

import collections
import json
import pathlib
import re
import sys

import pytest

from xpuruntime import _spec

OPS = tuple(_spec.op_names()) + ("fused_linear_cross_entropy",)
ONNX = {s.onnx_type: s.op for s in _spec.all_specs() if s.direction == _spec.FORWARD}
FRONTENDS = ("native", "jax", "torch", "onnxruntime", "tensorrt", "reference")
PREFIXES = {"native": "native", "jax": "jax", "xla": "jax", "torch": "torch", "ort": "onnxruntime",
            "onnxruntime": "onnxruntime", "tensorrt": "tensorrt", "trt": "tensorrt",
            "reference": "reference"}
# Tests that cover several ops without naming them (most of the old layout).
MULTI = {
    "test_native_softmax_glu.py::test_policies_agree_and_are_deterministic": {"softmax", "swiglu", "geglu"},
    "test_native_softmax_glu.py::test_kernels_registered": {"softmax", "swiglu", "geglu"},
    "test_native_softmax_glu.py::test_policy_scope_and_unknown_policy": {"softmax", "swiglu"},
    "test_native_rope_ce.py::test_kernels_registered": {"rope", "cross_entropy"},
    "test_native_rope_ce.py::test_ffi_targets_listed": {"rope", "cross_entropy"},
    "test_frontends_rope_ce.py::test_torch_opcheck_and_compile": {"rope", "cross_entropy"},
    "test_frontends_rope_ce.py::test_torch_errors": {"rope", "cross_entropy"},
    "test_frontends_rope_ce.py::test_jax_errors": {"rope", "cross_entropy"},
    "test_jax_ops.py::test_trace_time_errors": {"layer_norm", "swiglu", "geglu", "softmax"},
    "test_torch_ops.py::test_compile_fullgraph_chain": {"layer_norm", "swiglu", "softmax"},
    "test_torch_ops.py::test_errors": {"layer_norm", "swiglu", "softmax"},
    "test_torch_registration.py::test_compile_fullgraph_chain": {"layer_norm", "swiglu", "softmax"},
}


def _find(text: str, names, case_sensitive: bool) -> tuple[set, str]:
    found = set()
    for name in sorted(names, key=len, reverse=True):
        pattern = rf"(?<![A-Za-z]){re.escape(name)}(?![a-z])"
        if re.search(pattern, text, 0 if case_sensitive else re.IGNORECASE):
            found.add(names[name] if isinstance(names, dict) else name)
            text = re.sub(pattern, " ", text)
    return found, text


def ops_of(path: str, name: str) -> set:
    p = pathlib.PurePosixPath(path)
    if p.parent.name == "ops" and p.stem[5:] in OPS:
        return {p.stem[5:]}
    found, rest = _find(name, OPS, False)
    more, _ = _find(rest, ONNX, True)
    found |= more
    if found:
        return found
    key = f"{p.name}::{name.split('[')[0]}"
    if key in MULTI:
        return MULTI[key]
    found, _ = _find(p.stem, OPS, False)
    return found or {"(no op)"}


def frontend_of(path: str, name: str, params: dict) -> str:
    for key in ("frontend", "grad_frontend"):
        if params.get(key) in FRONTENDS:
            return params[key]
    base = name.split("[")[0]
    m = re.match(r"test_([a-z]+)_", base)
    if m and m.group(1) in PREFIXES:
        return PREFIXES[m.group(1)]
    if "xla" in base or "ffi" in base:
        return "jax"
    if "onnxruntime" in base or "_ort" in base:
        return "onnxruntime"
    stem = pathlib.PurePosixPath(path).stem
    if "fused_linear" in stem:  # a torch function
        return "torch"
    for word in ("native", "jax", "torch", "onnxruntime", "tensorrt"):
        if word in stem:
            return word
    if stem == "test_op_spec":
        return "native"
    if pathlib.PurePosixPath(path).parent.name == "ops":
        return "native"
    return "runtime/other"


class Collector:
    def __init__(self):
        self.cases = []

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items):
        for item in items:
            path, _, name = item.nodeid.partition("::")
            cs = getattr(item, "callspec", None)
            params = {k: str(v) for k, v in cs.params.items()} if cs else {}
            self.cases.append({"id": item.nodeid, "ops": sorted(ops_of(path, name)),
                               "frontend": frontend_of(path, name, params),
                               "gpu": item.get_closest_marker("gpu") is not None})


def table(cases) -> str:
    counts = collections.Counter()
    gpu = collections.Counter()
    columns = set()
    for c in cases:
        for op in c["ops"]:
            counts[op, c["frontend"]] += 1
            gpu[op, c["frontend"]] += c["gpu"]
            columns.add(c["frontend"])
    cols = [f for f in FRONTENDS + ("runtime/other",) if f in columns]
    rows = [op for op in OPS + ("(no op)",) if any(counts[op, f] for f in cols)]
    width = max(len(r) for r in rows + ["op"])
    lines = ["cells: cases (of which gpu-marked)", f"{'op':<{width}} " + " ".join(f"{c:>14}" for c in cols)]
    for op in rows:
        cells = [f"{counts[op, f]} ({gpu[op, f]})" if counts[op, f] else "-" for f in cols]
        lines.append(f"{op:<{width}} " + " ".join(f"{c:>14}" for c in cells))
    lines.append(f"total cases: {len(cases)} ({sum(c['gpu'] for c in cases)} gpu-marked)")
    return "\n".join(lines)


def passed_ids(junit_xml: str) -> set:
    """Node ids of the cases that passed in a pytest --junitxml report."""
    import xml.etree.ElementTree as ET
    ids = set()
    for case in ET.parse(junit_xml).iter("testcase"):
        if any(child.tag in ("skipped", "failure", "error") for child in case):
            continue
        ids.add(case.get("classname").replace(".", "/") + ".py::" + case.get("name"))
    return ids


def main(argv):
    out_json = out_ids = junit = None
    args = []
    it = iter(argv)
    for a in it:
        if a == "--json":
            out_json = next(it)
        elif a == "--ids":
            out_ids = next(it)
        elif a == "--passed":
            junit = next(it)
        else:
            args.append(a)
    collector = Collector()
    rc = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", *(args or ["tests"])],
                     plugins=[collector])
    cases = collector.cases
    if junit:
        ran = passed_ids(junit)
        cases = [c for c in cases if c["id"] in ran]
        print(f"passed in {junit}:")
    print(table(cases))
    if out_json:
        pathlib.Path(out_json).write_text(json.dumps(cases, indent=0))
    if out_ids:
        pathlib.Path(out_ids).write_text("".join(c["id"] + "\n" for c in cases))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
