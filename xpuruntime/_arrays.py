"""DLPack plumbing for the native frontend: the dtype table, argument checks,
devices, streams, output allocation, and handing results back in the caller's
own array type (zero-copy).

Argument checks (``array_info``, ``int_arg``, ``float_arg``, ``bool_arg``,
``str_arg``, ``shape_arg``, ``dtype_name``) run before any binding call, so that
a bad argument raises ``InvalidArgumentError`` naming the op and the argument
(``InvalidArgumentTypeError``, also a ``TypeError``, for a value of the wrong
Python type), never a binding's signature dump. Op attributes go to the core's
one attribute rule (``_spec.normalize_attrs``), whose binding does the same.
"""

from __future__ import annotations

import math
import operator
import sys
from typing import Any, NamedTuple

from ._native import Error, InvalidArgumentError, InvalidArgumentTypeError, core

# ---- dtypes: the one table -------------------------------------------------------------------------

# name -> (DLPack type code, bits); codes: 0 int, 1 uint, 2 float, 4 bfloat, 5 complex, 6 bool
DTYPES = {
    "bool": (6, 8), "int8": (0, 8), "int16": (0, 16), "int32": (0, 32), "int64": (0, 64),
    "uint8": (1, 8), "uint16": (1, 16), "uint32": (1, 32), "uint64": (1, 64),
    "float16": (2, 16), "float32": (2, 32), "float64": (2, 64), "bfloat16": (4, 16),
    "complex64": (5, 64), "complex128": (5, 128),
}
DTYPE_BY_CODE = {v: k for k, v in DTYPES.items()}
# The dtypes a kernel argument can have (xpu::DType); each op takes a subset of them.
OP_DTYPES = ("float32", "float16", "bfloat16", "float64", "int32", "int64", "uint8", "bool")

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


def _where(op: str | None, name: str | None) -> str:
    """How a message names the argument: "rms_norm: 'x'"."""
    arg = f"'{name}'" if name else "argument"
    return f"{op}: {arg}" if op else arg


def _type_name(value: Any) -> str:
    return type(value).__name__


def dtype_name(dtype: Any, op: str = "empty", name: str = "dtype") -> str:
    """The name of a dtype given as a string, numpy / torch / jax dtype or scalar type
    (``"float32"``, ``np.float32``, ``torch.float32``, ``jnp.bfloat16``)."""
    if isinstance(dtype, str):
        text = dtype
    else:
        text = getattr(dtype, "name", None) or getattr(dtype, "__name__", None) or str(dtype)
        if not isinstance(text, str):
            text = str(dtype)
    text = text.rsplit(".", 1)[-1]  # torch.float32 -> float32
    if text not in DTYPES:
        raise InvalidArgumentError(f"{_where(op, name)}: unsupported dtype {dtype!r}; supported: "
                                   f"{', '.join(DTYPES)}")
    return text


# ---- arrays ----------------------------------------------------------------------------------------

class ArrayInfo(NamedTuple):
    dtype: str          # "float32", "bfloat16", ...
    shape: tuple
    device_kind: str    # "cpu" or "cuda"
    device_index: int


def _numpy_problem(x: Any) -> str | None:
    """Why numpy cannot hand ``x`` over through DLPack, said plainly (None: it can)."""
    np = sys.modules.get("numpy")
    if np is None or not isinstance(x, np.ndarray):
        return None
    dt = x.dtype
    if dt.hasobject:
        return "is a numpy array of Python objects (dtype object); pass a numeric array"
    if dt.kind == "V":  # ml_dtypes (bfloat16, float8_*) and structured dtypes
        return (f"has dtype {dt.name}, which numpy cannot export through DLPack; convert it "
                "(e.g. x.astype(numpy.float32)) or pass a torch or jax array of that dtype")
    if not dt.isnative:
        return (f"is big-endian ({dt.str}); DLPack needs native byte order: "
                "x.astype(x.dtype.newbyteorder('='))")
    return None


def _export_failure(x: Any, exc: BaseException) -> str:
    """The producer's own reason for a failed DLPack import, when it gives one."""
    try:
        x.__dlpack__()
    except Exception as producer:  # noqa: BLE001 - its message is the point
        return f"{_type_name(producer)}: {producer}"
    return f"{_type_name(x)} gave a DLPack capsule xpuruntime cannot read ({_type_name(exc)})"


class DLPackFacts(NamedTuple):
    ptr: int
    dtype: str          # a DTYPES name
    shape: tuple
    strides: tuple      # in elements
    device_kind: str    # "cpu" or "cuda"
    device_index: int


def read_dlpack(x: Any, op: str | None = None, name: str | None = None) -> DLPackFacts:
    """What a DLPack producer (numpy, torch, jax, cupy, ``xpuruntime.Array``) holds.

    Raises ``InvalidArgumentTypeError`` for None and for objects that are not
    arrays (lists, scalars), and ``InvalidArgumentError`` for arrays that cannot be
    read: object, big-endian or ml_dtypes numpy arrays, a producer that refuses
    to export, a dtype outside ``DTYPES``. Messages name ``op`` and ``name``
    ("rms_norm: 'x' ...") when given.
    """
    where = _where(op, name)
    if x is None:
        raise InvalidArgumentTypeError(f"{where} is required, got None")
    problem = _numpy_problem(x)
    if problem:
        raise InvalidArgumentError(f"{where} {problem}")
    try:
        ptr, code, bits, shape, strides, kind, index = core.dlpack_info(x)
    except Error as exc:  # already in xpuruntime's words; say which argument
        raise type(exc)(f"{where}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - not an array, or the producer refused
        if not hasattr(x, "__dlpack__"):  # (numpy scalars pass: the buffer protocol)
            raise InvalidArgumentTypeError(
                f"{where} must be an array (numpy, torch, jax, cupy or another DLPack producer), "
                f"got {_type_name(x)}") from None
        raise InvalidArgumentError(f"{where} cannot be read through DLPack: {_export_failure(x, exc)}") from None
    dtype = DTYPE_BY_CODE.get((code, bits))
    if dtype is None:
        raise InvalidArgumentError(f"{where} has an unsupported DLPack dtype (type code {code}, {bits} bits)")
    return DLPackFacts(ptr, dtype, tuple(shape), tuple(strides), kind, index)


def array_info(x: Any, op: str | None = None, name: str | None = None, *,
               optional: bool = False) -> ArrayInfo | None:
    """dtype, shape and device of an op's array argument (``read_dlpack`` with its
    errors), also refusing dtypes no kernel takes (complex, uint16, ...). An absent
    ``optional`` argument (None) gives None. Which of ``OP_DTYPES`` an op takes
    is its own check, in the core."""
    if x is None and optional:
        return None
    f = read_dlpack(x, op, name)
    if f.dtype not in OP_DTYPES:
        raise InvalidArgumentError(f"{_where(op, name)} has dtype {f.dtype}, which no xpuruntime op takes "
                                   f"(kernel dtypes: {', '.join(OP_DTYPES)})")
    return ArrayInfo(f.dtype, f.shape, f.device_kind, f.device_index)


# ---- scalars and attributes ------------------------------------------------------------------------

def index_arg(value: Any, op: str, name: str, *, allow_bool: bool = False) -> int:
    """An integer argument of any size: an int or anything with ``__index__`` (numpy
    integers); a bool only with ``allow_bool``; never a float."""
    if not (isinstance(value, bool) and not allow_bool):
        try:
            return operator.index(value)
        except TypeError:
            pass
    raise InvalidArgumentTypeError(f"{_where(op, name)} must be an int, got {_type_name(value)} {value!r}")


def int_arg(value: Any, op: str, name: str, *, lo: int = INT64_MIN, hi: int = INT64_MAX,
            allow_bool: bool = False) -> int:
    """An integer argument in ``[lo, hi]`` (int64 by default), as ``index_arg``
    accepts it (bools only with ``allow_bool``: the op spec's attribute rule lets a
    bool stand for an int attribute)."""
    v = index_arg(value, op, name, allow_bool=allow_bool)
    if not lo <= v <= hi:
        raise InvalidArgumentError(f"{_where(op, name)} must be in [{lo}, {hi}], got {v}")
    return v


def float_arg(value: Any, op: str, name: str, *, lo: float | None = None,
              hi: float | None = None) -> float:
    """A real number argument (a float, an int or a numpy scalar; not a bool or a
    string), optionally in ``[lo, hi]``; NaN is refused when a range is given."""
    if isinstance(value, (bool, str, bytes)) or not hasattr(type(value), "__float__"):
        raise InvalidArgumentTypeError(f"{_where(op, name)} must be a number, got {_type_name(value)} {value!r}")
    try:
        v = float(value)
    except (OverflowError, ValueError, TypeError):
        raise InvalidArgumentError(f"{_where(op, name)} is not representable as a float: {value!r}") from None
    if (lo is not None and not v >= lo) or (hi is not None and not v <= hi):
        raise InvalidArgumentError(f"{_where(op, name)} must be in [{lo}, {hi}], got {v}")
    return v


def bool_arg(value: Any, op: str, name: str) -> bool:
    """A bool argument: a bool, a numpy bool or the int 0 or 1."""
    np = sys.modules.get("numpy")
    if isinstance(value, bool) or (np is not None and isinstance(value, np.bool_)):
        return bool(value)
    if type(value) is int and value in (0, 1):
        return bool(value)
    raise InvalidArgumentTypeError(f"{_where(op, name)} must be a bool, got {_type_name(value)} {value!r}")


def str_arg(value: Any, op: str, name: str, choices: tuple[str, ...] | None = None) -> str:
    """A string argument, one of ``choices`` when given."""
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(f"{_where(op, name)} must be a string, got {_type_name(value)} {value!r}")
    if choices is not None and value not in choices:
        raise InvalidArgumentError(f"{_where(op, name)} must be one of {', '.join(choices)}; got {value!r}")
    return value


def shape_arg(shape: Any, op: str, name: str = "shape") -> tuple[int, ...]:
    """A shape: an int or a sequence of ints >= 0 (numpy integers count; floats and
    bools do not)."""
    try:
        dims = (operator.index(shape),) if not isinstance(shape, bool) else tuple(shape)
    except TypeError:
        try:
            dims = tuple(shape)
        except TypeError:
            raise InvalidArgumentTypeError(
                f"{_where(op, name)} must be an int or a sequence of ints, got {_type_name(shape)}") from None
    out = tuple(index_arg(d, op, f"{name}[{i}]") for i, d in enumerate(dims))
    if any(d < 0 for d in out):
        raise InvalidArgumentError(f"{_where(op, name)}: negative dimension in {out}")
    return out


def nbytes_of(shape: tuple[int, ...], dtype: str) -> int:
    """Bytes of a dense array (a Python int: never overflows)."""
    return math.prod(shape) * (DTYPES[dtype][1] // 8)


# ---- streams and outputs ---------------------------------------------------------------------------

def _framework(x: Any) -> str:
    mod = type(x).__module__.split(".")[0]
    if mod in ("torch", "jax", "jaxlib", "numpy", "cupy"):
        return "jax" if mod == "jaxlib" else mod
    return "other"


def stream_handle(stream: Any, like: Any, info: ArrayInfo, op: str | None = None) -> int:
    """The raw cudaStream_t for a call.

    ``stream`` may be an int handle, an ``xpuruntime.Stream``, an object with ``__cuda_stream__`` (cuda.core,
    cupy, torch >= 2.6) or ``cuda_stream`` (torch). ``None`` picks torch's current
    stream for torch tensors and the legacy default stream otherwise.
    """
    if stream is None:
        if info.device_kind == "cuda" and _framework(like) == "torch":
            torch = sys.modules["torch"]
            return torch.cuda.current_stream(info.device_index).cuda_stream
        return 0
    from ._stream import foreign_handle
    handle = foreign_handle(stream, op or "stream", "stream")
    if handle is None:
        raise InvalidArgumentTypeError(
            f"{_where(op, 'stream')} must be an int handle, an xpuruntime.Stream or expose __cuda_stream__, "
            f"got {type(stream)!r}")
    return handle if info.device_kind == "cuda" else 0  # CPU work is not stream-ordered


def empty_like_framework(like: Any, shape: tuple, dtype: str, info: ArrayInfo, stream: int) -> Any:
    """An uninitialized dense array on ``info``'s device, in ``like``'s framework
    where that framework can allocate (numpy, torch), else owned by xpuruntime."""
    fw = _framework(like)
    if fw == "numpy":
        import numpy as np
        return np.empty(shape, dtype=dtype)
    if fw == "torch":
        torch = sys.modules["torch"]
        device = "cpu" if info.device_kind == "cpu" else f"cuda:{info.device_index}"
        return torch.empty(shape, dtype=getattr(torch, dtype), device=device)
    return core.empty(list(shape), dtype, info.device_kind, info.device_index, stream)


def as_framework(out: Any, like: Any) -> Any:
    """``out`` (from ``empty_like_framework``) as the caller's array type, without copying."""
    fw = _framework(like)
    if fw in ("numpy", "torch"):
        return out  # already allocated by that framework
    if fw == "jax":
        import jax.numpy as jnp
        return jnp.from_dlpack(out)
    if fw == "cupy":
        return sys.modules["cupy"].from_dlpack(out)
    return out
