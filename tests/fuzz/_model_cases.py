"""Hypothesis strategies for model files given to ``xpuruntime.InferenceSession``: a valid
one-node model of an op of the specs, then one mutation of its bytes (truncated, bits
flipped, bytes overwritten, inserted, deleted or repeated, garbage before it, random bytes
instead) or of its protobuf (op type, domain, inputs, element types, dimensions, outputs,
opset and IR versions, a duplicated node, an unknown attribute), handed over as bytes or
as a file.

A case is {"frontend": "session", "op", "dtype", "rows", "dynamic", "mutation": {"kind",
...}, "source": "bytes" | "file", "seed", "expect": "either", "names", "why"};
_model_run.py builds and judges it (a clear error or a session that runs; the model's
own answer when the mutation left it the same model).
"""

from __future__ import annotations

from hypothesis import strategies as st

from xpuruntime import _spec

BYTE_KINDS = ("truncate", "flip", "overwrite", "insert", "delete", "repeat", "prefix", "random")
PROTO_KINDS = ("op_type", "domain", "drop_input", "unknown_input", "elem_type", "dim",
               "no_outputs", "rename_output", "opset", "ir_version", "duplicate_node",
               "unknown_attribute", "graph_input_missing")
FRACTION = st.floats(0.0, 1.0, allow_nan=False)


def _hex(draw, lo: int, hi: int) -> str:
    return draw(st.binary(min_size=lo, max_size=hi)).hex()


@st.composite
def mutation(draw) -> dict:
    kind = draw(st.sampled_from(BYTE_KINDS + PROTO_KINDS))
    m = {"kind": kind}
    if kind == "truncate":
        m["at"] = draw(FRACTION)
    elif kind == "flip":
        m["bits"] = draw(st.lists(st.tuples(FRACTION, st.integers(0, 7)), min_size=1, max_size=8))
    elif kind in ("overwrite", "insert"):
        m["at"], m["bytes"] = draw(FRACTION), _hex(draw, 1, 16)
    elif kind in ("delete", "repeat"):
        m["at"], m["length"] = draw(FRACTION), draw(st.integers(1, 64))
    elif kind == "prefix":
        m["bytes"] = _hex(draw, 1, 8)
    elif kind == "random":
        m["bytes"] = _hex(draw, 1, 512)
    elif kind == "op_type":
        m["value"] = draw(st.one_of(st.sampled_from([s.onnx_type for s in _spec.all_specs()]),
                                    st.text(max_size=12)))
    elif kind == "domain":
        m["value"] = draw(st.sampled_from(["", "ai.onnx", "xpuruntime.x", "XPURUNTIME", "com.microsoft"]))
    elif kind == "elem_type":
        m["value"] = draw(st.integers(0, 30))
    elif kind == "dim":
        m["value"] = draw(st.sampled_from([-1, 0, 1, 2**31, 2**40, "T", ""]))
        m["axis"] = draw(st.integers(0, 3))
    elif kind in ("opset", "ir_version"):
        m["value"] = draw(st.sampled_from([0, 1, 7, 99, 2**31 - 1, -1]))
    elif kind == "unknown_attribute":
        m["name"] = draw(st.sampled_from(["bogus", "", "epsilon", "Scale", "policy "]))
    return m


@st.composite
def model_case(draw):
    """One model-file case (see the module docstring)."""
    spec = draw(st.sampled_from([s for s in _spec.all_specs() if s.direction == _spec.FORWARD]))
    m = draw(mutation())
    return {"frontend": "session", "op": spec.op, "direction": "forward",
            "dtype": draw(st.sampled_from(["float32", "float16"])),
            "rows": draw(st.integers(1, 4)), "dynamic": draw(st.booleans()),
            "mutation": m, "source": draw(st.sampled_from(["bytes", "file"])),
            "seed": draw(st.integers(0, 2**31 - 1)), "expect": "either",
            "names": ["InferenceSession"], "why": f"model mutated: {m['kind']}"}
