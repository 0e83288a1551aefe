"""One generic FFI call for every op and direction of the op specs: result types
from the spec's rules (symbolic dims too), a uint8 workspace result when the spec
has scratch, the batching and sharding rules of the operand roles, and the target
"xpuruntime_<op>_fwd" / "_bwd" that the C++ adapter registers for the spec."""

from __future__ import annotations

import functools
import importlib
import importlib.util
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .. import _spec
from .._native import InvalidArgumentError
from .._spec import FORWARD, OpSpec
from ._batching import batched
from ._roles import present_outputs
from ._sharding import partitioned
from ._workspace import workspace_bytes


def target_name(spec: OpSpec) -> str:
    """The spec's XLA target ("xpuruntime_<op>_fwd" / "_bwd", "_v<n>" past revision 1)."""
    return spec.xla_target


def _ffi_attrs(spec: OpSpec, attrs: Mapping[str, Any]) -> dict:
    """Normalized attributes as XLA attribute values of stable types (f32, i64, pred, str)."""
    types = {a.name: a.type for a in spec.attrs}
    convert = {"float": np.float32, "int": np.int64, "bool": bool, "string": str}
    return {k: convert[types.get(k, "string")](v) for k, v in attrs.items()}


def _signature(args) -> tuple:
    return tuple(a.shape for a in args), tuple(jnp.dtype(a.dtype) for a in args)


@functools.lru_cache(maxsize=4096)
def _ffi(op: str, direction: str, attrs: tuple, present: tuple, shapes: tuple,
         dtypes: tuple) -> tuple[Callable, list]:
    """The FFI call for operands of these shapes and dtypes, and its result types."""
    spec = _spec.get(op, direction)
    attr_map = dict(attrs)
    it = iter(zip(shapes, dtypes))
    full = [next(it) if p else (None, None) for p in present]
    out_shapes = _spec.output_shapes(spec, [s for s, _ in full], attr_map)
    out_dtypes = _spec.output_dtypes(spec, [d for _, d in full], f32=jnp.float32, i32=jnp.int32,
                                     input_present=present)
    results = [jax.ShapeDtypeStruct(s, d) for s, d in zip(out_shapes, out_dtypes) if s is not None]
    ws = workspace_bytes(spec, [s for s, _ in full], attr_map)
    target = jax.ffi.ffi_call(target_name(spec),
                              results + [jax.ShapeDtypeStruct((ws,), jnp.uint8)] if ws else results)
    ffi_attrs = _ffi_attrs(spec, attr_map)

    def ffi(*args):
        return tuple(target(*args, **ffi_attrs)[:len(results)])

    return ffi, results


@functools.lru_cache(maxsize=4096)
def _partitioned(op: str, direction: str, attrs: tuple, present: tuple, shapes: tuple,
                 dtypes: tuple) -> Callable:
    """The FFI call with its sharding rule; each device's part is traced for its shapes."""
    _, results = _ffi(op, direction, attrs, present, shapes, dtypes)

    def local(*args):
        return _ffi(op, direction, attrs, present, *_signature(args))[0](*args)

    return partitioned(local, _spec.get(op, direction), present, dict(attrs), shapes,
                       [r.shape for r in results])


def glue(op: str):
    """The op's glue module ``_<op>.py`` (autodiff and batching beyond the generic
    rules), or ``None``."""
    name = f"{__package__}._{op}"
    return importlib.import_module(name) if importlib.util.find_spec(name) is not None else None


@functools.lru_cache(maxsize=None)
def _batched(op: str, direction: str, attrs: tuple, present: tuple) -> Callable:
    spec = _spec.get(op, direction)
    per_example = getattr(glue(op), "PER_EXAMPLE", {}) if direction != FORWARD else {}

    def call(*args):
        return _partitioned(op, direction, attrs, present, *_signature(args))(*args)

    return batched(call, spec, present, dict(attrs), per_example)


def call(op: str, direction: str, attrs: Mapping[str, Any], *inputs) -> list:
    """Runs ``op``'s ``direction`` on JAX arrays (``None``: an absent optional input).

    ``attrs`` are the spec's normalized attributes (``_spec.normalize_attrs``) with
    ``policy``. Returns one entry per spec output: an array, or ``None`` where the
    output is absent. Absent optional inputs must come last (as in every spec)."""
    spec = _spec.get(op, direction)
    present = tuple(a is not None for a in inputs)
    if any(present[i] and not all(present[:i]) for i in range(len(present))):
        raise InvalidArgumentError(f"{op}: an absent optional input must come after every given one")
    outs = iter(_batched(op, direction, tuple(sorted(attrs.items())), present)(
        *(a for a in inputs if a is not None)))
    given = present_outputs(spec, present)
    return [next(outs) if o in given else None for o in spec.outputs]
