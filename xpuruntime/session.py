"""``xpuruntime.InferenceSession``: an ONNX model (or a serialized TensorRT engine) run
through ONNX Runtime or TensorRT with xpuruntime's ops registered, any DLPack array in,
``xpuruntime.Array`` (or the caller's framework) out. See docs/inference.md.

This module is backend-neutral: reading the model, the policy rule, checking inputs
against the model, allocating outputs from xpuruntime's pool on the session's stream and
handing them back. ``_session_ort`` and ``_session_trt`` talk to the runtimes.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any, NamedTuple, Sequence

from ._arrays import DTYPE_BY_CODE, _framework, read_dlpack
from ._device import Device, as_device
from ._native import InvalidArgumentError, InvalidArgumentTypeError, core
from ._policy import POLICIES
from ._stream import Stream, as_stream
from ._tensor import Array, _contiguous_strides, allocate_dense

BACKENDS = ("auto", "onnxruntime", "tensorrt")
_MAX_SIGNATURES = 1024  # input signatures remembered (checked plans, output shapes)
_ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
_LIKE = ("input", "numpy", "torch", "jax", "cupy")
_DLPACK_CUDA = (2, 13)  # kDLCUDA, kDLCUDAManaged


class TensorInfo(NamedTuple):
    """A model input or output.

    ``dtype``: an xpuruntime dtype name (``"float32"``, ``"bfloat16"``, ``"int64"``...), None
    when the model does not say. ``shape``: a tuple with an int per fixed dimension, the
    dimension's name (str) for a named dynamic one and None for an unnamed one; None when
    the rank is unknown."""
    name: str
    dtype: str | None
    shape: tuple | None


class Feed(NamedTuple):
    """One checked input as the backends bind it: dense, row-major, on the session's device."""
    name: str
    dtype: str
    shape: tuple
    ptr: int
    owner: Any  # keeps a contiguous copy alive for the call


class ModelSource(NamedTuple):
    """What the session was given, read once: an ONNX model or a serialized engine."""
    onnx: Any            # onnx.ModelProto, or None for an engine
    data: bytes | None   # the serialized bytes as given (ONNX model or engine)
    path: str | None     # the file, when the model came from one

    @property
    def is_engine(self) -> bool:
        return self.onnx is None


def read_model(model: Any, backend: str) -> ModelSource:
    """``model`` (path, bytes or ``onnx.ModelProto``; for TensorRT also a serialized
    engine) read once. A missing file is FileNotFoundError; bytes that are no ONNX model
    are InvalidArgumentError unless TensorRT may take them as an engine."""
    path = None
    if hasattr(model, "SerializeToString") and hasattr(model, "graph"):
        return ModelSource(model, None, None)
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
    elif isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"InferenceSession: model file {path!r} does not exist")
        data = pathlib.Path(path).read_bytes()
    else:
        raise InvalidArgumentTypeError("InferenceSession: model must be a path, bytes or an onnx.ModelProto "
                                       f"(or a serialized TensorRT engine), got {type(model).__name__}")
    if not data:
        raise InvalidArgumentError(f"InferenceSession: model {path or 'bytes'} is empty")
    if path is not None and path.lower().endswith(_ENGINE_SUFFIXES) and backend != "onnxruntime":
        return ModelSource(None, data, path)
    proto, why = _parse_onnx(data)
    if proto is not None:
        return ModelSource(proto, data, path)
    if backend in ("tensorrt", "auto") and _may_be_engine(backend):
        return ModelSource(None, data, path)
    raise InvalidArgumentError(
        f"InferenceSession: model {path or '(bytes)'} is not a valid ONNX model ({why})"
        + ("" if backend == "tensorrt" else "; a serialized TensorRT engine needs "
           "backend='tensorrt' (or 'auto' with TensorRT installed)"))


def _parse_onnx(data: bytes) -> tuple[Any, str]:
    from ._extras import require
    onnx = require("onnx", "onnx")
    try:
        proto = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends
        return None, f"{type(exc).__name__}: {exc}"
    if not proto.HasField("graph") or not proto.graph.output:
        return None, "no graph with outputs"
    return proto, ""


def _may_be_engine(backend: str) -> bool:
    if backend == "tensorrt":
        return True
    from . import _session_trt
    return _session_trt.runtime_module(missing_ok=True) is not None


def with_policy(proto: Any, policy: str) -> Any:
    """A copy of ``proto`` whose every ``xpuruntime`` node (graph, subgraphs, local
    functions) has ``policy=<policy>``, replacing a policy the node had."""
    from onnx import ModelProto, helper
    from .interop.onnxruntime import DOMAIN, _nodes

    out = ModelProto()
    out.CopyFrom(proto)
    for g in [out.graph, *out.functions]:
        for node in _nodes(g):
            if node.domain != DOMAIN:
                continue
            keep = [a for a in node.attribute if a.name != "policy"]
            del node.attribute[:]
            node.attribute.extend(keep)
            node.attribute.append(helper.make_attribute("policy", policy))
    return out


def _check_policy(policy: Any) -> str | None:
    if policy is None or policy in POLICIES:
        return policy
    raise InvalidArgumentError(
        f"InferenceSession: unknown policy {policy!r}; expected fast, deterministic or reference")


def _session_stream(stream: Any, device: Device, backend: str) -> Stream | None:
    """The stream every run is queued on: None on the CPU; on CUDA ``stream`` (a Stream,
    handle or ``__cuda_stream__`` object) or a new stream the session owns. ONNX Runtime
    takes a stream handle of 0 as "none given" and would run on a stream of its own, so
    the legacy default stream is refused there."""
    if device.kind != "cuda":
        if stream is not None:
            raise InvalidArgumentError(f"InferenceSession: stream= is for CUDA sessions; this one "
                                       f"runs on {device}")
        return None
    if stream is None:
        return Stream(device)
    if isinstance(stream, Stream) and stream.device != device:
        raise InvalidArgumentError(f"InferenceSession: the stream is on {stream.device}, the "
                                   f"session on {device}")
    s = as_stream(stream, device)
    if s.handle == 0 and backend == "onnxruntime":
        raise InvalidArgumentError(
            "InferenceSession: ONNX Runtime cannot be given the legacy default stream (handle 0) "
            "as its compute stream; pass a created stream (xpuruntime.Stream(device)) or none")
    return s


def choose_backend(backend: str, device: Device, source: ModelSource) -> str:
    """``auto``: TensorRT for an engine, or on CUDA when a TensorRT builder is importable;
    else ONNX Runtime."""
    if backend not in BACKENDS:
        raise InvalidArgumentError(f"InferenceSession: unknown backend {backend!r}; expected "
                                   f"{', '.join(BACKENDS)}")
    if backend != "auto":
        return backend
    from . import _session_trt
    if source.is_engine or (device.kind == "cuda" and _session_trt.has_builder()):
        return "tensorrt"
    return "onnxruntime"


class InferenceSession:
    """An ONNX model run by ONNX Runtime or TensorRT with xpuruntime's ops.

    Args:
      model: a path, bytes or ``onnx.ModelProto``; for ``backend="tensorrt"`` also a
        serialized engine (bytes, or a ``.engine``/``.plan``/``.trt`` file).
      backend: ``"onnxruntime"``, ``"tensorrt"`` or ``"auto"`` (TensorRT for an engine or
        on CUDA when a full ``tensorrt`` with a builder is importable, else ONNX Runtime).
      device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or an ``xpuruntime.Device``.
      strict: on CUDA, refuse at construction to run any node on the CPU (ONNX Runtime's
        ``session.disable_cpu_ep_fallback``); the error names the nodes and why. With
        ``strict=False`` the fallback is allowed and ``placement`` says where nodes run.
      policy: ``"fast"``, ``"deterministic"`` or ``"reference"``: written as the ``policy``
        attribute of every ``xpuruntime`` node (replacing the model's own). None leaves the
        nodes as they are: a node's own ``policy``, else ``XPURUNTIME_POLICY``, else fast.
      stream: CUDA only: the stream every run is queued on (ONNX Runtime's
        ``user_compute_stream``): an ``xpuruntime.Stream``, handle or ``__cuda_stream__``
        object; default a new stream owned by the session (``session.stream``).
      options: ONNX Runtime: an ``onnxruntime.SessionOptions`` (xpuruntime's library is
        registered into it) or a dict with ``session_options`` and ``provider_options``
        (extra CUDA provider options). TensorRT: a dict with ``cache_dir`` and ``shapes``
        ({input: (min, opt, max)} for dynamic dimensions).

    Raises FileNotFoundError for a missing model file, ``xpuruntime.InvalidArgumentError``
    for a corrupt model, an unknown ``xpuruntime`` op type or bad attributes, and
    ``xpuruntime.KernelNotFoundError`` when ``strict`` refuses a CPU fallback.
    """

    def __init__(self, model: Any, *, backend: str = "auto", device: Any = "cpu",
                 strict: bool = True, policy: str | None = None, stream: Any = None,
                 options: Any = None):
        self.device = as_device(device)
        self.policy = _check_policy(policy)
        self.strict = bool(strict)
        source = read_model(model, backend)
        self.backend = choose_backend(backend, self.device, source)
        if not source.is_engine:
            from .interop.onnxruntime import check_model
            proto = source.onnx if self.policy is None else with_policy(source.onnx, self.policy)
            check_model(proto)
            if proto is not source.onnx:
                source = ModelSource(proto, None, None)
        if self.backend == "onnxruntime":
            if source.is_engine:
                raise InvalidArgumentError("InferenceSession: ONNX Runtime cannot run a serialized "
                                           "TensorRT engine; use backend='tensorrt'")
            from . import _session_ort as impl
        else:
            from . import _session_trt as impl
        self.stream = _session_stream(stream, self.device, self.backend)
        self._impl = impl.Backend(source, self.device, self.stream, self.strict, self.policy,
                                  options)
        self.inputs: tuple[TensorInfo, ...] = tuple(self._impl.inputs)
        self.outputs: tuple[TensorInfo, ...] = tuple(self._impl.outputs)
        self._input_names = tuple(t.name for t in self.inputs)
        self._input_index = {n: k for k, n in enumerate(self._input_names)}
        self._output_info = {t.name: t for t in self.outputs}
        self._all_outputs = tuple(t.name for t in self.outputs)
        self._stream_handle = 0 if self.stream is None else self.stream.handle
        self._plans: dict = {}      # input signature -> _Plan
        self._strides: dict = {}    # output shape -> contiguous strides

    # ---- introspection ----
    @property
    def input_names(self) -> tuple[str, ...]:
        return self._input_names

    @property
    def output_names(self) -> tuple[str, ...]:
        return self._all_outputs

    @property
    def placement(self) -> dict[str, str] | None:
        """``{node name: execution provider}`` for every node ONNX Runtime runs (after its
        graph optimizations; an unnamed node is ``"<OpType>#k"``), from ORT's graph
        assignment record (onnxruntime >= 1.24) or, before that, its profiler (known after
        the first run). None for TensorRT, which runs the whole engine on the GPU."""
        return self._impl.placement()

    def __repr__(self) -> str:
        return (f"InferenceSession(backend={self.backend!r}, device={self.device}, "
                f"inputs={[t.name for t in self.inputs]}, outputs={list(self._all_outputs)})")

    # ---- running ----
    def run(self, inputs: Any, output_names: Sequence[str] | None = None,
            like: str | None = None) -> list[Any]:
        """Runs the model once.

        Args:
          inputs: ``{name: array}`` or a list in input order (one array for a one-input
            model) of any DLPack arrays (numpy, torch, jax, cupy, ``xpuruntime.Array``) on
            the session's device, dense row-major (a strided CPU array is copied), with the
            model's dtypes and shapes.
          output_names: the outputs to compute, in the order returned (default: all).
          like: None: ``xpuruntime.Array`` on the session's device, from xpuruntime's pool
            on ``session.stream``; ``"input"``: the framework of the first input (torch,
            jax, cupy, numpy; zero-copy through DLPack); or ``"numpy"``/``"torch"``/
            ``"jax"``/``"cupy"``.

        Returns the outputs as a list. On CUDA the work is queued on ``session.stream``
        after the inputs' producers (DLPack stream handshake) and the call returns without
        waiting; consumers of the outputs are ordered after it through DLPack.
        """
        arrays = self._ordered(inputs)
        feeds, plan = self._feeds(arrays)
        names = self._wanted(output_names)
        outs = self._impl.run(feeds, names, plan.symbols, plan.key, self._allocate)
        if like is None:
            return outs
        return self._convert(outs, names, like, arrays)

    __call__ = run

    def _ordered(self, inputs: Any) -> list[Any]:
        names = self._input_names
        if isinstance(inputs, dict):
            if len(inputs) == len(names):
                try:
                    return [inputs[n] for n in names]
                except KeyError:
                    pass  # say which below
            unknown = [k for k in inputs if k not in self._input_index]
            if unknown:
                raise InvalidArgumentError(
                    f"InferenceSession.run: unknown input {', '.join(map(repr, unknown))}; the "
                    f"model's inputs are {', '.join(map(repr, names))}")
            missing = [n for n in names if n not in inputs]
            if missing:
                raise InvalidArgumentError(
                    f"InferenceSession.run: missing input {', '.join(map(repr, missing))} "
                    f"(the model's inputs are {', '.join(map(repr, names))})")
            return [inputs[n] for n in names]
        if not isinstance(inputs, (list, tuple)):
            inputs = [inputs]
        if len(inputs) != len(names):
            raise InvalidArgumentError(
                f"InferenceSession.run: {len(inputs)} input(s) given, the model takes "
                f"{len(names)} ({', '.join(map(repr, names))})")
        return list(inputs)

    def _wanted(self, output_names: Sequence[str] | None) -> tuple[str, ...]:
        if output_names is None:
            return self._all_outputs
        if isinstance(output_names, str):
            output_names = [output_names]
        for n in output_names:
            if n not in self._output_info:
                raise InvalidArgumentError(
                    f"InferenceSession.run: unknown output {n!r}; the model's outputs are "
                    f"{', '.join(map(repr, self._all_outputs))}")
        return tuple(output_names)

    def _import(self, name: str, x: Any) -> tuple:
        """(ptr, dtype code, bits, shape, strides, kind, index) of one input. A CUDA input is
        taken with the session's stream as the DLPack consumer, so its producer orders it.
        Anything the fast path cannot read is refused by ``read_dlpack``, which says why."""
        try:
            if self.stream is not None and x.__dlpack_device__()[0] in _DLPACK_CUDA:
                h = self.stream.handle
                return core.dlpack_info(x.__dlpack__(stream=h if h else 1))
            return core.dlpack_info(x)
        except Exception as exc:  # noqa: BLE001 - read_dlpack below says why
            failure = exc
        read_dlpack(x, "InferenceSession.run", name)  # raises, naming the input and the reason
        raise failure

    def _feeds(self, arrays: list[Any]) -> tuple[list[Feed], "_Plan"]:
        infos = [self._import(n, x) for n, x in zip(self._input_names, arrays)]
        key = tuple([i[1:] for i in infos])  # everything but the pointer
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _MAX_SIGNATURES:
                self._plans.clear()
            plan = self._plans[key] = self._plan(infos, key)
        feeds = []
        for t, x, i in zip(self.inputs, arrays, infos):
            ptr, owner = i[0], None
            if t.name in plan.copies:
                owner = _contiguous_host_copy(x)
                ptr = core.dlpack_info(owner)[0]
            feeds.append(Feed(t.name, plan.dtypes[t.name], i[3], ptr, owner))
        return feeds, plan

    def _plan(self, infos: list[tuple], key: tuple) -> "_Plan":
        """Checks one signature of inputs (dtypes, shapes, strides, devices) against the
        model; the result is reused for every call with that signature."""
        symbols: dict[str, tuple[int, str]] = {}
        dtypes, copies = {}, set()
        for t, (_, code, bits, shape, strides, kind, index) in zip(self.inputs, infos):
            label = f"InferenceSession.run: input {t.name!r}"
            dtype = DTYPE_BY_CODE.get((code, bits))
            if dtype is None:
                raise InvalidArgumentError(f"{label}: unsupported DLPack dtype (code {code}, "
                                           f"{bits} bits)")
            dev = Device(kind, index) if kind == "cpu" else _cuda(index)
            if dev != self.device:
                hint = (f"xpuruntime.asarray(x).to({str(self.device)!r})" if kind == "cpu"
                        else "copy it to the host first")
                raise InvalidArgumentError(f"{label} is on {dev}, the session runs on "
                                           f"{self.device}; move it ({hint})")
            if t.dtype is not None and dtype != t.dtype:
                raise InvalidArgumentError(f"{label}: dtype {dtype}, the model wants {t.dtype}")
            _check_shape(label, t, tuple(shape), symbols)
            if not _is_dense(shape, strides):
                if self.device.kind != "cpu":
                    raise InvalidArgumentError(
                        f"{label} is not dense row-major (strides {tuple(strides)} for shape "
                        f"{tuple(shape)}); make it contiguous first (torch: .contiguous())")
                copies.add(t.name)
            dtypes[t.name] = dtype
        return _Plan(key, dtypes, frozenset(copies), {s: v for s, (v, _) in symbols.items()})

    def _allocate(self, shape: tuple, dtype: str) -> Array:
        """A dense output on the session's device from its pool, on the session's stream."""
        strides = self._strides.get(shape)
        if strides is None:
            if len(self._strides) >= _MAX_SIGNATURES:
                self._strides.clear()
            strides = self._strides[shape] = _contiguous_strides(shape)
        return allocate_dense(shape, dtype, self.device, self._stream_handle, strides)

    def _convert(self, outs: list[Array], names: tuple, like: str, arrays: list[Any]) -> list[Any]:
        if like not in _LIKE:
            raise InvalidArgumentError(f"InferenceSession.run: like={like!r}; expected None, "
                                       f"{', '.join(map(repr, _LIKE))}")
        fw = _framework(arrays[0]) if like == "input" else like
        if fw == "other":  # xpuruntime.Array or another DLPack producer: Arrays
            return outs
        result = []
        for name, a in zip(names, outs):
            try:
                result.append(_to_framework(a, fw))
            except Exception as exc:
                raise InvalidArgumentError(f"InferenceSession.run: output {name!r} ({a.dtype} on "
                                           f"{a.device}) cannot become a {fw} array: {exc}") from exc
        return result


def provider_per_node(profile_path: str) -> dict[str, str]:
    """``{node name: execution provider}`` from an ONNX Runtime profile file (what
    ``session._impl.ort_session.end_profiling()`` returns after runs with
    ``SessionOptions.enable_profiling``): every node that ran, as ORT's profiler names it."""
    from ._session_ort import provider_per_node as read
    return read(profile_path)


class _Plan(NamedTuple):
    key: tuple
    dtypes: dict          # input name -> dtype name
    copies: frozenset     # CPU inputs to copy to dense row-major
    symbols: dict         # dimension name -> its value in this signature


def _cuda(index: int) -> Device:
    return Device("cuda", index)


def _is_dense(shape: Sequence[int], strides: Sequence[int]) -> bool:
    want = _contiguous_strides(tuple(shape))
    return all(s == w for s, w, d in zip(strides, want, shape) if d != 1) or 0 in shape


def _check_shape(label: str, t: TensorInfo, shape: tuple, symbols: dict) -> None:
    """``shape`` against the model's ``t.shape``: rank, fixed dimensions, and named
    dimensions consistent over all inputs (``symbols``: name -> (value, input))."""
    if t.shape is None:
        return
    if len(shape) != len(t.shape):
        raise InvalidArgumentError(f"{label}: rank {len(shape)} (shape {shape}), the model wants "
                                   f"rank {len(t.shape)} ({_show(t.shape)})")
    for axis, (got, want) in enumerate(zip(shape, t.shape)):
        if isinstance(want, int) and want >= 0 and got != want:
            raise InvalidArgumentError(f"{label}: dimension {axis} is {got}, the model wants "
                                       f"{want} (shape {_show(t.shape)}, given {shape})")
        if isinstance(want, str):
            seen = symbols.get(want)
            if seen is None:
                symbols[want] = (got, t.name)
            elif seen[0] != got:
                raise InvalidArgumentError(
                    f"{label}: dimension {axis} ({want!r}) is {got}, but input {seen[1]!r} has "
                    f"{want!r} = {seen[0]}")


def _show(shape: tuple) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _contiguous_host_copy(x: Any) -> Any:
    import numpy as np
    return np.ascontiguousarray(np.from_dlpack(x))


def _to_framework(a: Array, fw: str) -> Any:
    if fw == "numpy":
        import numpy as np
        if a.device.kind != "cpu":
            raise InvalidArgumentError("numpy arrays live on the host")
        return np.from_dlpack(a)
    if fw == "torch":
        import torch
        return torch.from_dlpack(a)
    if fw == "jax":
        import jax.numpy as jnp
        return jnp.from_dlpack(a)
    import cupy
    return cupy.from_dlpack(a)
