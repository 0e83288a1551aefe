"""Hypothesis strategies for the runtime API: short programs over buffers, views,
fills, limits, arrays and streams, with valid and hostile arguments.

A case is {"frontend": "runtime", "program": [step, ...], "seed", "expect", "names",
"why"}; each step is [verb, args...] with encoded arguments ({"t": tag, "v": value},
as _cases.enc). _runtime_run.py runs a program against a model of what each step must
do and judges every step.
"""

from __future__ import annotations

from hypothesis import strategies as st

from _cases import enc

KiB = 1 << 10

SIZES_VALID = st.one_of(st.integers(0, 64 * KiB).map(lambda n: enc("int", n)),
                        st.integers(0, 4 * KiB).map(lambda n: enc("np.int64", n)))
SIZES_BAD = st.sampled_from([
    enc("bool", True), enc("bool", False), enc("float", 2.0), enc("float", 2.7),
    enc("int", -1), enc("int", -2**63), enc("str", "8"), enc("none", None), enc("list", [8]),
])
SIZES_HUGE = st.sampled_from([enc("int", 2**50), enc("int", 2**62), enc("int", 2**63),
                              enc("int", 2**70), enc("int", 2**64 - 1)])
BYTES_VALID = st.integers(0, 255).map(lambda v: enc("int", v))
BYTES_BAD = st.sampled_from([enc("int", 256), enc("int", -1), enc("int", 2**70), enc("bool", True),
                             enc("float", 1.0), enc("str", "a"), enc("none", None)])
SHAPES_VALID = st.lists(st.integers(0, 6), min_size=0, max_size=4).map(lambda s: enc("list", s))
SHAPES_BAD = st.sampled_from([
    enc("list", [2.7, 3]), enc("list", [-1, 3]), enc("list", [True, 3]), enc("str", "3"),
    enc("list", ["a"]), enc("none", None), enc("float", 3.0),
])
SHAPES_HUGE = st.sampled_from([enc("list", [2**40, 2**40]), enc("list", [2**62, 4]),
                               enc("list", [2**63]), enc("list", [2**31, 2**31, 2**31])])
DTYPES_VALID = st.sampled_from(["float32", "float16", "bfloat16", "int32", "uint8", "int64",
                                "bool", "float64"]).map(lambda d: enc("str", d))
DTYPES_BAD = st.sampled_from([enc("str", "invalid"), enc("int", 3), enc("str", "float8")])


@st.composite
def step(draw, n_buffers: int, n_views: int, n_streams: int):
    """One step; indices refer to buffers / views / streams made by earlier steps (an
    index past the end means the step is skipped by the runner)."""
    verb = draw(st.sampled_from(["alloc", "alloc", "alloc", "fill", "fill", "free", "view",
                                 "view", "drop_view", "check", "limit", "empty", "enter",
                                 "exit", "pinned"]))
    b = draw(st.integers(0, max(0, n_buffers - 1)))
    if verb in ("alloc", "pinned"):
        size = draw(st.one_of(SIZES_VALID, SIZES_VALID, SIZES_BAD, SIZES_HUGE))
        return [verb, size]
    if verb == "fill":
        return [verb, b, draw(st.one_of(BYTES_VALID, BYTES_VALID, BYTES_BAD))]
    if verb in ("free", "view"):
        return [verb, b]
    if verb == "drop_view":
        return [verb, draw(st.integers(0, max(0, n_views - 1)))]
    if verb == "limit":
        value = draw(st.one_of(st.integers(1, 64 * KiB).map(lambda n: enc("int", n)),
                               SIZES_BAD, st.sampled_from([enc("int", 2**63), enc("int", 2**70)])))
        return [verb, value, draw(st.integers(1, 256 * KiB))]
    if verb == "empty":
        shape = draw(st.one_of(SHAPES_VALID, SHAPES_VALID, SHAPES_BAD, SHAPES_HUGE))
        return [verb, shape, draw(st.one_of(DTYPES_VALID, DTYPES_VALID, DTYPES_BAD))]
    if verb == "enter":
        return [verb]
    if verb == "exit":
        return [verb, draw(st.integers(0, max(0, n_streams)))]
    return [verb]


@st.composite
def runtime_case(draw):
    n = draw(st.integers(3, 25))
    program, buffers, views, streams = [], 0, 0, 0
    for _ in range(n):
        s = draw(step(buffers, views, streams))
        program.append(s)
        buffers += s[0] in ("alloc", "pinned")
        views += s[0] == "view"
        streams += s[0] == "enter"
    return {"frontend": "runtime", "op": "runtime", "direction": "-", "program": program,
            "seed": draw(st.integers(0, 2**31 - 1)), "expect": "valid", "names": [],
            "why": "each step judged by the runner"}
