"""Every op spec of the core as a ``torch.library`` op, registered in one loop:
``torch.ops.xpuruntime.<op>`` (forward) and ``torch.ops.xpuruntime.<op>_backward``.

One schema rule, one real kernel and one fake kernel serve every op:
- schema: the spec's inputs (``Tensor`` / ``Tensor?``), then its attributes in spec
  order, then ``str policy``; it returns every output of the spec (results, then
  the saved tensors the backward reads). An absent optional output (rms_norm's h
  without a residual) is returned as an empty tensor.
- real kernel: inputs in a layout the core reads (``_layouts``), outputs and
  workspace allocated from the spec's rules, then the generic ``core.call_op``
  over DLPack on torch's current stream.
- fake kernel: the same allocation from the spec's rules, on fake tensors (the
  rules take SymInts), so torch.compile and meta tensors need nothing per op.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import torch

from ... import _spec
from ..._native import core
from ._common import dlpack, stream_of
from ._layouts import for_kernel

NAMESPACE = "xpuruntime"
_SCHEMA_TYPES = {"float": "float", "int": "int", "bool": "bool", "string": "str"}


def op_name(spec: _spec.OpSpec) -> str:
    """The torch op name of a spec: ``rms_norm`` (OPS.md fixes the forwards' names) or
    ``rms_norm_backward``, with ``_v<revision>`` past the backward spec's first revision
    (``rms_norm_backward_v2``): graphs that torch.compile cached against the old operands
    (AOTAutograd's cache does not see the autograd glue that chose them) then miss
    instead of replaying them."""
    if spec.direction == _spec.FORWARD:
        return spec.op
    name = f"{spec.op}_backward"
    return name if spec.revision == 1 else f"{name}_v{spec.revision}"


def schema(spec: _spec.OpSpec) -> str:
    """The torch schema of a spec (without the op name)."""
    args = [f"Tensor{'?' if i.optional else ''} {i.name}" for i in spec.inputs]
    args += [f"{_SCHEMA_TYPES[a.type]} {a.name}" for a in spec.attrs]
    args.append("str policy")
    n = len(spec.outputs)
    returns = "Tensor" if n == 1 else "(" + ", ".join(["Tensor"] * n) + ")"
    return f"({', '.join(args)}) -> {returns}"


def _allocate(spec: _spec.OpSpec, inputs: Sequence[Any], attrs: dict) -> list[torch.Tensor]:
    """Uninitialized outputs by the spec's shape and dtype rules, on the device of
    each output's reference input; works on real and on fake tensors alike."""
    shapes = _spec.output_shapes(spec, [None if t is None else t.shape for t in inputs], attrs)
    dtypes = _spec.output_dtypes(spec, [None if t is None else t.dtype for t in inputs],
                                 f32=torch.float32, i32=torch.int32)
    outs = []
    for o, shape, dtype in zip(spec.outputs, shapes, dtypes):
        ref = inputs[o.ref]
        if shape is None:  # absent optional output: an empty placeholder
            outs.append(ref.new_empty((0,)))
        else:
            outs.append(torch.empty(shape, dtype=dtype, device=ref.device))
    return outs


def _split(spec: _spec.OpSpec, args: Sequence[Any]) -> tuple[list, dict, str]:
    n = len(spec.inputs)
    attrs = {a.name: v for a, v in zip(spec.attrs, args[n:-1])}
    return list(args[:n]), attrs, args[-1]


def _returned(outs: list[torch.Tensor]):
    return outs[0] if len(outs) == 1 else tuple(outs)


def _plan(spec: _spec.OpSpec):
    """What the real kernel allocates for given input shapes, dtypes and attribute values
    (``None``: an absent input): ((shape, dtype) or None per output, whether each output
    is present, workspace bytes). By the spec's rules, memoized: the rules are pure, and
    an eager call should not pay for them every time (bench_torch_overhead.py)."""
    names = tuple(a.name for a in spec.attrs)

    @functools.lru_cache(maxsize=512)
    def plan(shapes: tuple, dtypes: tuple, values: tuple):
        attrs = dict(zip(names, values))
        out_shapes = _spec.output_shapes(spec, shapes, attrs)
        out_dtypes = _spec.output_dtypes(spec, dtypes, f32=torch.float32, i32=torch.int32)
        outs = tuple(None if shape is None else (shape, dtype)
                     for shape, dtype in zip(out_shapes, out_dtypes))
        present = tuple(o.present_if is None or shapes[o.present_if] is not None
                        for o in spec.outputs)
        return outs, present, _spec.workspace_bytes(spec, shapes, attrs)
    return plan


def _real_kernel(spec: _spec.OpSpec):
    plan = _plan(spec)
    n = len(spec.inputs)

    def kernel(*args):
        inputs = [for_kernel(t, i) for t, i in zip(args[:n], spec.inputs)]
        values = args[n:-1]
        shapes = tuple(None if t is None else tuple(t.shape) for t in inputs)
        dtypes = tuple(None if t is None else t.dtype for t in inputs)
        outs_plan, present, nbytes = plan(shapes, dtypes, values)
        # new_empty: the reference input's device, without building a torch.device a call.
        outs = [inputs[o.ref].new_empty((0,)) if p is None
                else inputs[o.ref].new_empty(p[0], dtype=p[1])
                for o, p in zip(spec.outputs, outs_plan)]
        ref = next(t for t in inputs if t is not None)
        ws = ref.new_empty((nbytes,), dtype=torch.uint8) if nbytes else None
        attrs = {a.name: v for a, v in zip(spec.attrs, values)}
        core.call_op(spec.op, spec.direction, [dlpack(t) for t in inputs],
                     [dlpack(o) if p else None for o, p in zip(outs, present)], dlpack(ws), attrs,
                     args[-1], stream_of(ref))
        return _returned(outs)
    return kernel


def _fake_kernel(spec: _spec.OpSpec):
    def kernel(*args):
        inputs, attrs, _ = _split(spec, args)
        return _returned(_allocate(spec, inputs, attrs))
    return kernel


def _register(spec: _spec.OpSpec) -> None:
    qualname = f"{NAMESPACE}::{op_name(spec)}"
    torch.library.define(qualname, schema(spec))
    torch.library.impl(qualname, ("cpu", "cuda"), _real_kernel(spec))
    torch.library.register_fake(qualname, _fake_kernel(spec))


def registered(spec: _spec.OpSpec):
    """The ``torch.ops.xpuruntime`` overload packet of a spec."""
    return getattr(getattr(torch.ops, NAMESPACE), op_name(spec))


for _s in _spec.all_specs():
    _register(_s)

# (op, direction) -> (the registered op, its attribute names in spec order): plain
# data, so that torch.compile traces `call` without stepping into the spec module.
_CALLS = {(s.op, s.direction): (registered(s), tuple(a.name for a in s.attrs))
          for s in _spec.all_specs()}


def call(op: str, direction: str, tensors: Sequence[Any], attrs: dict, policy: str):
    """``torch.ops.xpuruntime.<op>[_backward]`` on ``tensors``, the attributes (by
    name, every one given) in spec order, and a resolved policy string."""
    packet, names = _CALLS[(op, direction)]
    return packet(*tensors, *[attrs[n] for n in names], policy)
