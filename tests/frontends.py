"""Calls one op through one frontend, generically from its op spec: the one module the op
tests (tests/ops, the ``frontend`` fixture) and the fuzz suite (tests/fuzz/_child.py) run
frontends with. Every frontend is called by the OPS.md signature they all follow: required
inputs positionally, present optional ones and the attributes by keyword, the policy as
``policy=``; results are mapped back to the spec's output names.

Two layers:

``run(frontend, spec, arrays, attrs, ...) -> Call``: the raw call, for inputs already in the
frontend's containers (numpy or torch for native, jax arrays, torch tensors, numpy for ONNX
Runtime, CUDA torch tensors for TensorRT) and attribute values passed exactly as given (the
fuzz suite's hostile ones included). ``spec`` may be a backward spec for the native frontend
(its ``<op>_backward`` function). With ``cotangents`` (jax, torch) it also takes the vjp of the
present float results: the gradients ``"d" + input`` of every present float rows /
parameter input, and the cotangents used, rounded to each result's dtype, as float64.

``FRONTENDS[name].call(op, *inputs, dtype=, device=, policy=, **attrs)`` and ``.grad(...,
cotangents=[...])``: the op tests' layer over ``run``: numpy inputs in spec order (``None``:
absent optional input) converted to ``dtype`` (rope's "float or float32" tables to
``table_dtype``; integer inputs keep theirs), results as float64 numpy (integer results
int64) in spec order with their dtype names in ``.dtypes``, every result's shape and dtype
checked against the spec. A frontend that cannot run a case (not installed, a dtype it has
no container for, no such device) skips it, saying why.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import inspect
from typing import Any, Callable, Mapping, NamedTuple

import numpy as np

from xpuruntime import _spec

from helpers import dtype_name, to_numpy
from references import differentiable

UNSET = object()  # no policy= argument at all (None is a value: "the default rule")


# ---- spec-generic pieces ------------------------------------------------------------------------

def public_args(spec, values) -> tuple[list, dict]:
    """(positional, keyword) arguments of a public function: required inputs in order,
    present optional ones by name (the signature every frontend shares)."""
    pos = [v for s, v in zip(spec.inputs, values) if not s.optional]
    kw = {s.name: v for s, v in zip(spec.inputs, values) if s.optional and v is not None}
    return pos, kw


def present_results(spec, inputs) -> list[int]:
    """Indices of the spec's results that exist for these inputs."""
    return [j for j in spec.result_indices if spec.outputs[j].present_if is None
            or inputs[spec.outputs[j].present_if] is not None]


def returned(spec, inputs, saved: bool = False) -> list[str]:
    """Names of the outputs a public function returns, in order: a backward's gradients;
    a forward's present results (and with ``saved``, its saved statistics)."""
    if spec.direction == _spec.BACKWARD:
        return list(spec.output_names)
    return [o.name for o in spec.outputs
            if (o.present_if is None or inputs[o.present_if] is not None)
            and (o.use == "result" or saved)]


def _as_tuple(r) -> tuple:
    return tuple(r) if isinstance(r, (tuple, list)) else (r,)


class Call(NamedTuple):
    """What ``run`` returns."""
    outputs: dict            # output name -> the frontend's array
    grads: dict | None       # "d" + input -> the frontend's array (with cotangents)
    cotangents: dict | None  # "d" + output -> float64 numpy, as rounded to the output's dtype
    dropped: tuple = ()      # attributes the called function does not take (not passed)


Cotangents = Mapping[str, Any] | Callable[[str, tuple], Any]


def _cotangent(cotangents: Cotangents, name: str, shape: tuple):
    """The cotangent given for result ``name`` (a mapping by result name, or a function of
    (name, shape)); None for none."""
    if callable(cotangents):
        return cotangents(name, tuple(shape))
    return cotangents.get(name)


def _float_results(spec, names) -> list[str]:
    return [n for n in names if spec.outputs[spec.output_names.index(n)].dtype != "i32"]


def _keywords(params, attrs: Mapping, policy) -> tuple[dict, tuple]:
    """(keyword arguments, attributes a function of these ``params`` does not take): a
    native backward takes only the attributes its kernel reads."""
    kw = {k: v for k, v in attrs.items() if k in params}
    if policy is not UNSET:
        kw["policy"] = policy
    return kw, tuple(k for k in attrs if k not in params)


def _diff_indices(spec, arrays) -> list[int]:
    """Indices of the inputs a vjp differentiates (``references.differentiable``)."""
    wanted = differentiable(spec, {s.name for s, a in zip(spec.inputs, arrays) if a is not None})
    return [k for k, s in enumerate(spec.inputs) if s.name in wanted]


# ---- the raw calls ------------------------------------------------------------------------------

def _native(spec, arrays, attrs, policy, saved, **_):
    from xpuruntime import ops
    fn = getattr(ops, spec.op if spec.direction == _spec.FORWARD else f"{spec.op}_backward")
    params = inspect.signature(fn).parameters
    pos, kw = public_args(spec, arrays)
    extra, dropped = _keywords(params, attrs, policy)
    saved = saved and spec.direction == _spec.FORWARD and "return_stats" in params
    if saved:
        kw["return_stats"] = True
    out = _as_tuple(fn(*pos, **kw, **extra))
    names = returned(spec, arrays, saved)
    if len(out) != len(names):
        raise AssertionError(f"harness: {len(out)} results for outputs {names}")
    return Call(dict(zip(names, out)), None, None, dropped)


def _jax(spec, arrays, attrs, policy, jit, cotangents, **_):
    import jax
    import jax.numpy as jnp
    import xpuruntime.jax as xj
    fn = getattr(xj, spec.op)
    extra, dropped = _keywords(inspect.signature(fn).parameters, attrs, policy)
    names = returned(spec, arrays)
    diff = _diff_indices(spec, arrays) if cotangents else []

    def f(*diff_values):
        full = list(arrays)
        for k, v in zip(diff, diff_values):
            full[k] = v
        pos, kw = public_args(spec, full)
        return _as_tuple(fn(*pos, **kw, **extra))

    f = jax.jit(f) if jit else f  # (the vjp of a jitted function runs its backward jitted too)
    if not diff:
        return Call(dict(zip(names, f())), None, None, dropped)
    out, back = jax.vjp(f, *[arrays[k] for k in diff])
    floats = set(_float_results(spec, names))
    cts, used = [], {}
    for n, o in zip(names, out):
        c = _cotangent(cotangents, n, o.shape) if n in floats else None
        if c is None:
            cts.append(np.zeros(o.shape, dtype=o.dtype if n in floats else jax.dtypes.float0))
            continue
        c = jnp.asarray(np.asarray(c, dtype=np.float32)).astype(o.dtype)
        cts.append(c)
        used["d" + n] = np.asarray(c.astype(jnp.float32), dtype=np.float64)
    grads = back(tuple(cts))
    return Call(dict(zip(names, out)), {f"d{spec.inputs[k].name}": g for k, g in zip(diff, grads)},
                used, dropped)


def _torch(spec, arrays, attrs, policy, cotangents, **_):
    import torch
    import xpuruntime.interop.torch as xt
    fn = getattr(xt, spec.op)
    extra, dropped = _keywords(inspect.signature(fn).parameters, attrs, policy)
    diff = _diff_indices(spec, arrays)
    if not cotangents or not all(arrays[k].is_floating_point() for k in diff):
        diff = []  # (a case that gives a float operand an integer dtype: no gradient)
    arrays = list(arrays)
    for k in diff:
        arrays[k] = arrays[k].detach().requires_grad_(True)
    pos, kw = public_args(spec, arrays)
    names = returned(spec, arrays)
    outs = dict(zip(names, _as_tuple(fn(*pos, **kw, **extra))))
    if not diff:
        return Call({k: v.detach() for k, v in outs.items()}, None, None, dropped)
    pairs, used = [], {}
    for n in _float_results(spec, names):
        c = _cotangent(cotangents, n, tuple(outs[n].shape))
        if c is not None and outs[n].requires_grad:
            c = torch.as_tensor(np.asarray(c, dtype=np.float32)).to(outs[n].device, outs[n].dtype)
            pairs.append((outs[n], c))
            used["d" + n] = c.double().cpu().numpy()
    leaves = [arrays[k] for k in diff]
    g = (torch.autograd.grad([o for o, _ in pairs], leaves, [c for _, c in pairs],
                             allow_unused=True) if pairs else [None] * len(diff))
    grads = {f"d{spec.inputs[k].name}": torch.zeros_like(leaf) if gk is None else gk
             for k, leaf, gk in zip(diff, leaves, g)}
    return Call({k: v.detach() for k, v in outs.items()}, grads, used, dropped)


# ---- ONNX models: ONNX Runtime and TensorRT ------------------------------------------------------

# ONNX element types (TensorProto.DataType) by dtype name.
ONNX_TYPES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
              "bool": 9, "float16": 10, "float64": 11, "complex64": 14, "bfloat16": 16}


def onnx_attributes(spec, attrs: Mapping, policy=UNSET) -> list:
    """Python attribute values (by keyword) as ONNX AttributeProtos of the types a model
    would store: bool and int as INT, float as FLOAT, str as STRING."""
    from onnx import helper
    by_name = {a.name: a.onnx_name for a in spec.attrs}
    out = [helper.make_attribute(by_name.get(k, k), int(v) if isinstance(v, bool) else v)
           for k, v in attrs.items()]
    if policy is not UNSET and policy is not None:
        out.append(helper.make_attribute("policy", policy))
    return out


def node_model(spec, arrays, attributes=(), *, outputs=None, name="node0", typed_outputs=True):
    """A one-node ONNX model of ``spec``'s op type over ``arrays`` (numpy, or anything with
    ``shape`` and ``dtype``; None: an absent optional input, an empty name) with
    ``attributes`` (AttributeProtos). Its graph outputs are ``outputs`` (default: the
    results that exist for these inputs), typed by the spec's dtype rule, or left untyped
    (the op's own type inference) with ``typed_outputs=False``."""
    import onnx
    from onnx import helper

    from xpuruntime.interop import onnxruntime as xo
    dtypes = [None if a is None else dtype_name(a) for a in arrays]
    names = [s.name if a is not None else "" for s, a in zip(spec.inputs, arrays)]
    while names and not names[-1]:
        names.pop()
    if outputs is None:
        outputs = [spec.outputs[j].name for j in present_results(spec, arrays)]
    graph_in = [helper.make_tensor_value_info(s.name, ONNX_TYPES[d], list(a.shape))
                for s, a, d in zip(spec.inputs, arrays, dtypes) if a is not None]
    if typed_outputs:
        # (Every output typed, one absent by the spec too: a model may name it by mistake.)
        out_dtypes = dict(zip(spec.output_names, _spec.output_dtypes(
            spec, dtypes, input_present=[True] * len(arrays))))
        graph_out = [helper.make_tensor_value_info(n, ONNX_TYPES[out_dtypes[n]], None)
                     for n in outputs]
    else:
        graph_out = [onnx.ValueInfoProto(name=n) for n in outputs]
    node = helper.make_node(spec.onnx_type, names, outputs, domain=xo.DOMAIN, name=name)
    node.attribute.extend(attributes)
    return xo.make_model(helper.make_graph([node], spec.op, graph_in, graph_out))


def _ort_value(a: np.ndarray):
    import onnxruntime as ort
    a = np.array(a, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    if dtype_name(a) == "bfloat16":  # no numpy type for ORT: the bits as uint16
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(a.view(np.uint16),
                                                               ONNX_TYPES["bfloat16"])
    return ort.OrtValue.ortvalue_from_numpy(a)


def _from_ort_value(v) -> np.ndarray:
    if v.data_type() != "tensor(bfloat16)":
        return v.numpy()
    import ml_dtypes
    raw = np.empty(v.shape(), dtype=np.uint16)
    ctypes.memmove(raw.ctypes.data, v.data_ptr(), raw.nbytes)  # bytes out through a uint16 view
    return raw.view(ml_dtypes.bfloat16)


def _onnxruntime(spec, arrays, attrs, policy, onnx_attrs=None, device="cpu", checked=True, **_):
    """A one-node model (untyped outputs) in an ONNX Runtime session of the custom-op
    library, fed through IO binding (bfloat16 included). ``onnx_attrs``: AttributeProtos
    used as they are instead of ``attrs`` and ``policy``. ``checked=False``: a plain
    ``onnxruntime.InferenceSession`` with the library registered, without xpuruntime's
    Python model check (the C++ library's own attribute parsing alone)."""
    import onnxruntime as ort

    from xpuruntime.interop import onnxruntime as xo
    attributes = onnx_attributes(spec, attrs, policy) if onnx_attrs is None else onnx_attrs
    model = node_model(spec, arrays, attributes, typed_outputs=False)
    options = ort.SessionOptions()
    options.log_severity_level = 4  # refusals are judged by the caller, not logged
    provider = "CPUExecutionProvider" if device == "cpu" else "CUDAExecutionProvider"
    if checked:
        session = xo.inference_session(model, sess_options=options, providers=[provider])
    else:
        session = ort.InferenceSession(model.SerializeToString(), xo.session_options(options),
                                       providers=[provider])
    binding = session.io_binding()
    for s, a in zip(spec.inputs, arrays):
        if a is not None:
            binding.bind_ortvalue_input(s.name, _ort_value(a))
    names = returned(spec, arrays)
    for n in names:
        binding.bind_output(n)
    session.run_with_iobinding(binding)
    return Call({n: _from_ort_value(v) for n, v in zip(names, binding.get_outputs())}, None, None)


@functools.cache
def _tensorrt_runtime():
    import tensorrt as trt

    from xpuruntime.interop import tensorrt as xtrt
    xtrt.load(trt.get_plugin_registry())
    return trt, trt.Logger(trt.Logger.WARNING)


def _tensorrt(spec, arrays, attrs, policy, **_):
    """A one-node model built into a TensorRT engine by its ONNX parser with the plugin
    library (strongly typed), run on CUDA torch tensors."""
    import torch

    from xpuruntime.interop import tensorrt as xtrt
    trt, logger = _tensorrt_runtime()
    model = xtrt.onnx_for_tensorrt(node_model(spec, arrays, onnx_attributes(spec, attrs, policy)))
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    assert parser.parse(model.SerializeToString()), [str(parser.get_error(i))
                                                      for i in range(parser.num_errors)]
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    assert plan is not None, f"{spec.op}: TensorRT built no engine"
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    context = engine.create_execution_context()
    to_torch = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
                trt.DataType.BF16: torch.bfloat16, trt.DataType.INT32: torch.int32,
                trt.DataType.INT64: torch.int64}
    device = next(a.device for a in arrays if a is not None)
    for s, t in zip(spec.inputs, arrays):
        if t is not None:
            context.set_input_shape(s.name, tuple(t.shape))
            context.set_tensor_address(s.name, t.data_ptr())
    outs = {}
    for n in returned(spec, arrays):
        t = torch.empty(tuple(context.get_tensor_shape(n)), device=device,
                        dtype=to_torch[engine.get_tensor_dtype(n)])
        context.set_tensor_address(n, t.data_ptr())
        outs[n] = t
    stream = torch.cuda.current_stream()
    assert context.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    return Call(outs, None, None)


RAW = {"native": _native, "jax": _jax, "torch": _torch, "onnxruntime": _onnxruntime,
       "tensorrt": _tensorrt}


def run(frontend: str, spec, arrays, attrs: Mapping | None = None, *, policy=UNSET,
        saved: bool = False, jit: bool = True, cotangents: Cotangents | None = None,
        onnx_attrs=None, device: str = "cpu", checked: bool = True) -> Call:
    """One call of ``spec`` through ``frontend`` (see the module docstring). ``saved``:
    a native forward also returns its saved statistics; ``jit``: jax under ``jax.jit``;
    ``cotangents`` (jax, torch): take the vjp too, by result name or a function of (name,
    shape); ``onnx_attrs``: the node's attributes as AttributeProtos (ONNX Runtime);
    ``device``: where ONNX Runtime runs; ``checked=False``: ONNX Runtime without
    xpuruntime's Python model check."""
    if cotangents is not None and frontend not in ("jax", "torch"):
        raise AssertionError(f"harness: {frontend} has no autodiff")
    return RAW[frontend](spec, list(arrays), dict(attrs or {}), policy, saved=saved, jit=jit,
                         cotangents=cotangents, onnx_attrs=onnx_attrs, device=device,
                         checked=checked)


# ---- the op tests' layer ------------------------------------------------------------------------

class Results(tuple):
    """The results of one call (float64 / int64 numpy) with ``dtypes``: their dtype names."""

    def __new__(cls, arrays, dtypes):
        self = super().__new__(cls, arrays)
        self.dtypes = tuple(dtypes)
        return self


def _as_numpy(a) -> np.ndarray:
    if "int" in dtype_name(a):
        return np.asarray(a.cpu() if hasattr(a, "cpu") else a).astype(np.int64)
    return to_numpy(a)


def _results(arrays) -> Results:
    return Results([_as_numpy(a) for a in arrays], [dtype_name(a) for a in arrays])


def input_dtypes(spec, inputs, dtype, table_dtype):
    """The dtype name each input runs in (``None`` for an absent one): a float32 input
    of a float rule takes ``dtype`` (``table_dtype`` for "float or float32"); any other
    input keeps its own dtype."""
    rule = {"float": dtype, "float_or_f32": table_dtype or dtype}
    out = []
    for s, a in zip(spec.inputs, inputs):
        own = None if a is None else np.asarray(a).dtype.name
        out.append(rule[s.dtype] if own == "float32" and s.dtype in rule else own)
    return out


def _check(spec, inputs, dtypes, attrs, results):
    """The results' shapes and dtypes are the spec's for these inputs."""
    shapes = [None if a is None else np.shape(a) for a in inputs]
    attrs = _spec.normalize_attrs(spec, attrs)
    want_shapes = _spec.output_shapes(spec, shapes, attrs)
    want_dtypes = _spec.output_dtypes(spec, dtypes)
    present = present_results(spec, inputs)
    assert len(results) == len(present), (spec.op, len(results), len(present))
    for j, r, d in zip(present, results, results.dtypes):
        name = spec.outputs[j].name
        assert tuple(r.shape) == tuple(want_shapes[j]), (
            f"{spec.op}: result '{name}' has shape {tuple(r.shape)}, the spec {want_shapes[j]}")
        assert d == want_dtypes[j], f"{spec.op}: result '{name}' is {d}, the spec {want_dtypes[j]}"


def _torch_tensor(a, dtype, device):
    import torch
    # (np.ascontiguousarray would make a 0-d array 1-d.)
    return torch.from_numpy(np.array(a, order="C")).to(device=device, dtype=getattr(torch, dtype))


def _importable(*modules: str) -> str | None:
    """None, or why not: pytest.importorskip's wording, which scripts/test-wheel looks for."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            return f"could not import '{module}': not installed"
    return None


def _cuda_reason(device: str) -> str | None:
    if device == "cpu":
        return None
    from xpuruntime._native import core
    if not core.built_with_cuda:
        return "this build has no CUDA kernels"
    if importlib.util.find_spec("torch") is None:
        return "CUDA inputs are made with torch: " + _importable("torch")
    import torch
    return None if torch.cuda.is_available() else "no CUDA device visible to torch"


class Frontend:
    """One frontend for the op tests; subclasses say what it needs (``missing``,
    ``unsupported``) and make its containers (``arrays``)."""

    name = ""
    autodiff = False

    def missing(self) -> str | None:
        """Why this frontend cannot run at all here (None: it can)."""
        return None

    def unsupported(self, dtype: str, device: str) -> str | None:
        """Why it cannot run this dtype on this device (None: it can)."""
        return None

    def require(self, dtype: str, device: str):
        """Skips the test, saying why, where this frontend cannot run the case."""
        reason = self.missing() or self.unsupported(dtype, device)
        if reason:
            import pytest
            pytest.skip(f"{self.name}: {reason}")

    def arrays(self, inputs, dtypes, device) -> list:
        """The numpy inputs as this frontend's containers of ``dtypes`` on ``device``."""
        return [None if a is None else _torch_tensor(a, d, device) for a, d in zip(inputs, dtypes)]

    def _prepare(self, op, inputs, dtype, table_dtype, device):
        self.require(dtype, device)
        spec = _spec.get(op)
        inputs = list(inputs) + [None] * (len(spec.inputs) - len(inputs))
        dtypes = input_dtypes(spec, inputs, dtype, table_dtype)
        return spec, inputs, dtypes, self.arrays(inputs, dtypes, device)

    def call(self, op, *inputs, dtype="float32", table_dtype=None, device="cpu", policy=None,
             **attrs) -> Results:
        """The forward's present results (see the module docstring)."""
        spec, inputs, dtypes, arrays = self._prepare(op, inputs, dtype, table_dtype, device)
        out = run(self.name, spec, arrays, attrs, policy=policy, device=device).outputs
        results = _results(list(out.values()))
        _check(spec, inputs, dtypes, attrs, results)
        return results

    def grad(self, op, *inputs, cotangents, dtype="float32", table_dtype=None, device="cpu",
             policy=None, **attrs) -> tuple[Results, dict]:
        """(results, {"d" + input: gradient}) for one cotangent per present result (None
        for one that gets none, e.g. integer indices)."""
        if not self.autodiff:
            import pytest
            pytest.skip(f"{self.name}: no autodiff")
        spec, inputs, dtypes, arrays = self._prepare(op, inputs, dtype, table_dtype, device)
        names = [spec.outputs[j].name for j in present_results(spec, inputs)]
        by_name = dict(zip(names, cotangents))
        results, grads = self._grad(spec, arrays, attrs, policy, by_name, device)
        results = _results(results)
        _check(spec, inputs, dtypes, attrs, results)
        return results, {k: to_numpy(g) for k, g in grads.items()}

    def _grad(self, spec, arrays, attrs, policy, cotangents, device):
        c = run(self.name, spec, arrays, attrs, policy=policy, cotangents=cotangents, device=device)
        return list(c.outputs.values()), c.grads

    def __repr__(self):
        return self.name


class Native(Frontend):
    """``xpuruntime.ops``: numpy arrays on the CPU where numpy has the dtype, torch
    tensors otherwise (bfloat16, CUDA); gradients by the ``<op>_backward`` functions,
    chained the way the spec conventions say."""

    name = "native"
    autodiff = True

    def unsupported(self, dtype, device):
        if dtype == "bfloat16" and device == "cpu" and importlib.util.find_spec("torch") is None:
            return "bfloat16 inputs are made with torch: " + _importable("torch")
        return _cuda_reason(device)

    def arrays(self, inputs, dtypes, device):
        if device == "cpu" and "bfloat16" not in dtypes:
            return [None if a is None else np.asarray(a).astype(d) for a, d in zip(inputs, dtypes)]
        return super().arrays(inputs, dtypes, device)

    def _grad(self, spec, arrays, attrs, policy, cotangents, device):
        outputs = run("native", spec, arrays, attrs, policy=policy, saved=True).outputs
        bwd = _spec.get(spec.op, _spec.BACKWARD)
        # A backward takes "d" + result for the gradient of each result (op_spec.h).
        values = {**dict(zip(spec.input_names, arrays)), **outputs}
        as_numpy = isinstance(arrays[0], np.ndarray)  # cotangents in the inputs' container
        for name, ct in cotangents.items():
            if ct is not None:
                d = dtype_name(outputs[name])
                values["d" + name] = (np.asarray(ct).astype(d) if as_numpy
                                      else _torch_tensor(ct, d, device))
        glue = NATIVE_GLUE.get(spec.op)
        if glue:
            values = glue(values)
        grads = run("native", bwd, [values.get(n) for n in bwd.input_names], attrs,
                    policy=policy).outputs
        if glue:
            grads = glue(values, grads)
        wanted = differentiable(spec, {n for n, a in zip(spec.input_names, arrays) if a is not None})
        names = [spec.outputs[j].name for j in present_results(spec, arrays)]
        return ([outputs[n] for n in names], {k: v for k, v in grads.items() if k[1:] in wanted})


def _rms_norm_glue(values, grads=None):
    """With a residual, rms_norm's backward normalizes h (not x) and x and the residual
    share its dx (torch's _grad/rms_norm.py does the same)."""
    if values.get("residual") is None:
        return values if grads is None else grads
    if grads is None:
        return {**values, "x": values["h"]}
    return {**grads, "dresidual": grads["dx"]}


NATIVE_GLUE = {"rms_norm": _rms_norm_glue}


class Jax(Frontend):
    """``xpuruntime.jax`` under ``jax.jit``; gradients by ``jax.vjp``."""

    name = "jax"
    autodiff = True

    def missing(self):
        return _importable("jax")

    def unsupported(self, dtype, device):
        if device == "cpu":
            return None
        import jax
        try:
            return None if jax.devices("gpu") else "no GPU visible to jax"
        except RuntimeError:
            return "no GPU visible to jax"

    def arrays(self, inputs, dtypes, device):
        import jax
        import jax.numpy as jnp
        dev = jax.devices("cpu" if device == "cpu" else "gpu")[0]
        out = []
        for a, d in zip(inputs, dtypes):
            if a is not None and d == "int64" and not jax.config.jax_enable_x64:
                d = "int32"  # jax without x64 has no int64 arrays
            out.append(None if a is None else jax.device_put(jnp.asarray(a, dtype=d), dev))
        return out


class Torch(Frontend):
    """``xpuruntime.interop.torch`` (the registered torch ops); gradients by autograd."""

    name = "torch"
    autodiff = True

    def missing(self):
        return _importable("torch")

    def unsupported(self, dtype, device):
        return _cuda_reason(device)


class OnnxRuntime(Frontend):
    """A one-node ONNX model of the op's type in an ONNX Runtime session (numpy feeds,
    bfloat16 as ml_dtypes): the CPU execution provider, or the CUDA one where this
    onnxruntime has it."""

    name = "onnxruntime"

    def missing(self):
        reason = _importable("onnxruntime", "onnx")
        if reason:
            return reason
        from xpuruntime.interop import onnxruntime as xo
        return None if xo.library_path(missing_ok=True) else "libxpuruntime_ort.so is not built"

    def unsupported(self, dtype, device):
        if dtype == "bfloat16" and importlib.util.find_spec("ml_dtypes") is None:
            return "bfloat16 feeds are made with ml_dtypes: " + _importable("ml_dtypes")
        if device != "cpu":
            import onnxruntime
            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                return "this onnxruntime has no CUDA execution provider"
            return _cuda_reason(device)
        return None

    def arrays(self, inputs, dtypes, device):
        out = []
        for a, d in zip(inputs, dtypes):
            if d == "bfloat16":
                import ml_dtypes
                d = ml_dtypes.bfloat16
            out.append(None if a is None else np.asarray(a).astype(d))
        return out


class TensorRT(Frontend):
    """A one-node ONNX model built into a TensorRT engine by its ONNX parser with the
    plugin library, run on torch CUDA tensors. Needs the full ``tensorrt`` (a builder)
    and a CUDA device; CUDA only."""

    name = "tensorrt"

    def missing(self):
        if importlib.util.find_spec("xpuruntime.interop.tensorrt") is None:
            return "this xpuruntime has no TensorRT frontend"
        from xpuruntime.interop import tensorrt as xtrt
        if xtrt.library_path(missing_ok=True) is None:
            return "libxpuruntime_trt.so is not built"
        reason = _importable("tensorrt", "onnx", "torch")
        if reason:
            return reason
        import tensorrt
        return None if hasattr(tensorrt, "Builder") else "the importable tensorrt has no builder"

    def unsupported(self, dtype, device):
        return "TensorRT runs on CUDA devices only" if device == "cpu" else _cuda_reason(device)


FRONTENDS = {f.name: f for f in (Native(), Jax(), Torch(), OnnxRuntime(), TensorRT())}
