"""Autograd for every forward op, from the spec conventions (op_spec.h): a
backward takes the gradient of the forward's first result, the forward inputs and
outputs it reads (by name), then gradients of further results (``d`` + name), and
returns ``d`` + name for each forward input that gets a gradient. So one generic
``setup_context`` / ``backward`` pair serves every op whose backward reads plain
forward inputs and outputs; an op whose glue differs has a small module
``_grad/<op>.py`` defining ``setup_context`` and ``backward`` (rms_norm: with a
residual its backward reads h, and x and the residual share one gradient).
"""

from __future__ import annotations

import importlib
import importlib.util

import torch

from ... import _spec
from ._registration import NAMESPACE, op_name, registered


def _plan(fwd: _spec.OpSpec, bwd: _spec.OpSpec) -> list[tuple[str, int]]:
    """Where each backward input comes from: ("grad", forward output index),
    ("input", forward input index) or ("output", forward output index)."""
    inputs, outputs = fwd.input_names, fwd.output_names
    plan = []
    for k, name in enumerate(bwd.input_names):
        if k == 0:
            plan.append(("grad", fwd.result_indices[0]))
        elif name in inputs:
            plan.append(("input", inputs.index(name)))
        elif name in outputs:
            plan.append(("output", outputs.index(name)))
        elif name[:1] == "d" and name[1:] in outputs:
            plan.append(("grad", outputs.index(name[1:])))
        else:
            raise AssertionError(f"{fwd.op}: backward input {name!r} follows no spec convention; "
                                 f"give the op autograd glue in _grad/{fwd.op}.py")
    return plan


def generic_glue(fwd: _spec.OpSpec, bwd: _spec.OpSpec):
    """(setup_context, backward) of an op from its specs alone."""
    plan = _plan(fwd, bwd)
    n_in = len(fwd.inputs)
    # Forward input index that receives each backward output ("d" + its name).
    targets = [fwd.input_names.index(o.name[1:]) for o in bwd.outputs]
    saved = [(kind, i) for kind, i in plan if kind != "grad"]
    backward_op = registered(bwd)

    def setup_context(ctx, inputs, output):
        outputs = output if isinstance(output, tuple) else (output,)
        ctx.attrs = inputs[n_in:]  # the attributes and the policy, unchanged
        ctx.present = [t is not None for t in inputs[:n_in]]
        ctx.save_for_backward(*[(inputs if kind == "input" else outputs)[i] for kind, i in saved])

    def backward(ctx, *grads):
        tensors = iter(ctx.saved_tensors)
        args = []
        for kind, i in plan:
            if kind != "grad":
                args.append(next(tensors))
            elif fwd.outputs[i].present_if is None or ctx.present[fwd.outputs[i].present_if]:
                args.append(grads[i])
            else:
                args.append(None)  # the gradient of an absent optional output
        results = backward_op(*args, *ctx.attrs)
        results = results if isinstance(results, tuple) else (results,)
        out = [None] * (n_in + len(ctx.attrs))
        for target, grad in zip(targets, results):
            out[target] = grad
        return tuple(out)

    return setup_context, backward


def _glue(fwd: _spec.OpSpec, bwd: _spec.OpSpec):
    module = f"{__package__}._grad.{fwd.op}"
    if importlib.util.find_spec(module) is None:
        return generic_glue(fwd, bwd)
    glue = importlib.import_module(module)
    return glue.setup_context, glue.backward


for _op in _spec.op_names():
    _fwd, _bwd = _spec.get(_op, _spec.FORWARD), _spec.get(_op, _spec.BACKWARD)
    _setup, _backward = _glue(_fwd, _bwd)
    torch.library.register_autograd(f"{NAMESPACE}::{op_name(_fwd)}", _backward,
                                    setup_context=_setup)
