"""The ONNX Runtime backend of ``xpuruntime.InferenceSession``: an ORT session with
xpuruntime's custom-op library, IO binding of device pointers (zero-copy), outputs from
xpuruntime's pool, the CUDA provider on the session's stream, strict placement and the
placement record."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import weakref
from typing import Any, Callable

from ._native import Error, InvalidArgumentError, InvalidArgumentTypeError, KernelNotFoundError, core
from ._tensor import Array
from .session import _MAX_SIGNATURES

# ONNX element types (TensorProto.DataType) and ORT's type strings, by xpuruntime dtype name.
ELEMENT_TYPES = {
    "float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
    "bool": 9, "float16": 10, "float64": 11, "uint32": 12, "uint64": 13, "complex64": 14,
    "complex128": 15, "bfloat16": 16,
}
_ORT_NAMES = {"float32": "float", "float64": "double"}
FROM_ORT_TYPE = {f"tensor({_ORT_NAMES.get(d, d)})": d for d in ELEMENT_TYPES}

CUDA_EP = "CUDAExecutionProvider"
CPU_EP = "CPUExecutionProvider"
_DISABLE_FALLBACK = "session.disable_cpu_ep_fallback"
_RECORD_ASSIGNMENT = "session.record_ep_graph_assignment_info"  # onnxruntime >= 1.24
_NO_SYNC = "disable_synchronize_execution_providers"
_OPTION_KEYS = ("session_options", "provider_options")

# SessionOptions xpuruntime's library was registered into (ORT refuses a second time).
_registered: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _ort() -> Any:
    from ._extras import require
    return require("onnxruntime", "onnx")


def has_assignment_info() -> bool:
    """Whether this onnxruntime records which provider each node was given (>= 1.24)."""
    return hasattr(_ort().InferenceSession, "get_provider_graph_assignment_info")


def _session_options(options: Any) -> tuple[Any, dict]:
    """(SessionOptions with xpuruntime's library registered, extra CUDA provider options)."""
    from .interop import onnxruntime as xo
    ort = _ort()
    extra: dict = {}
    if isinstance(options, dict):
        unknown = set(options) - set(_OPTION_KEYS)
        if unknown:
            raise InvalidArgumentError(f"InferenceSession: unknown ONNX Runtime option(s) "
                                       f"{sorted(unknown)}; expected {', '.join(_OPTION_KEYS)}")
        extra = {str(k): str(v) for k, v in (options.get("provider_options") or {}).items()}
        options = options.get("session_options")
    if options is None:
        options = ort.SessionOptions()
    elif not isinstance(options, ort.SessionOptions):
        raise InvalidArgumentTypeError("InferenceSession: options must be an onnxruntime.SessionOptions or a "
                                       f"dict with {', '.join(_OPTION_KEYS)}, got {type(options).__name__}")
    if options not in _registered:
        xo.session_options(options)
        _registered.add(options)
    return options, extra


def _wrap_error(what: str, exc: Exception) -> Error:
    """An ORT exception as xpuruntime's: InvalidArgumentError for a bad model or input."""
    kind = type(exc).__name__
    cls = InvalidArgumentError if kind in (
        "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile", "NotImplemented",
        "NoModel") else Error
    return cls(f"InferenceSession (onnxruntime): {what}: {exc}")


def _tensor_info(arg: Any, unranked: set) -> Any:
    """A TensorInfo from ORT's NodeArg. ORT gives ``[]`` both for a scalar and for a value
    the model declares without a shape (``unranked``): the latter has an unknown rank."""
    from .session import TensorInfo
    shape = arg.shape
    if shape is not None:
        shape = tuple(d if isinstance(d, (int, str)) or d is None else None for d in shape)
        if not shape and arg.name in unranked:
            shape = None
    return TensorInfo(arg.name, FROM_ORT_TYPE.get(arg.type), shape)


def _unranked(graph: Any) -> set:
    """Names of the graph's inputs and outputs declared without a shape."""
    return {v.name for v in [*graph.input, *graph.output]
            if v.type.HasField("tensor_type") and not v.type.tensor_type.HasField("shape")}


class Backend:
    """One ORT session on one device (see ``xpuruntime.InferenceSession``)."""

    name = "onnxruntime"

    def __init__(self, source: Any, device: Any, stream: Any, strict: bool, policy: Any,
                 options: Any):
        ort = _ort()
        self.device = device
        self._stream = 0 if stream is None else stream.handle
        so, extra = _session_options(options)
        self._record = has_assignment_info()
        so.add_session_config_entry(_RECORD_ASSIGNMENT, "1" if self._record else "0")
        # Without the assignment record, the profiler of the first run says where nodes ran.
        self._profile_placement = not self._record and not so.enable_profiling
        if self._profile_placement:
            so.enable_profiling = True
            so.profile_file_prefix = os.path.join(tempfile.gettempdir(),
                                                  f"xpuruntime_placement_{os.getpid()}_{id(self)}")
        strict_cuda = strict and device.kind == "cuda"
        so.add_session_config_entry(_DISABLE_FALLBACK, "1" if strict_cuda else "0")
        if device.kind == "cuda":
            if CUDA_EP not in ort.get_available_providers():
                raise Error(f"InferenceSession: this onnxruntime has no {CUDA_EP} (available: "
                            f"{', '.join(ort.get_available_providers())}); install onnxruntime-gpu")
            # use_tf32=0: ORT's CUDA EP rounds f32 MatMul inputs to TF32 by default, which
            # torch does not (seen on the H200: an exported block 1.4e-4 off torch in f32).
            cuda = {"device_id": str(device.index), "user_compute_stream": str(self._stream),
                    "use_tf32": "0", **extra}
            # The CPU provider must not be listed when fallback is disabled (ORT refuses both).
            providers = [(CUDA_EP, cuda)] + ([] if strict_cuda else [CPU_EP])
        else:
            providers = [CPU_EP]
        model = source.path or source.data or source.onnx.SerializeToString()
        try:
            self.ort_session = ort.InferenceSession(model, so, providers=providers)
        except Exception as exc:
            if strict_cuda and "fallback" in str(exc):
                raise KernelNotFoundError(_strict_message(model, device, cuda)) from exc
            raise _wrap_error("could not create the session", exc) from exc
        unranked = _unranked(source.onnx.graph)
        self.inputs = [_tensor_info(a, unranked) for a in self.ort_session.get_inputs()]
        self.outputs = [_tensor_info(a, unranked) for a in self.ort_session.get_outputs()]
        self._out = {t.name: t for t in self.outputs}
        self._dev_type = "cuda" if device.kind == "cuda" else "cpu"
        self._run_options = ort.RunOptions()
        if device.kind == "cuda":
            # Return once the work is queued on the session's stream; outputs carry that stream.
            self._run_options.add_run_config_entry(_NO_SYNC, "1")
        self._local = threading.local()
        self._shapes: dict = {}        # input signature -> {output: shape or None}
        self._placement: dict | None = None

    # ---- placement ----
    def placement(self) -> dict | None:
        if self._placement is None and self._record:
            self._placement = _name_unnamed(
                (n.name, n.op_type, sg.ep_name)
                for sg in self.ort_session.get_provider_graph_assignment_info()
                for n in sg.get_nodes())
        return self._placement

    def _after_first_run(self) -> None:
        self._profile_placement = False
        path = self.ort_session.end_profiling()
        try:
            self._placement = provider_per_node(path)
        finally:
            if path and os.path.exists(path):
                os.remove(path)

    # ---- running ----
    def binding(self) -> "_Binding":
        """This thread's IO binding (reused from call to call)."""
        b = getattr(self._local, "binding", None)
        if b is None:
            b = self._local.binding = _Binding(self.ort_session, self._dev_type, self.device.index)
        return b

    def _planned_shapes(self, key: tuple, names: tuple, symbols: dict) -> dict:
        """Output shapes to allocate for this input signature: from the model's shapes and
        the inputs' named dimensions, or as ORT gave them last time; None: ORT allocates."""
        known = self._shapes.get(key)
        if known is None:
            if len(self._shapes) >= _MAX_SIGNATURES:
                self._shapes.clear()
            known = self._shapes[key] = {}
        for n in names:
            if n not in known:
                t = self._out[n]
                known[n] = _resolve(t.shape, symbols) if t.dtype is not None else None
        return known

    def run(self, feeds: list, names: tuple, symbols: dict, key: tuple,
            allocate: Callable[[tuple, str], Array]) -> list[Array]:
        shapes = self._planned_shapes(key, names, symbols)
        try:
            outs = self._run(feeds, names, shapes, allocate)
        except Error as exc:
            if not any(_pooled(shapes[n]) for n in names) or "shape" not in str(exc).lower():
                raise
            # A planned shape was wrong (a data-dependent output): let ORT allocate from now on.
            for n in names:
                shapes[n] = False
            outs = self._run(feeds, names, shapes, allocate)
        if self._profile_placement:
            self._after_first_run()
        return outs

    def _run(self, feeds: list, names: tuple, shapes: dict, allocate: Callable) -> list[Array]:
        b = self.binding()
        for f in feeds:
            b.bind_input(f.name, ELEMENT_TYPES[f.dtype], f.shape, f.ptr)
        b.outputs_will_be(names)
        outs: list = []
        for n in names:
            shape = shapes[n]
            if _pooled(shape):
                a = allocate(shape, self._out[n].dtype)
                b.bind_output(n, ELEMENT_TYPES[a.dtype], a.shape, a.ptr)
                outs.append(a)
            else:
                b.bind_output(n)
                outs.append(None)
        try:
            b.run(self._run_options)
        except Exception as exc:
            raise _wrap_error("run failed", exc) from exc
        if None in outs:
            values = b.public.get_outputs()
            for k, n in enumerate(names):
                if outs[k] is None:
                    outs[k] = self._wrap(values[k])
                    if shapes[n] is None:  # learnt: the next call with these inputs pre-allocates
                        shapes[n] = tuple(outs[k].shape)
        return outs

    def _wrap(self, value: Any) -> Array:
        """An output ORT allocated, as an Array that keeps the OrtValue alive (zero-copy)."""
        dtype = FROM_ORT_TYPE[value.data_type()]
        return Array(value, value.data_ptr() or 0, tuple(value.shape()), dtype, None, self.device,
                     self._stream if self.device.kind == "cuda" else None)


class _Binding:
    """One thread's ``onnxruntime.IOBinding``, bound through its C object when it has one:
    the Python wrapper builds a device object per bind and (onnxruntime 1.32) raises and
    catches an exception per run looking up a run option, tens of microseconds a call.
    Falls back to the public methods if the C objects are not what they were."""

    def __init__(self, session: Any, device_type: str, device_index: int):
        self.public = session.io_binding()
        self._dev = (device_type, device_index)
        self._outputs: tuple | None = None
        try:
            self._c = self.public._iobinding
            self._c_session = session._sess
            self._c_device = _ort().OrtDevice.make(device_type, device_index)._get_c_device()
        except AttributeError:
            self._c = None
        self._session = session

    def _public_only(self) -> None:
        self._c = None

    def bind_input(self, name: str, elem: int, shape: tuple, ptr: int) -> None:
        if self._c is not None:
            try:
                return self._c.bind_input(name, self._c_device, elem, shape, ptr)
            except TypeError:
                self._public_only()
        self.public.bind_input(name, *self._dev, elem, shape, ptr)

    def outputs_will_be(self, names: tuple) -> None:
        """Unbinds earlier outputs unless the same names are bound again (rebinding a name
        replaces it; a stale one would be written into memory that may be gone)."""
        if names != self._outputs:
            self.public.clear_binding_outputs()
            self._outputs = names

    def bind_output(self, name: str, elem: int | None = None, shape: tuple | None = None,
                    ptr: int | None = None) -> None:
        if self._c is not None:
            try:
                if ptr is None:
                    return self._c.bind_output(name, self._c_device)
                return self._c.bind_output(name, self._c_device, elem, shape, ptr)
            except TypeError:
                self._public_only()
        self.public.bind_output(name, *self._dev, elem, shape, ptr)

    def run(self, run_options: Any) -> None:
        if self._c is not None:
            return self._c_session.run_with_iobinding(self._c, run_options)
        self._session.run_with_iobinding(self.public, run_options)


def _pooled(shape: Any) -> bool:
    """Whether an output of this planned shape comes from xpuruntime's pool: a known shape
    (None: not known yet; False: ORT allocates it) with elements (ORT refuses a null buffer)."""
    return isinstance(shape, tuple) and 0 not in shape


def _resolve(shape: Any, symbols: dict) -> tuple | None:
    if shape is None:
        return None
    out = []
    for d in shape:
        v = d if isinstance(d, int) else symbols.get(d) if isinstance(d, str) else None
        if v is None or v < 0:
            return None
        out.append(v)
    return tuple(out)


def _name_unnamed(rows: Any) -> dict:
    """{node name: provider}; unnamed nodes become ``"<OpType>#k"``."""
    out: dict = {}
    count: dict = {}
    for name, op_type, ep in rows:
        if not name:
            k = count[op_type] = count.get(op_type, -1) + 1
            name = f"{op_type}#{k}"
        out[name] = ep
    return out


def provider_per_node(profile_path: str) -> dict:
    """``{node name: execution provider}`` from an ONNX Runtime profile (the JSON file
    ``end_profiling()`` returns): every node that ran, as the profiler names it."""
    with open(profile_path, encoding="utf-8") as f:
        events = json.load(f)
    out = {}
    for ev in events:
        args = ev.get("args") or {}
        if ev.get("cat") == "Node" and "provider" in args:
            name = ev.get("name", "")
            for suffix in ("_kernel_time", "_fence_before", "_fence_after"):
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
            out[name] = args["provider"]
    return out


# ---- why strict refused: the nodes ORT would put on the CPU, found in a child -----------------

_MARK = "XPURUNTIME_PROBE "
_NOT_FOUND = re.compile(r"CUDA kernel not found in registries for Op type: (\S+) node name: (.+?)\s*$")
_FORCED = re.compile(r"Force fallback to CPU execution for node: (.+?)\s*$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # ORT colours its log lines on a terminal


# Run by ``cpu_nodes`` in a child that needs nothing but onnxruntime: create the session
# with the fallback allowed and every log line on stderr, print the node assignment as JSON.
_PROBE = """
import json, sys
import onnxruntime as ort
req = json.loads(sys.stdin.read())
ort.set_default_logger_severity(0)
so = ort.SessionOptions()
so.log_severity_level = 0
so.register_custom_ops_library(req["library"])
so.add_session_config_entry(req["record"], "1")
providers = [tuple(p) if isinstance(p, list) else p for p in req["providers"]]
s = ort.InferenceSession(req["model"], so, providers=providers)
rows = []
if hasattr(s, "get_provider_graph_assignment_info"):
    rows = [[n.name, n.op_type, n.domain, sg.ep_name]
            for sg in s.get_provider_graph_assignment_info() for n in sg.get_nodes()]
print(req["mark"] + json.dumps(rows), flush=True)
"""


def cpu_nodes(model: Any, providers: list, timeout: float = 600) -> list[tuple]:
    """``[(node name, op type, domain, reason)]`` for the nodes ONNX Runtime places on the
    CPU provider with ``providers`` (fallback allowed), from a child process at verbose
    logging (ORT's log is process-wide, so it is read there, not here)."""
    from .interop import onnxruntime as xo
    tmp = None
    if not isinstance(model, str):
        fd, tmp = tempfile.mkstemp(suffix=".onnx", prefix="xpuruntime_probe_")
        with os.fdopen(fd, "wb") as f:
            f.write(model)
        model = tmp
    # The child imports the onnxruntime this process uses, wherever it was found.
    where = os.path.dirname(os.path.dirname(_ort().__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (where, os.environ.get("PYTHONPATH")) if p))
    req = {"model": model, "library": xo.library_path(), "providers": providers,
           "record": _RECORD_ASSIGNMENT, "mark": _MARK}
    try:
        r = subprocess.run([sys.executable, "-c", _PROBE], input=json.dumps(req),
                           capture_output=True, text=True, env=env, timeout=timeout,
                           cwd=tempfile.gettempdir())
    finally:
        if tmp:
            os.remove(tmp)
    line = next((ln for ln in r.stdout.splitlines() if ln.startswith(_MARK)), None)
    if line is None:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise Error(f"InferenceSession: the placement probe failed: {tail}")
    reasons = _reasons(r.stderr)
    rows = [tuple(x) for x in json.loads(line[len(_MARK):])]
    if not rows:  # onnxruntime < 1.24: only what the log names
        rows = [(n, "?", "?", CPU_EP) for n in reasons]
    return [(name, op, dom, reasons.get(name) or _UNKNOWN) for name, op, dom, ep in rows
            if ep == CPU_EP]


_UNKNOWN = "ONNX Runtime assigned it to the CPU (its log gives no reason)"


def _reasons(log: str) -> dict:
    """{node name: why it is on the CPU} from ORT's verbose log."""
    out = {}
    for ln in _ANSI.sub("", log).splitlines():
        m = _NOT_FOUND.search(ln)
        if m:
            op = m.group(1)
            out[m.group(2)] = (
                f"no CUDA kernel for {op} with these input types in the CUDA provider"
                + ("" if core.built_with_cuda else " (this xpuruntime was built without CUDA)"))
            continue
        m = _FORCED.search(ln)
        if m:
            out[m.group(1)] = ("ONNX Runtime keeps it on the CPU on purpose (a small "
                                       "shape computation it deems cheaper on the host)")
    return out


def _strict_message(model: Any, device: Any, cuda_options: dict) -> str:
    """The strict refusal: every node ORT would run on the CPU, and why."""
    opts = {k: v for k, v in cuda_options.items() if k != "user_compute_stream"}
    try:
        nodes = cpu_nodes(model, [[CUDA_EP, opts], CPU_EP])
    except Exception as exc:  # the refusal stands; say that the details are missing
        return (f"strict=True: ONNX Runtime would run nodes of this model on the CPU instead of "
                f"{device} (session.disable_cpu_ep_fallback); finding which failed: {exc}. "
                "Pass strict=False to allow the fallback")
    lines = "\n".join(f"  - node {name!r} ({dom + '.' if dom not in ('', '?') else ''}{op}): {why}"
                      for name, op, dom, why in nodes)
    return (f"strict=True: ONNX Runtime would run {len(nodes)} node(s) of this model on the CPU "
            f"instead of {device} (session.disable_cpu_ep_fallback):\n{lines}\n"
            "Pass strict=False to allow the fallback (session.placement then says where each "
            "node runs)")
