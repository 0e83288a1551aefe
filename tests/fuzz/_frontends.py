"""Calls one op through one frontend's public API, generically from the op spec:
required inputs positionally, optional ones and attributes as keywords (the OPS.md
signatures every frontend follows), results mapped back to the spec's output names.

``call(case, spec, arrays, rng)`` returns ``(outputs by name, gradients by name or
None)``; gradients (autodiff frontends) carry the cotangents they were taken with
under ``"__cotangents__"``.
"""

from __future__ import annotations

import inspect

import numpy as np

from xpuruntime import _spec


def decode(v: dict):
    t, x = v["t"], v["v"]
    if t == "none":
        return None
    if t == "bytes":
        return x.encode()
    return x


class NotApplicable(Exception):
    """The case breaks an attribute this function does not take (a native backward
    takes only the attributes its kernel reads): nothing to judge."""


def _python_args(case, spec, arrays, fn):
    params = inspect.signature(fn).parameters
    dropped = [k for k in case.get("attrs", {}) if k not in params]
    if case["expect"] == "invalid" and case["names"] and set(case["names"]) <= set(dropped):
        raise NotApplicable(", ".join(dropped))
    args = [a for a, sp in zip(arrays, spec.inputs) if not sp.optional]
    kwargs = {sp.name: a for a, sp in zip(arrays, spec.inputs) if sp.optional and a is not None}
    kwargs.update({k: decode(v) for k, v in case.get("attrs", {}).items() if k in params})
    if "policy" in case:
        kwargs["policy"] = decode(case["policy"])
    return args, kwargs, params


def _present_results(spec, arrays, with_saved: bool) -> list[str]:
    """Names of the outputs a public function returns, in order."""
    out = []
    for o in spec.outputs:
        if o.present_if is not None and arrays[o.present_if] is None:
            continue
        if o.use == "result" or with_saved:
            out.append(o.name)
    return out


def _as_tuple(r):
    return tuple(r) if isinstance(r, (tuple, list)) else (r,)


def _float_results(spec, names: list[str]) -> list[str]:
    return [n for n in names if spec.outputs[spec.output_names.index(n)].dtype != "i32"]


def _diff_inputs(spec, arrays) -> list[int]:
    """Forward inputs the backward spec returns a gradient for (present ones)."""
    bwd = _spec.get(spec.op, _spec.BACKWARD)
    return [i for i, sp in enumerate(spec.inputs)
            if arrays[i] is not None and f"d{sp.name}" in bwd.output_names]


def _cotangents(spec, names, outs, rng) -> dict:
    return {n: rng.standard_normal(np.shape(outs[n])) for n in _float_results(spec, names)}


# ---- native ------------------------------------------------------------------------------------

def call_native(case, spec, arrays, rng):
    from xpuruntime import ops
    fn = getattr(ops, spec.op if spec.direction == _spec.FORWARD else f"{spec.op}_backward")
    args, kwargs, params = _python_args(case, spec, arrays, fn)
    with_saved = spec.direction == _spec.FORWARD and "return_stats" in params and case["return_stats"]
    if with_saved:
        kwargs["return_stats"] = True
    r = _as_tuple(fn(*args, **kwargs))
    if spec.direction == _spec.BACKWARD:
        names = list(spec.output_names)
    else:
        names = _present_results(spec, arrays, with_saved)
    if len(r) != len(names):
        raise AssertionError(f"harness: {len(r)} results for outputs {names}")
    return dict(zip(names, r)), None


# ---- jax ---------------------------------------------------------------------------------------

def call_jax(case, spec, arrays, rng):
    import jax
    import jax.numpy as jnp
    import xpuruntime.jax as xj
    fn = getattr(xj, spec.op)
    args, kwargs, _ = _python_args(case, spec, arrays, fn)
    names = _present_results(spec, arrays, False)
    diff = _diff_inputs(spec, arrays) if case["grad"] else []

    def run(*diff_values):
        full = list(arrays)
        for i, v in zip(diff, diff_values):
            full[i] = v
        a, k, _ = _python_args(case, spec, full, fn)
        return _as_tuple(fn(*a, **k))

    f = jax.jit(run) if case["jit"] else run
    if not diff:
        r = f()
        return dict(zip(names, r)), None
    r, pullback = jax.vjp(f, *[arrays[i] for i in diff])
    outs = dict(zip(names, r))
    cot = _cotangents(spec, names, outs, rng)
    cts = tuple(jnp.asarray(cot[n], dtype=outs[n].dtype) if n in cot
                else np.zeros(np.shape(outs[n]), dtype=jax.dtypes.float0) for n in names)
    g = pullback(cts)
    grads = {f"d{spec.inputs[i].name}": gi for i, gi in zip(diff, g)}
    grads["__cotangents__"] = {n: np.asarray(c.astype(jnp.float32), dtype=np.float64)
                               for n, c in zip(names, cts) if n in cot}
    return outs, grads


# ---- torch -------------------------------------------------------------------------------------

def call_torch(case, spec, arrays, rng):
    import torch
    import xpuruntime.interop.torch as xt
    fn = getattr(xt, spec.op)
    diff = _diff_inputs(spec, arrays) if case["grad"] else []
    arrays = list(arrays)
    for i in diff:
        if not arrays[i].is_floating_point():
            diff = []
            break
    leaves = {}
    for i in diff:
        arrays[i] = arrays[i].detach().requires_grad_(True)
        leaves[i] = arrays[i]
    args, kwargs, _ = _python_args(case, spec, arrays, fn)
    names = _present_results(spec, arrays, False)
    r = _as_tuple(fn(*args, **kwargs))
    outs = dict(zip(names, r))
    if not diff:
        return {k: v.detach() for k, v in outs.items()}, None
    cot = _cotangents(spec, names, outs, rng)
    used = [n for n in cot if outs[n].requires_grad]
    cts = [torch.tensor(cot[n]).to(outs[n].dtype) for n in used]
    g = torch.autograd.grad([outs[n] for n in used], [leaves[i] for i in diff], cts,
                            allow_unused=True) if used else [None] * len(diff)
    grads = {f"d{spec.inputs[i].name}": (torch.zeros_like(leaves[i]) if gi is None else gi)
             for i, gi in zip(diff, g)}
    grads["__cotangents__"] = {n: c.to(torch.float64).numpy() for n, c in zip(used, cts)}
    return {k: v.detach() for k, v in outs.items()}, grads


# ---- ONNX Runtime ------------------------------------------------------------------------------

ONNX_TYPES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6, "int64": 7,
              "bool": 9, "float16": 10, "float64": 11, "bfloat16": 16, "complex64": 14}


def _onnx_attribute(name: str, a: dict):
    import onnx
    p = onnx.AttributeProto()
    p.name = name
    t, v = a["type"], a["value"]
    p.type = getattr(onnx.AttributeProto, t)
    if t == "FLOAT":
        p.f = float(v)
    elif t == "INT":
        p.i = int(v)
    elif t == "STRING":
        p.s = v.encode()
    elif t == "INTS":
        p.ints.extend(int(x) for x in v)
    elif t == "FLOATS":
        p.floats.extend(float(x) for x in v)
    elif t == "STRINGS":
        p.strings.extend(x.encode() for x in v)
    return p


def _ort_value(a: np.ndarray, dtype: str):
    import onnxruntime as ort
    a = np.array(a, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
    if dtype == "bfloat16":
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(a.view(np.uint16), ONNX_TYPES[dtype])
    return ort.OrtValue.ortvalue_from_numpy(a)


def call_onnxruntime(case, spec, arrays, rng):
    import onnx
    from onnx import helper
    from xpuruntime.interop import onnxruntime as xo
    dtypes = [None if d is None else d["dtype"] for d in case["inputs"]]
    # Inputs in spec order; an absent optional input in the middle is an empty name.
    in_names = [sp.name if a is not None else "" for a, sp in zip(arrays, spec.inputs)]
    while in_names and in_names[-1] == "":
        in_names.pop()
    names = _present_results(spec, arrays, False)
    node = helper.make_node(spec.onnx_type, in_names, names, domain=xo.DOMAIN, name="node")
    attrs = dict(case.get("onnx_attrs", {}))
    attrs.update(case.get("onnx_bad", {}))
    if "policy" in case:
        pv = case["policy"]
        attrs["policy"] = ({"type": "STRING", "value": pv["v"]} if pv["t"] in ("str", "bytes")
                           else {"type": "INT", "value": pv["v"]})
    node.attribute.extend(_onnx_attribute(k, v) for k, v in attrs.items())
    inputs = [helper.make_tensor_value_info(sp.name, ONNX_TYPES[d], list(a.shape))
              for a, sp, d in zip(arrays, spec.inputs, dtypes) if a is not None]
    outputs = [onnx.ValueInfoProto(name=n) for n in names]  # types and shapes: the op's own
    model = xo.make_model(helper.make_graph([node], "fuzz", inputs, outputs))
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 4  # refusals are judged here, not logged
    session = xo.inference_session(model, sess_options=options)
    binding = session.io_binding()
    for a, sp, d in zip(arrays, spec.inputs, dtypes):
        if a is not None:
            binding.bind_ortvalue_input(sp.name, _ort_value(a, d))
    for n in names:
        binding.bind_output(n)
    session.run_with_iobinding(binding)
    outs = {}
    for n, v in zip(names, binding.get_outputs()):
        if v.data_type() == "tensor(bfloat16)":
            import ml_dtypes
            raw = np.empty(v.shape(), dtype=np.uint16)
            # No numpy type for bf16 in ORT's Python API: copy the bytes out through a uint16 view.
            import ctypes
            ctypes.memmove(raw.ctypes.data, v.data_ptr(), raw.nbytes)
            outs[n] = raw.view(ml_dtypes.bfloat16)
        else:
            outs[n] = v.numpy()
    return outs, None


CALLS = {"native": call_native, "jax": call_jax, "torch": call_torch,
         "onnxruntime": call_onnxruntime}


def call(case, spec, arrays, rng):
    return CALLS[case["frontend"]](case, spec, arrays, rng)
