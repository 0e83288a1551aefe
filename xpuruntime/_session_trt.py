"""The TensorRT backend of ``xpuruntime.InferenceSession``, kept thin: an engine built from
the ONNX model with xpuruntime's plugin library (full ``tensorrt`` only) and cached on
disk, or a serialized engine loaded by ``tensorrt`` or the lean runtime; one execution
context run on the session's stream with outputs from xpuruntime's pool."""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import os
import re
from typing import Any, Callable

from ._native import Error, InvalidArgumentError, core

_OPTION_KEYS = ("cache_dir", "shapes")
# TensorRT DataType names -> xpuruntime dtype names.
_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8",
           "INT32": "int32", "INT64": "int64", "BOOL": "bool", "UINT8": "uint8"}


def runtime_module(missing_ok: bool = False) -> Any:
    """The TensorRT module that deserializes and runs engines: ``tensorrt``, else the lean
    runtime (``pip install tensorrt-lean-cu13``). ImportError (None with ``missing_ok``)
    when neither is installed."""
    from .interop import tensorrt as xt
    try:
        return xt.tensorrt_module()
    except ImportError as exc:
        if missing_ok:
            return None
        raise ImportError(f"InferenceSession(backend='tensorrt'): {exc}") from exc


def has_builder() -> bool:
    """Whether the full ``tensorrt`` (with a builder and the ONNX parser) is importable."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError:
        return False
    return hasattr(trt, "Builder") and hasattr(trt, "OnnxParser")


# ---- the engine cache -----------------------------------------------------------------------

def cache_dir(options: dict | None = None) -> str:
    """Where built engines are kept: ``options["cache_dir"]``, else
    ``$XPURUNTIME_CACHE_DIR/tensorrt``, else ``$XDG_CACHE_HOME`` (``~/.cache``)
    ``/xpuruntime/tensorrt``."""
    if options and options.get("cache_dir"):
        return os.fspath(options["cache_dir"])
    root = os.environ.get("XPURUNTIME_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "xpuruntime")
    return os.path.join(root, "tensorrt")


def engine_cache_key(model: bytes, device_name: str, compute_capability: tuple,
                     tensorrt_version: str, policy: str | None, shapes: dict | None = None) -> str:
    """The file name of the engine built from ``model`` (its serialized bytes, hashed) for a
    device (name and compute capability), a TensorRT version and a policy (None: the
    model's own, under the ``XPURUNTIME_POLICY`` in effect). The build shapes and
    xpuruntime's version (its plugins) are hashed into the last part."""
    model_hash = hashlib.sha256(model).hexdigest()[:24]
    if policy is None:
        policy = "env-" + os.environ["XPURUNTIME_POLICY"] if os.environ.get("XPURUNTIME_POLICY") \
            else "model"
    rest = repr((core.__version__, sorted((shapes or {}).items()))).encode()
    device = re.sub(r"[^A-Za-z0-9]+", "-", device_name).strip("-") or "gpu"
    major, minor = compute_capability
    return (f"{model_hash}_{device}_sm{major}{minor}_trt{tensorrt_version}_{policy}_"
            f"{hashlib.sha256(rest).hexdigest()[:12]}.engine")


# ---- TensorRT's log, engines --------------------------------------------------------------

def _logger(trt: Any) -> Any:
    """A TensorRT logger that keeps the errors (messages are how TensorRT says why)."""
    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg):
            if int(severity) <= int(trt.ILogger.Severity.ERROR):
                self.errors.append(str(msg))

    return Logger()


def _load_plugins(trt: Any) -> str | None:
    """Loads xpuruntime's plugin library into ``trt``'s registry; why not, or None."""
    from .interop import tensorrt as xt
    try:
        xt.load(trt.get_plugin_registry())
    except (FileNotFoundError, RuntimeError) as exc:
        return str(exc)
    return None


def start_runtime(trt: Any) -> tuple[Any, Any]:
    """(runtime, logger), or a clear error when the runtime reports that it cannot start
    (no usable GPU or driver). TensorRT crashes destroying such a runtime, so it is kept
    alive for the life of the process instead."""
    logger = _logger(trt)
    runtime = trt.Runtime(logger)
    if runtime is None or logger.errors:
        if runtime is not None:
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(runtime))  # never destroyed
        raise Error(f"InferenceSession (tensorrt): the {trt.__name__} {trt.__version__} runtime "
                    f"could not start: {'; '.join(logger.errors) or 'no runtime'}")
    return runtime, logger


def deserialize(trt: Any, data: bytes) -> tuple[Any, Any, Any]:
    """(runtime, engine, logger) from a serialized engine, with xpuruntime's plugins
    loaded first. No GPU, a runtime that cannot start or an engine it cannot read
    (corrupt, another TensorRT version or GPU) is a clear error, never a crash."""
    if not data:
        raise InvalidArgumentError("InferenceSession (tensorrt): the engine is empty")
    if core.cuda_device_count() == 0:
        raise Error("InferenceSession (tensorrt): no CUDA device is usable, and TensorRT's runtime "
                    "needs one")
    runtime, logger = start_runtime(trt)
    missing = _load_plugins(trt)
    engine = runtime.deserialize_cuda_engine(bytes(data))
    if engine is None:
        why = "; ".join(logger.errors) or "no message"
        raise InvalidArgumentError(
            f"InferenceSession (tensorrt): the engine could not be deserialized by {trt.__name__} "
            f"{trt.__version__} (corrupt, or built by another TensorRT version or for another GPU; "
            f"the lean runtime reads version-compatible engines only): {why}"
            + (f"; xpuruntime's plugins were not loaded: {missing}" if missing else ""))
    return runtime, engine, logger


def build(trt: Any, model: bytes, shapes: dict, has_xpuruntime_nodes: bool) -> bytes:
    """A serialized engine of the ONNX ``model`` (prepared by ``onnx_for_tensorrt``),
    strongly typed, one optimization profile from ``shapes`` ({input: (min, opt, max)})."""
    if has_xpuruntime_nodes:
        missing = _load_plugins(trt)
        if missing:
            raise Error(f"InferenceSession (tensorrt): the model has xpuruntime nodes and {missing}")
    logger = _logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise InvalidArgumentError(f"InferenceSession (tensorrt): the ONNX parser refused the "
                                   f"model: {'; '.join(errors + logger.errors)}")
    config = builder.create_builder_config()
    profile, dynamic = builder.create_optimization_profile(), False
    for i in range(network.num_inputs):
        t = network.get_input(i)
        if any(d < 0 for d in t.shape):
            if t.name not in shapes:
                raise InvalidArgumentError(
                    f"InferenceSession (tensorrt): input {t.name!r} has dynamic dimensions "
                    f"{tuple(t.shape)}; give options={{'shapes': {{{t.name!r}: (min, opt, max)}}}}")
            profile.set_shape(t.name, *[tuple(s) for s in shapes[t.name]])
            dynamic = True
    if dynamic:
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise Error(f"InferenceSession (tensorrt): building the engine failed: "
                    f"{'; '.join(logger.errors) or 'no message'}")
    return bytes(plan)


def _options(options: Any) -> dict:
    if options is None:
        return {}
    if not isinstance(options, dict) or set(options) - set(_OPTION_KEYS):
        raise InvalidArgumentError(f"InferenceSession (tensorrt): options must be a dict with "
                                   f"{', '.join(_OPTION_KEYS)}, got {options!r}")
    return options


def _cached_plan(source: Any, device: Any, policy: str | None, options: dict) -> tuple[bytes, str]:
    """The engine of an ONNX model: from the cache, else built and written there."""
    from .interop.onnxruntime import DOMAIN
    trt = importlib.import_module("tensorrt")
    shapes = {k: tuple(map(tuple, v)) for k, v in (options.get("shapes") or {}).items()}
    data = source.data or source.onnx.SerializeToString(deterministic=True)
    props = device.properties()
    path = os.path.join(cache_dir(options), engine_cache_key(
        data, props["name"], props["compute_capability"], trt.__version__, policy, shapes))
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return f.read(), path
    from .interop import tensorrt as xt
    proto = xt.onnx_for_tensorrt(source.onnx)
    has_nodes = any(n.domain == DOMAIN for n in proto.graph.node)
    plan = build(trt, proto.SerializeToString(), shapes, has_nodes)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(plan)
    os.replace(tmp, path)  # atomic: a concurrent reader sees a whole engine or none
    return plan, path


class Backend:
    """One TensorRT engine and execution context on one CUDA device."""

    name = "tensorrt"

    def __init__(self, source: Any, device: Any, stream: Any, strict: bool, policy: Any,
                 options: Any):
        options = _options(options)
        if not source.is_engine and not has_builder():
            found = runtime_module(missing_ok=True)
            raise Error(
                "InferenceSession(backend='tensorrt'): building an engine from an ONNX model needs "
                "the full tensorrt package with a builder"
                + (f" (only {found.__name__} {found.__version__}, a runtime without a builder, is "
                   "importable)" if found is not None else " (no TensorRT is importable)")
                + "; build the engine elsewhere (trtexec --onnx=... --versionCompatible) and pass "
                "it, or use backend='onnxruntime'")
        if device.kind != "cuda":
            raise InvalidArgumentError(f"InferenceSession(backend='tensorrt') runs on a CUDA device, "
                                       f"not {device}")
        self.device = device
        self._stream = stream.handle
        self.cache_path = None
        with device:
            if source.is_engine:
                trt, plan = runtime_module(), source.data
            else:
                trt = importlib.import_module("tensorrt")
                plan, self.cache_path = _cached_plan(source, device, policy, options)
            self._trt = trt
            self.runtime, self.engine, self._log = deserialize(trt, plan)
            self.context = self.engine.create_execution_context()
        from .session import TensorInfo
        io = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in io}

        def info(n: str) -> Any:
            dt = _DTYPES.get(str(self.engine.get_tensor_dtype(n)).rsplit(".", 1)[-1])
            return TensorInfo(n, dt, tuple(None if d < 0 else d
                                           for d in self.engine.get_tensor_shape(n)))

        self.inputs = [info(n) for n in io if is_input[n]]
        self.outputs = [info(n) for n in io if not is_input[n]]

    def placement(self) -> None:
        return None

    def run(self, feeds: list, names: tuple, symbols: dict, key: tuple,
            allocate: Callable) -> list:
        ctx, log = self.context, self._log
        del log.errors[:]
        for f in feeds:
            if not ctx.set_input_shape(f.name, f.shape):
                raise InvalidArgumentError(f"InferenceSession.run: input {f.name!r}: shape {f.shape} "
                                           f"is outside the engine's profile: {'; '.join(log.errors)}")
            ctx.set_tensor_address(f.name, f.ptr)
        outs = {}
        for t in self.outputs:  # TensorRT writes every output: each needs memory
            outs[t.name] = a = allocate(tuple(ctx.get_tensor_shape(t.name)), t.dtype)
            ctx.set_tensor_address(t.name, a.ptr)
        if not ctx.execute_async_v3(self._stream):
            raise Error(f"InferenceSession (tensorrt): enqueue failed: "
                        f"{'; '.join(log.errors) or 'no message'}")
        return [outs[n] for n in names]
