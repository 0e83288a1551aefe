"""The public function of each op, made from its forward spec: the signature
(required inputs, then attributes with their defaults, then keyword-only optional
inputs and ``policy``), a docstring with shapes and dtypes, trace-time checks,
attribute and policy checking by the core's one rule, and the differentiable call
(the op's glue module ``_<op>.py`` where autodiff needs one, the generic one else)."""

from __future__ import annotations

import inspect
from typing import Callable

import jax.numpy as jnp

from .. import _spec
from .._native import InvalidArgumentTypeError
from .._policy import requested_policy
from .._spec import FORWARD, OpSpec
from . import _roles, _vjp
from ._call import glue

_DTYPES = {"float": "float32, float16 or bfloat16 (all float operands alike)",
           "float_or_f32": "float32 or the float operands' dtype", "index": "int32 or int64",
           "f32": "float32", "i32": "int32"}


def _input_doc(spec: OpSpec, i: int) -> str:
    s = spec.inputs[i]
    r = _roles.ref_index(spec)
    x = spec.inputs[r].name
    if i == r:
        shape = "``[B, S, H, D]``, D even" if _roles.has_table(spec) else "``[..., N]``"
    else:
        shape = {"rows": f"``[..., *]`` with the leading axes of ``{x}``",
                 "parameter": "``[N]``, one value per column",
                 "table": "``[S, D/2]``, broadcast over B and H",
                 "labels": f"``{x}.shape[:-1]``, one per row",
                 "row_stat": f"``{x}.shape[:-1]``, one per row",
                 "scalar": f"``{x}.shape[:-1]`` or ``[]``"}[s.role]
    return f"{s.name}: {shape}; {_DTYPES[s.dtype]}{'; optional' if s.optional else ''}."


def _attr_doc(a: _spec.AttrSpec) -> str:
    limits = (f"; one of {', '.join(a.choices)}" if a.choices else
              f"; in [{a.min:g}, {a.max:g}]" if a.min is not None and a.max is not None and a.type != "bool"
              else f"; >= {a.min:g}" if a.min is not None and a.type != "bool" else "")
    default = "required" if a.required else f"default {a.default!r}"
    return f"{a.name}: {a.type}, {default}{limits}."


def _output_doc(spec: OpSpec, i: int) -> str:
    o = spec.outputs[i]
    ref = spec.inputs[o.ref].name
    shape = {"like": f"``{ref}``'s shape", "leading": f"``{ref}.shape[:-1]``",
             "leading_and_attr": f"``{ref}.shape[:-1] + [{o.attr}]``",
             "loss": f"``{ref}.shape[:-1]`` when {o.attr} is 'none', else ``[]``"}[o.shape]
    dtype = {"like_ref": f"``{ref}``'s dtype", "f32": "float32", "i32": "int32"}[o.dtype]
    given = f" (only with ``{spec.inputs[o.present_if].name}``)" if o.present_if is not None else ""
    return f"{o.name}: {shape}, {dtype}{given}."


def _signature(spec: OpSpec) -> inspect.Signature:
    kind, kw = inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY
    params = [inspect.Parameter(s.name, kind) for s in spec.inputs if not s.optional]
    params += [inspect.Parameter(a.name, kind) for a in spec.attrs if a.required]
    params += [inspect.Parameter(a.name, kind, default=a.default) for a in spec.attrs
               if not a.required]
    params += [inspect.Parameter(s.name, kw, default=None) for s in spec.inputs if s.optional]
    params.append(inspect.Parameter("policy", kw, default=None))
    return inspect.Signature(params)


def _docstring(spec: OpSpec, sig: inspect.Signature) -> str:
    lines = [f"xpuruntime's ``{spec.op}`` (its meaning: OPS.md) as an XLA FFI call on CPU and CUDA.",
             "", "Usable under ``jit``, ``grad`` (its backward kernel), ``vmap`` and sharding "
             "(rows stay sharded); shape-polymorphic under ``jax.export``.", "", "Args:"]
    lines += [f"  {_input_doc(spec, i)}" for i in range(len(spec.inputs))]
    lines += [f"  {_attr_doc(a)}" for a in spec.attrs]
    lines += ["  policy: fast, deterministic or reference; default: the policy in effect when traced.",
              "", "Returns:"]
    lines += [f"  {_output_doc(spec, i)}" for i in spec.result_indices]
    if len(spec.result_indices) > 1:
        lines.append("  A tuple of the results above when more than one is given.")
    return "\n".join(lines)


def _differentiable(op: str) -> Callable:
    """The op's glue module's ``differentiable`` where it has one, the generic one else."""
    module = glue(op)
    return module.differentiable() if hasattr(module, "differentiable") else _vjp.differentiable(op)


def make_op(op: str) -> Callable:
    """The public JAX function of ``op``."""
    spec = _spec.get(op, FORWARD)
    sig = _signature(spec)
    apply = _differentiable(op)

    def public(*args, **kwargs):
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise InvalidArgumentTypeError(f"{op}: {e}; expected {op}{sig}") from None
        bound.apply_defaults()
        values = bound.arguments
        inputs = [None if values[s.name] is None else jnp.asarray(values[s.name]) for s in spec.inputs]
        policy = values["policy"]
        attrs = _spec.normalize_attrs(spec, {**{a.name: values[a.name] for a in spec.attrs},
                                             "policy": requested_policy() if policy is None else policy})
        _roles.check_inputs(spec, inputs, attrs)
        return apply(tuple(sorted(attrs.items())), tuple(a is not None for a in inputs), *inputs)

    public.__name__ = public.__qualname__ = op
    public.__module__ = __package__
    public.__signature__ = sig
    public.__doc__ = _docstring(spec, sig)
    return public
