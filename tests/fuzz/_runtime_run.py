"""Runs one runtime-API program (see _runtime_cases.py) on the CPU device against a
model of what each step must do: sizes, fills and shapes are honoured exactly; bad
arguments raise a project error naming the call and the argument; requests beyond
any memory or the pool's limit raise OutOfMemoryError; a freed buffer refuses every
use, and views (Arrays and their DLPack consumers) keep their memory, never seeing
another allocation's bytes."""

from __future__ import annotations

import gc
import math
import re

import numpy as np

import xpuruntime as xr
from _verdict import BadError, FalseRefusal, Wrong
from xpuruntime import memory


def decode(v: dict):
    t, x = v["t"], v["v"]
    if t == "none":
        return None
    if t == "list":
        return list(x)
    if t.startswith("np."):
        return getattr(np, t[3:])(x)
    return x


def _word(msg: str, word: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", msg) is not None


def _project_error(exc: BaseException) -> bool:
    return isinstance(exc, (xr.Error, ValueError))


class Expect:
    """What one step must do: succeed ("ok"), raise a project error naming ``call`` and
    one of ``args`` ("error"), raise OutOfMemoryError ("oom"), or either of "ok" and a
    clear error ("either")."""

    def __init__(self, kind: str, call: str = "", args: tuple = (), alt_oom: bool = False):
        self.kind, self.call, self.args, self.alt_oom = kind, call, args, alt_oom

    def judge(self, exc: BaseException | None) -> str | None:
        if exc is None:
            if self.kind in ("error", "oom"):
                want = "OutOfMemoryError" if self.kind == "oom" else "an error"
                return Wrong(f"expected {want}, got none")
            return None
        msg = f"{type(exc).__name__}: {exc}"
        if self.kind == "ok":
            return FalseRefusal(f"raised on a valid step: {msg[:800]}")
        if self.kind == "oom" or (self.alt_oom and isinstance(exc, xr.OutOfMemoryError)):
            if not isinstance(exc, xr.OutOfMemoryError):
                return BadError(f"expected OutOfMemoryError, got {msg[:800]}")
            return None  # the type names the problem (the pool's message gives the sizes)
        if not _project_error(exc):
            return BadError(f"not a project error type: {msg[:800]}")
        text = str(exc)
        if not _word(text, self.call):
            return BadError(f"message does not name {self.call!r}: {msg[:800]}")
        if self.args and not any(_word(text, a) for a in self.args):
            return BadError(f"message names none of {list(self.args)}: {msg[:800]}")
        return None


def _size_kind(v: dict) -> str:
    """'ok', 'bad' or 'huge' for an encoded size."""
    x = decode(v)
    if v["t"] in ("int", "np.int64") and isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        if x < 0:
            return "bad"
        return "huge" if x >= 2**45 else "ok"
    return "bad"


def _byte_ok(v: dict) -> bool:
    return v["t"] == "int" and 0 <= v["v"] <= 255


def _shape_kind(v: dict) -> str:
    x = decode(v)
    if v["t"] != "list" or not all(type(d) is int for d in x):
        return "bad"
    if any(d < 0 for d in x):
        return "bad"
    return "huge" if math.prod(x) >= 2**45 else "ok"


_ITEMSIZE = {"float32": 4, "float16": 2, "bfloat16": 2, "int32": 4, "uint8": 1, "int64": 8,
             "bool": 1, "float64": 8}


class Program:
    def __init__(self):
        self.buffers: list[dict] = []   # {"buf", "size", "freed", "value"}
        self.views: list[dict] = []     # {"array", "np", "buffer"}
        self.made: list = []            # every Stream made
        self.stack: list = []           # streams entered, innermost last

    # ---- steps: each returns (Expect, thunk) --------------------------------------------------
    def alloc(self, size, pinned: bool = False):
        call = "allocate_pinned" if pinned else "allocate"
        kind = _size_kind(size)
        n = decode(size)
        fn = memory.allocate_pinned if pinned else (lambda k: memory.allocate(k, device="cpu"))

        def run():
            b = fn(n)
            if b.nbytes != int(n):
                raise AssertionError(f"{call}({n!r}) gave {b.nbytes} bytes")
            self.buffers.append({"buf": b, "size": int(n), "freed": False, "value": None})
        if kind == "ok":
            return Expect("ok"), run
        if kind == "huge":  # beyond any memory: out of memory, or a size error
            return Expect("error", call, ("nbytes", "size"), alt_oom=True), run
        return Expect("error", call, ("nbytes", "size")), run

    def fill(self, i, value):
        if i >= len(self.buffers):
            return None
        rec = self.buffers[i]
        v = decode(value)

        def run():
            rec["buf"].fill(v)
            bad = rec["buf"].count_not_equal(v)
            if bad:
                raise AssertionError(f"fill({v}) left {bad} bytes different")
            rec["value"] = v
        if rec["freed"]:
            return Expect("error", "fill", ("freed",)), run
        if not _byte_ok(value):
            return Expect("error", "fill", ("value",)), run
        return Expect("ok"), run

    def free(self, i):
        if i >= len(self.buffers):
            return None
        rec = self.buffers[i]

        def run():
            rec["buf"].free()
            rec["freed"] = True
        return (Expect("error", "free", ("freed",)) if rec["freed"] else Expect("ok")), run

    def view(self, i):
        if i >= len(self.buffers):
            return None
        rec = self.buffers[i]

        def run():
            b = rec["buf"]
            arr = xr.Array(b, b.ptr, (rec["size"],), "uint8", None, xr.Device("cpu"), None)
            self.views.append({"array": arr, "np": np.from_dlpack(arr), "buffer": i})
        if rec["freed"]:
            return Expect("error", "Buffer", ("freed",)), run
        return Expect("ok"), run

    def drop_view(self, j):
        if j >= len(self.views) or self.views[j] is None:
            return None

        def run():
            self.views[j] = None
            gc.collect()
        return Expect("ok"), run

    def limit(self, value, probe):
        v = decode(value)

        def run():
            memory.set_limit(v, device="cpu")
            try:
                try:
                    # Beyond the limit and beyond any block the pool may have cached (a
                    # cached block may serve a request even above the limit).
                    memory.allocate(int(v) + probe + (256 << 20), device="cpu")
                except xr.OutOfMemoryError as exc:
                    if not _word(str(exc), "allocate"):
                        raise AssertionError(f"OutOfMemoryError does not name 'allocate': {exc}")
                else:
                    if int(v) < 2**62:
                        raise AssertionError(f"allocate({int(v) + probe + (256 << 20)}) beyond "
                                             f"set_limit({v}) succeeded")
            finally:
                memory.set_limit(0, device="cpu")
        if value["t"] == "int" and value["v"] >= 2**63:
            return Expect("either", "set_limit", ("nbytes", "limit")), run
        if _size_kind(value) != "ok":
            return Expect("error", "set_limit", ("nbytes", "limit", "size")), run
        return Expect("ok"), run

    def empty(self, shape, dtype):
        s, d = decode(shape), decode(dtype)
        kind = _shape_kind(shape)
        dtype_ok = dtype["t"] == "str" and d in _ITEMSIZE

        def run():
            a = xr.empty(s, d, device="cpu")
            if a.shape != tuple(s) or a.dtype != d or a.nbytes != math.prod(s) * _ITEMSIZE[d]:
                raise AssertionError(f"empty({s}, {d}) gave {a.shape} {a.dtype} {a.nbytes} bytes")
        if kind == "bad":
            return Expect("error", "empty", ("shape",)), run
        if not dtype_ok:
            return Expect("error", "empty", ("dtype",)), run
        if kind == "huge":
            return Expect("error", "empty", ("shape",), alt_oom=True), run
        return Expect("ok"), run

    def enter(self):
        def run():
            s = xr.Stream(device="cpu")
            s.__enter__()
            self.made.append(s)
            self.stack.append(s)
        return Expect("ok"), run

    def exit(self, k):
        top = self.stack[-1] if self.stack else None
        s = self.made[k] if k < len(self.made) else None

        def run():
            target = s if s is not None else xr.Stream(device="cpu")
            target.__exit__(None, None, None)
            self.stack.pop()
        if s is not None and s is top:
            return Expect("ok"), run
        return Expect("error", "__exit__", ("Stream", "stream", "__enter__")), run

    # ---- the model's invariant ---------------------------------------------------------------
    def check_views(self) -> str | None:
        for j, v in enumerate(self.views):
            if v is None:
                continue
            want = self.buffers[v["buffer"]]["value"]
            if want is not None and v["np"].size and not np.all(v["np"] == want):
                bad = int(np.count_nonzero(v["np"] != want))
                return Wrong(f"view {j} of buffer {v['buffer']} reads {bad} bytes that are not its "
                             f"fill value {want} (memory reused under a live view)")
        return None

    def finish(self) -> None:
        while self.stack:
            self.stack.pop().__exit__(None, None, None)
        memory.set_limit(0, device="cpu")


def run(case: dict) -> str | None:
    """None when every step of the program did what the model says, else the first problem
    (a _verdict.Problem: its class says the kind)."""
    p = Program()
    try:
        for k, st in enumerate(case["program"]):
            verb, args = st[0], st[1:]
            made = {"alloc": lambda: p.alloc(*args), "pinned": lambda: p.alloc(*args, pinned=True),
                    "fill": lambda: p.fill(*args), "free": lambda: p.free(*args),
                    "view": lambda: p.view(*args), "drop_view": lambda: p.drop_view(*args),
                    "check": lambda: None, "limit": lambda: p.limit(*args),
                    "empty": lambda: p.empty(*args), "enter": lambda: p.enter(),
                    "exit": lambda: p.exit(*args)}[verb]()
            if made is not None:
                expect, thunk = made
                exc = None
                try:
                    thunk()
                except AssertionError as e:  # a wrong size, fill or shape
                    return Wrong(f"step {k} {st}: {e}")
                except Exception as e:  # noqa: BLE001 - judged
                    exc = e
                problem = expect.judge(exc)
                if problem:
                    return type(problem)(f"step {k} {st}: {problem}")
            problem = p.check_views()
            if problem:
                return type(problem)(f"step {k} {st}: {problem}")
    finally:
        try:
            p.finish()
        except Exception:  # noqa: BLE001 - a broken stream stack was already reported
            pass
    return None
