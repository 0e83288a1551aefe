"""torch -> ONNX: every forward ``torch.ops.xpuruntime.<op>`` becomes the
``xpuruntime``-domain node of the same spec (op type, ONNX attribute names, the
result outputs), for ``torch.onnx.export(..., dynamo=True,
custom_translation_table=onnx_translation_table())``. Generic over the specs;
needs ``onnxscript`` (extra ``[onnx]``).

A registered torch op also returns the tensors its backward reads (layer_norm's
mean and rstd, cross_entropy's lse) and an empty placeholder for an absent
optional result (rms_norm's h without a residual). The ONNX node has only the results that exist;
the others are stood in for by scalar constants, which nothing in an inference
graph reads and the exporter's optimizer removes.
"""

from __future__ import annotations

from typing import Any, Callable

from ... import _spec
from ..._extras import require
from ..onnxruntime import DOMAIN, IR_VERSION
from ._registration import registered

OPSET_VERSION = 1  # of the xpuruntime domain (OPS.md: TensorRT plugin version 1 too)
_DEFAULT_POLICY = "fast"


def _op_schema(spec: _spec.OpSpec, present: list[bool], results: list[int]):
    """The ONNX schema of one node: the inputs given, the results that exist."""
    onnx = require("onnx", "onnx")
    schema = onnx.defs.OpSchema
    attr_types = {"float": schema.AttrType.FLOAT, "int": schema.AttrType.INT,
                  "bool": schema.AttrType.INT, "string": schema.AttrType.STRING}
    inputs = [schema.FormalParameter(i.name, f"T{k}") for k, (i, p) in
              enumerate(zip(spec.inputs, present)) if p]
    outputs = [schema.FormalParameter(spec.outputs[k].name, f"O{k}") for k in results]
    everything = ["tensor(float)", "tensor(float16)", "tensor(bfloat16)", "tensor(int32)",
                  "tensor(int64)"]
    constraints = [(p.type_str, everything, "") for p in inputs + outputs]
    attributes = [schema.Attribute(a.onnx_name, attr_types[a.type], "", required=False)
                  for a in spec.attrs]
    attributes.append(schema.Attribute("policy", schema.AttrType.STRING, "", required=False))
    return schema(spec.onnx_type, DOMAIN, OPSET_VERSION, inputs=inputs, outputs=outputs,
                  type_constraints=constraints, attributes=attributes)


def _translation(spec: _spec.OpSpec) -> Callable:
    """The onnxscript function that records ``spec``'s node for one torch call."""
    values = require("onnxscript", "onnx").values
    opset = values.Opset(DOMAIN, OPSET_VERSION)
    n_in = len(spec.inputs)

    def translate(*args: Any):
        tensors, attr_values, policy = args[:n_in], args[n_in:-1], args[-1]
        present = [t is not None for t in tensors]
        results = [k for k in spec.result_indices
                   if spec.outputs[k].present_if is None or present[spec.outputs[k].present_if]]
        node = values.Op(opset, spec.onnx_type, _op_schema(spec, present, results))
        attrs = {a.onnx_name: int(v) if a.type == "bool" else v
                 for a, v in zip(spec.attrs, attr_values)}
        if policy != _DEFAULT_POLICY:
            attrs["policy"] = policy
        outs = node(*[t for t in tensors if t is not None], **attrs)
        outs = list(outs) if isinstance(outs, (tuple, list)) else [outs]
        if len(spec.outputs) == 1:
            return outs[0]
        by_index = dict(zip(results, outs))
        op = require("onnxscript", "onnx").opset18
        return tuple(by_index[k] if k in by_index else op.Constant(value_float=0.0)
                     for k in range(len(spec.outputs)))

    translate.__name__ = f"xpuruntime_{spec.op}"
    return translate


def onnx_translation_table() -> dict:
    """``{torch.ops.xpuruntime.<op>.default: onnxscript function}`` for every forward op,
    to pass as ``torch.onnx.export(..., dynamo=True, custom_translation_table=...)``.
    Each op becomes one ``xpuruntime``-domain node (OPS.md op type and attribute names;
    ``policy`` only when it is not ``"fast"``); run the model with xpuruntime's ONNX
    Runtime library (``xpuruntime.interop.onnxruntime``)."""
    return {registered(s).default: _translation(s)
            for s in _spec.all_specs() if s.direction == _spec.FORWARD}


def export_onnx(model: Any, args: tuple, **kwargs: Any) -> Any:
    """``torch.onnx.export(model, args, dynamo=True, ...)`` with xpuruntime's
    translation table, as an ``onnx.ModelProto`` that ONNX Runtime loads.

    Args:
      model: a ``torch.nn.Module`` calling ``xpuruntime.interop.torch`` ops.
      args: example inputs (a tuple), as for ``torch.onnx.export``.
      **kwargs: passed on to ``torch.onnx.export`` (``dynamic_shapes``, ``input_names``,
        ``output_names``, ``opset_version``...); a ``custom_translation_table`` given
        here is merged over xpuruntime's.

    Returns:
      The exported ``onnx.ModelProto`` (importing the ``xpuruntime`` domain, version 1).
    """
    import torch

    table = onnx_translation_table()
    table.update(kwargs.pop("custom_translation_table", None) or {})
    program = torch.onnx.export(model, args, dynamo=True, custom_translation_table=table,
                                **kwargs)
    proto = program.model_proto
    proto.ir_version = min(proto.ir_version, IR_VERSION)  # what ONNX Runtime 1.20+ loads
    return proto
