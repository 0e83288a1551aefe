"""The frontends the op tests run through, behind one call signature.

``frontend.call(op, *inputs, dtype=, device=, policy=, **attrs)`` runs the forward of
``op`` on numpy ``inputs`` in spec order (``None``: an absent optional input) and
returns its present results as float64 numpy (integer results as int64) in spec
order, with their dtype names in ``.dtypes``; every result's shape and dtype are
checked against the op spec first. float32 inputs are converted to ``dtype``; those
whose rule is "float or float32" (rope's tables) to ``table_dtype`` (default
``dtype``); inputs of other dtypes (labels) keep theirs.

``frontend.grad(op, *inputs, cotangents=[...], ...)`` (frontends with ``autodiff``):
the results and ``{"d" + input: float64 numpy}`` for every float rows or parameter
input, the gradients of ``sum(result * cotangent)`` over the float results (the
native frontend runs its backward functions the way the spec conventions chain them).

A frontend that cannot run a case (not installed, a dtype it has no numpy type for,
no such device) skips it, saying why.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect

import numpy as np
import pytest

from xpuruntime import _spec

from helpers import dtype_name, to_numpy


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


def present_results(spec, inputs):
    """Indices of the spec's results that exist for these inputs."""
    return [j for j in spec.result_indices if spec.outputs[j].present_if is None
            or inputs[spec.outputs[j].present_if] is not None]


def differentiable(spec, inputs):
    """Names of the inputs the gradient tests ask for: present float rows and parameters."""
    return [s.name for s, a in zip(spec.inputs, inputs)
            if a is not None and s.role in ("rows", "parameter") and s.dtype == "float"]


def public_args(spec, values):
    """(positional, keyword) arguments of a public function: required inputs in order,
    present optional ones by name (the signature every frontend shares)."""
    pos = [v for s, v in zip(spec.inputs, values) if not s.optional]
    kw = {s.name: v for s, v in zip(spec.inputs, values) if s.optional and v is not None}
    return pos, kw


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


class Frontend:
    """One frontend; subclasses implement ``_run`` (and ``_grad`` where ``autodiff``)."""

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
            pytest.skip(f"{self.name}: {reason}")

    def call(self, op, *inputs, dtype="float32", table_dtype=None, device="cpu", policy=None,
             **attrs) -> Results:
        """The forward's present results (see the module docstring)."""
        self.require(dtype, device)
        spec = _spec.get(op)
        inputs = list(inputs) + [None] * (len(spec.inputs) - len(inputs))
        dtypes = input_dtypes(spec, inputs, dtype, table_dtype)
        results = self._run(spec, inputs, dtypes, device, policy, attrs)
        _check(spec, inputs, dtypes, attrs, results)
        return results

    def grad(self, op, *inputs, cotangents, dtype="float32", table_dtype=None, device="cpu",
             policy=None, **attrs) -> tuple[Results, dict]:
        """(results, {"d" + input: gradient}) for one cotangent per present result (None
        for one that gets none, e.g. integer indices)."""
        if not self.autodiff:
            pytest.skip(f"{self.name}: no autodiff")
        self.require(dtype, device)
        spec = _spec.get(op)
        inputs = list(inputs) + [None] * (len(spec.inputs) - len(inputs))
        dtypes = input_dtypes(spec, inputs, dtype, table_dtype)
        results, grads = self._grad(spec, inputs, dtypes, device, policy, attrs, list(cotangents))
        _check(spec, inputs, dtypes, attrs, results)
        return results, grads

    def __repr__(self):
        return self.name


# ---- native: xpuruntime.ops ---------------------------------------------------------------------

def _torch_tensor(a, dtype, device, grad=False):
    import torch
    # (np.ascontiguousarray would make a 0-d array 1-d.)
    t = torch.from_numpy(np.array(a, order="C")).to(device=device, dtype=getattr(torch, dtype))
    return t.requires_grad_() if grad else t


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


class Native(Frontend):
    """``xpuruntime.ops``: numpy arrays on the CPU where numpy has the dtype, torch
    tensors otherwise (bfloat16, CUDA); backward by the ``<op>_backward`` functions."""

    name = "native"
    autodiff = True

    def unsupported(self, dtype, device):
        if dtype == "bfloat16" and device == "cpu" and importlib.util.find_spec("torch") is None:
            return "bfloat16 inputs are made with torch: " + _importable("torch")
        return _cuda_reason(device)

    @staticmethod
    def _arrays(inputs, dtypes, device, numpy_ok):
        if numpy_ok:
            return [None if a is None else np.asarray(a).astype(d) for a, d in zip(inputs, dtypes)]
        return [None if a is None else _torch_tensor(a, d, device) for a, d in zip(inputs, dtypes)]

    def _forward(self, spec, arrays, policy, attrs, all_outputs):
        """Every output of the spec (None: absent or not asked for), in spec order."""
        from xpuruntime import ops
        fn = getattr(ops, spec.op)
        pos, kw = public_args(spec, arrays)
        if all_outputs and "return_stats" in inspect.signature(fn).parameters:
            kw["return_stats"] = True
        out = fn(*pos, **kw, **attrs, policy=policy)
        out = list(out) if isinstance(out, tuple) else [out]
        aligned = []
        for j, o in enumerate(spec.outputs):
            present = o.present_if is None or arrays[o.present_if] is not None
            wanted = o.use == "result" or "return_stats" in kw
            aligned.append(out.pop(0) if present and wanted else None)
        return aligned

    def _results(self, spec, arrays, outputs):
        picked = [outputs[j] for j in present_results(spec, arrays)]
        return Results([_as_numpy(o) for o in picked], [dtype_name(o) for o in picked])

    def _run(self, spec, inputs, dtypes, device, policy, attrs):
        arrays = self._arrays(inputs, dtypes, device, self.numpy_ok(dtypes, device))
        return self._results(spec, arrays, self._forward(spec, arrays, policy, attrs, False))

    @staticmethod
    def numpy_ok(dtypes, device):
        """Whether the call runs on numpy arrays (else torch tensors)."""
        return device == "cpu" and "bfloat16" not in dtypes

    def _grad(self, spec, inputs, dtypes, device, policy, attrs, cotangents):
        from xpuruntime import ops
        numpy_ok = self.numpy_ok(dtypes, device)
        arrays = self._arrays(inputs, dtypes, device, numpy_ok)
        outputs = self._forward(spec, arrays, policy, attrs, True)
        bwd = _spec.get(spec.op, _spec.BACKWARD)
        # A backward takes "d" + result for the gradient of each result (op_spec.h).
        values = {**dict(zip(spec.input_names, arrays)),
                  **{o.name: v for o, v in zip(spec.outputs, outputs)}}
        for j, ct in zip(present_results(spec, arrays), cotangents):
            if ct is not None:
                like = outputs[j]
                values["d" + spec.outputs[j].name] = self._arrays(
                    [ct], [dtype_name(like)], device, numpy_ok)[0]
        glue = NATIVE_GLUE.get(spec.op)
        if glue:
            values = glue(values)
        fn = getattr(ops, f"{spec.op}_backward")
        params = inspect.signature(fn).parameters
        pos, kw = public_args(bwd, [values.get(name) for name in bwd.input_names])
        grads = fn(*pos, **kw, **{k: v for k, v in attrs.items() if k in params}, policy=policy)
        grads = grads if isinstance(grads, tuple) else (grads,)
        out = {o.name: to_numpy(g) for o, g in zip(bwd.outputs, grads)}
        if glue:
            out = glue(values, out)
        wanted = differentiable(spec, arrays)
        return (self._results(spec, arrays, outputs),
                {k: v for k, v in out.items() if k[1:] in wanted})


def _rms_norm_glue(values, grads=None):
    """With a residual, rms_norm's backward normalizes h (not x) and x and the residual
    share its dx (torch's _grad/rms_norm.py does the same)."""
    if values.get("residual") is None:
        return values if grads is None else grads
    if grads is None:
        return {**values, "x": values["h"]}
    return {**grads, "dresidual": grads["dx"]}


NATIVE_GLUE = {"rms_norm": _rms_norm_glue}


# ---- jax: xpuruntime.jax under jax.jit ----------------------------------------------------------

class Jax(Frontend):
    """``xpuruntime.jax`` under ``jax.jit``; gradients by ``jax.grad``."""

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

    @staticmethod
    def _arrays(inputs, dtypes, device):
        import jax
        import jax.numpy as jnp
        dev = jax.devices("cpu" if device == "cpu" else "gpu")[0]
        out = []
        for a, d in zip(inputs, dtypes):
            if a is not None and d == "int64" and not jax.config.jax_enable_x64:
                d = "int32"  # jax without x64 has no int64 arrays
            out.append(None if a is None else jax.device_put(jnp.asarray(a, dtype=d), dev))
        return out

    @staticmethod
    def _fn(spec, present, policy, attrs):
        """The public op as a function of the present inputs only."""
        import xpuruntime.jax as xj

        def fn(*args):
            it = iter(args)
            values = [next(it) if p else None for p in present]
            pos, kw = public_args(spec, values)
            out = getattr(xj, spec.op)(*pos, **kw, **attrs, policy=policy)
            return out if isinstance(out, tuple) else (out,)
        return fn

    def _run(self, spec, inputs, dtypes, device, policy, attrs):
        import jax
        arrays = self._arrays(inputs, dtypes, device)
        fn = self._fn(spec, [a is not None for a in arrays], policy, attrs)
        out = jax.jit(fn)(*[a for a in arrays if a is not None])
        return Results([_as_numpy(o) for o in out], [dtype_name(o) for o in out])

    def _grad(self, spec, inputs, dtypes, device, policy, attrs, cotangents):
        import jax
        import jax.numpy as jnp
        arrays = self._arrays(inputs, dtypes, device)
        present = [a is not None for a in arrays]
        given = [a for a in arrays if a is not None]
        names = [n for n, a in zip(spec.input_names, arrays) if a is not None]
        wanted = differentiable(spec, arrays)
        argnums = tuple(k for k, n in enumerate(names) if n in wanted)
        fn = self._fn(spec, present, policy, attrs)
        cts = [None if c is None else jnp.asarray(c, jnp.float32) for c in cotangents]

        def loss(*args):
            out = fn(*args)
            total = sum(jnp.sum(r.astype(jnp.float32) * c) for r, c in zip(out, cts)
                        if c is not None)
            return total, out

        (_, out), grads = jax.jit(jax.value_and_grad(loss, argnums, has_aux=True))(*given)
        results = Results([_as_numpy(o) for o in out], [dtype_name(o) for o in out])
        return results, {"d" + names[k]: to_numpy(g) for k, g in zip(argnums, grads)}


# ---- torch: xpuruntime.interop.torch ------------------------------------------------------------

class Torch(Frontend):
    """``xpuruntime.interop.torch`` (the registered torch ops); gradients by autograd."""

    name = "torch"
    autodiff = True

    def missing(self):
        return _importable("torch")

    def unsupported(self, dtype, device):
        return _cuda_reason(device)

    @staticmethod
    def _tensors(spec, inputs, dtypes, device, wanted=()):
        return [None if a is None else _torch_tensor(a, d, device, s.name in wanted)
                for s, a, d in zip(spec.inputs, inputs, dtypes)]

    @staticmethod
    def _out(spec, tensors, policy, attrs):
        import xpuruntime.interop.torch as xt
        pos, kw = public_args(spec, tensors)
        out = getattr(xt, spec.op)(*pos, **kw, **attrs, policy=policy)
        return out if isinstance(out, tuple) else (out,)

    def _run(self, spec, inputs, dtypes, device, policy, attrs):
        out = self._out(spec, self._tensors(spec, inputs, dtypes, device), policy, attrs)
        return Results([_as_numpy(o) for o in out], [dtype_name(o) for o in out])

    def _grad(self, spec, inputs, dtypes, device, policy, attrs, cotangents):
        import torch
        wanted = differentiable(spec, inputs)
        tensors = self._tensors(spec, inputs, dtypes, device, wanted)
        out = self._out(spec, tensors, policy, attrs)
        pairs = [(o, _torch_tensor(c, dtype_name(o), device)) for o, c in zip(out, cotangents)
                 if c is not None]
        torch.autograd.backward([o for o, _ in pairs], [c for _, c in pairs])
        results = Results([_as_numpy(o) for o in out], [dtype_name(o) for o in out])
        grads = {"d" + s.name: None if t.grad is None else to_numpy(t.grad)
                 for s, t in zip(spec.inputs, tensors) if s.name in wanted}
        return results, grads


# ---- ONNX models: ONNX Runtime and TensorRT ---------------------------------------------------------

def node_model(spec, inputs, dtypes, policy, attrs):
    """A one-node ONNX model of ``spec``'s op type over ``inputs`` (concrete shapes) whose
    graph outputs are the results that exist for them."""
    from onnx import TensorProto, helper

    from xpuruntime.interop import onnxruntime as xo
    names = [s.name if a is not None else "" for s, a in zip(spec.inputs, inputs)]
    while names and not names[-1]:
        names.pop()
    results = present_results(spec, inputs)
    out_dtypes = _spec.output_dtypes(spec, dtypes)
    elem = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16,
            "bfloat16": TensorProto.BFLOAT16, "int32": TensorProto.INT32, "int64": TensorProto.INT64}
    graph_in = [helper.make_tensor_value_info(s.name, elem[d], list(np.shape(a)))
                for s, a, d in zip(spec.inputs, inputs, dtypes) if a is not None]
    graph_out = [helper.make_tensor_value_info(spec.outputs[j].name, elem[out_dtypes[j]], None)
                 for j in results]
    onnx_attrs = {}
    for a in spec.attrs:
        if a.name in attrs:
            v = attrs[a.name]
            onnx_attrs[a.onnx_name] = int(v) if isinstance(v, bool) else v
    if policy is not None:
        onnx_attrs["policy"] = policy
    node = helper.make_node(spec.onnx_type, names, [spec.outputs[j].name for j in results],
                            domain=xo.DOMAIN, name="node0", **onnx_attrs)
    return xo.make_model(helper.make_graph([node], spec.op, graph_in, graph_out))


class OnnxRuntime(Frontend):
    """A one-node ONNX model of the op's type in an ONNX Runtime session (numpy feeds):
    the CPU execution provider, or the CUDA one where this onnxruntime has it."""

    name = "onnxruntime"

    def missing(self):
        reason = _importable("onnxruntime", "onnx")
        if reason:
            return reason
        from xpuruntime.interop import onnxruntime as xo
        return None if xo.library_path(missing_ok=True) else "libxpuruntime_ort.so is not built"

    def unsupported(self, dtype, device):
        if dtype == "bfloat16":
            return "numpy has no bfloat16 to feed a session with"
        if device != "cpu":
            import onnxruntime
            if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
                return "this onnxruntime has no CUDA execution provider"
            return _cuda_reason(device)
        return None

    def _run(self, spec, inputs, dtypes, device, policy, attrs):
        from xpuruntime.interop import onnxruntime as xo
        provider = "CPUExecutionProvider" if device == "cpu" else "CUDAExecutionProvider"
        sess = xo.inference_session(node_model(spec, inputs, dtypes, policy, attrs),
                                    providers=[provider])
        feed = {s.name: np.asarray(a).astype(d)
                for s, a, d in zip(spec.inputs, inputs, dtypes) if a is not None}
        out = sess.run(None, feed)
        return Results([_as_numpy(o) for o in out], [o.dtype.name for o in out])


class TensorRT(Frontend):
    """A one-node ONNX model built into a TensorRT engine by its ONNX parser with the
    plugin library (strongly typed), run on torch CUDA tensors. Needs the full
    ``tensorrt`` (a builder) and a CUDA device; CUDA only."""

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

    @functools.cached_property
    def _trt(self):
        import tensorrt as trt

        from xpuruntime.interop import tensorrt as xtrt
        xtrt.load(trt.get_plugin_registry())
        return trt, trt.Logger(trt.Logger.WARNING)

    def _run(self, spec, inputs, dtypes, device, policy, attrs):
        import torch

        from xpuruntime.interop import tensorrt as xtrt
        trt, logger = self._trt
        model = xtrt.onnx_for_tensorrt(node_model(spec, inputs, dtypes, policy, attrs))
        builder = trt.Builder(logger)
        network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        parser = trt.OnnxParser(network, logger)
        assert parser.parse(model.SerializeToString()), [str(parser.get_error(i))
                                                          for i in range(parser.num_errors)]
        plan = builder.build_serialized_network(network, builder.create_builder_config())
        assert plan is not None, f"{spec.op}: TensorRT built no engine"
        engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
        context = engine.create_execution_context()
        feeds = {s.name: _torch_tensor(a, d, device)
                 for s, a, d in zip(spec.inputs, inputs, dtypes) if a is not None}
        to_torch = {trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16,
                    trt.DataType.BF16: torch.bfloat16, trt.DataType.INT32: torch.int32,
                    trt.DataType.INT64: torch.int64}
        for name, t in feeds.items():
            context.set_input_shape(name, tuple(t.shape))
            context.set_tensor_address(name, t.data_ptr())
        outs = []
        for j in present_results(spec, inputs):
            name = spec.outputs[j].name
            t = torch.empty(tuple(context.get_tensor_shape(name)), device=device,
                            dtype=to_torch[engine.get_tensor_dtype(name)])
            context.set_tensor_address(name, t.data_ptr())
            outs.append(t)
        stream = torch.cuda.current_stream()
        assert context.execute_async_v3(stream.cuda_stream)
        stream.synchronize()
        return Results([_as_numpy(o) for o in outs], [dtype_name(o) for o in outs])


FRONTENDS = {f.name: f for f in (Native(), Jax(), Torch(), OnnxRuntime(), TensorRT())}
