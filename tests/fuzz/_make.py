"""Arrays of a fuzz case: random values by operand role, in the case's container
(numpy, torch, jax, or numpy for ONNX Runtime), dtype and layout, and back to float64."""

from __future__ import annotations

import math

import numpy as np

SPECIALS = (math.nan, math.inf, -math.inf)


def np_dtype(name: str):
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def torch_dtype(name: str):
    import torch
    return getattr(torch, name)


def dtype_of(a) -> str:
    """The dtype name of a numpy, torch or jax array ("float32", "bfloat16", ...)."""
    return str(a.dtype).replace("torch.", "")


def to_f64(a) -> np.ndarray:
    """Any container's array as float64 numpy (ints stay integers, bools become 0/1)."""
    if type(a).__module__.startswith("torch"):
        import torch
        t = a.detach().cpu()
        if t.is_floating_point():
            return t.to(torch.float64).numpy()
        return t.to(torch.int64).numpy() if not t.is_complex() else t.numpy()
    arr = np.asarray(a)
    if arr.dtype.kind in "iub":
        return arr.astype(np.int64)
    if arr.dtype.kind == "c":
        return arr
    return arr.astype(np.float64)


def _values(desc: dict, rng, attrs: dict, n_cols: int, natural) -> np.ndarray:
    """Values of one operand as float64 / int64 numpy (before the dtype and layout)."""
    shape = tuple(desc["shape"])
    dtype = desc["dtype"]
    if natural is not None and tuple(np.shape(natural)) == shape and desc["values"] != "out_of_range":
        return np.asarray(natural)
    if desc["role"] == "labels" and dtype in ("int32", "int64", "int8", "uint16"):
        hi = max(n_cols, 1)
        lab = rng.integers(0, hi, shape)
        ignore = attrs.get("ignore_index")
        info = np.iinfo(np.dtype(dtype))
        if ignore is not None and info.min <= ignore <= info.max:
            lab = np.where(rng.random(shape) < 0.2, ignore, lab)
        if desc["values"] == "out_of_range" and lab.size:
            bad = n_cols if n_cols != ignore else n_cols + 1
            lab.flat[rng.integers(0, lab.size)] = bad
        return lab.astype(np.int64)
    kind = np_dtype(dtype).kind
    if kind in "iu":
        return rng.integers(0, 4 if kind == "u" else 4, shape).astype(np.int64) - (0 if kind == "u" else 2)
    if kind == "b":
        return rng.random(shape) < 0.5
    if kind == "c":
        return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    return rng.standard_normal(shape)


def _storage_and_view(v: np.ndarray, layout: str, axis: int):
    """(storage in numpy, recipe to turn it into the view): a view equal to ``v`` (for
    "expanded": constant along the axis) in the requested layout. Gaps of a sliced
    storage hold NaN (or a large integer), so reading them shows in the result."""
    r = v.ndim
    if layout == "dense" or r == 0 or v.size == 0:
        return np.array(v, order="C"), ("dense",)  # (ascontiguousarray makes 0-d 1-d)
    j = axis % r
    if layout == "transposed" and r >= 2:
        k = j - 1 if j > 0 else 1
        return np.ascontiguousarray(np.swapaxes(v, j, k)), ("swap", j, k)
    if layout == "sliced":
        shape = list(v.shape)
        shape[j] *= 2
        fill = np.nan if v.dtype.kind == "f" else (True if v.dtype.kind == "b" else 99)
        storage = np.full(shape, fill, dtype=v.dtype)
        idx = [slice(None)] * r
        idx[j] = slice(0, None, 2)
        storage[tuple(idx)] = v
        return storage, ("step", j)
    if layout == "expanded":
        return np.ascontiguousarray(np.take(v, [0], axis=j)), ("expand", tuple(v.shape))
    if layout == "negative":
        return np.ascontiguousarray(np.flip(v, j)), ("flip", j)
    if layout == "offset":
        flat = np.empty(v.size + 1, dtype=v.dtype)
        flat[0] = flat[1] if v.size else 0
        flat[1:] = v.ravel()
        return flat, ("offset", tuple(v.shape))
    return np.array(v, order="C"), ("dense",)


def _view_numpy(a, recipe):
    kind = recipe[0]
    if kind == "swap":
        return np.swapaxes(a, recipe[1], recipe[2])
    if kind == "step":
        idx = [slice(None)] * a.ndim
        idx[recipe[1]] = slice(0, None, 2)
        return a[tuple(idx)]
    if kind == "expand":
        return np.broadcast_to(a, recipe[1])
    if kind == "flip":
        return np.flip(a, recipe[1])
    if kind == "offset":
        return a[1:].reshape(recipe[1])
    return a


def _view_torch(t, recipe):
    kind = recipe[0]
    if kind == "swap":
        return t.transpose(recipe[1], recipe[2])
    if kind == "step":
        idx = [slice(None)] * t.dim()
        idx[recipe[1]] = slice(0, None, 2)
        return t[tuple(idx)]
    if kind == "expand":
        return t.expand(*recipe[1])
    if kind == "offset":
        return t[1:].view(recipe[1])
    if kind == "flip":
        raise AssertionError("torch has no negative strides")
    return t


def make_input(desc: dict, rng, container: str, attrs: dict, n_cols: int, natural=None):
    """(array in ``container``, float64 values the kernel sees, row mask or None).

    The row mask (over the leading axes) is False for rows holding the NaN/Inf this
    operand got on purpose (``values == "special"``)."""
    v = _values(desc, rng, attrs, n_cols, natural)
    mask = None
    if desc["values"] == "special" and v.size and v.dtype.kind == "f":
        v = np.array(v, dtype=np.float64)
        for _ in range(int(rng.integers(1, 4))):
            v.flat[rng.integers(0, v.size)] = SPECIALS[rng.integers(0, 3)]
        mask = np.isfinite(v).all(axis=-1) if v.ndim else np.array(np.isfinite(v))
    dtype = desc["dtype"]
    target = np_dtype(dtype)
    if target.kind == "c":
        typed = v.astype(target) if v.dtype.kind == "c" else v.astype(np.float64).astype(target)
    elif target.kind in "iu" and v.dtype.kind == "f":
        typed = np.nan_to_num(v).round().astype(target)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            typed = v.astype(target)
    storage, recipe = _storage_and_view(typed, desc.get("layout", "dense"), desc.get("layout_axis", 0))
    if container == "torch":
        import torch
        if dtype == "bfloat16":
            t = torch.from_numpy(storage.astype(np.float32)).to(torch.bfloat16)
        elif dtype == "uint16":
            t = torch.from_numpy(storage.astype(np.int32)).to(torch.uint16)
        else:
            t = torch.from_numpy(storage)
        arr = _view_torch(t, recipe)
    elif container == "jax":
        import jax.numpy as jnp
        arr = jnp.asarray(_view_numpy(storage, recipe))
    else:
        arr = _view_numpy(storage, recipe)
    seen = to_f64(arr) if target.kind != "c" else np.asarray(typed)
    return arr, seen, mask
