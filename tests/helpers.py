"""Shared test helpers, defined once: tolerances (OPS.md), devices, error norms,
conversions, random inputs rounded to a dtype."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

# ||out - ref|| / ||ref|| bounds of OPS.md, per input dtype.
TOLERANCE = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2}
DTYPES = list(TOLERANCE)
POLICIES = ["fast", "deterministic", "reference"]

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_JAX = importlib.util.find_spec("jax") is not None

# CUDA cases carry the gpu mark; tests/conftest.py skips them without a device.
TORCH_DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
JAX_PLATFORMS = ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)]
DEVICES = TORCH_DEVICES  # the op tests name devices as torch does, for every frontend


def torch_cuda_available() -> bool:
    if not HAS_TORCH:
        return False
    import torch
    return torch.cuda.is_available()


def jax_gpu_available() -> bool:
    if not HAS_JAX:
        return False
    import jax
    try:
        return len(jax.devices("gpu")) > 0
    except RuntimeError:
        return False


def to_numpy(t) -> np.ndarray:
    """Any framework array as float64 numpy (bf16 through torch/jax upcasts)."""
    if HAS_TORCH:
        import torch
        if isinstance(t, torch.Tensor):
            return t.detach().to("cpu", torch.float64).numpy()
    if HAS_JAX:
        import jax
        if isinstance(t, jax.Array):
            return np.asarray(t.astype("float32"), dtype=np.float64)
    return np.asarray(t, dtype=np.float64)


def dtype_name(a) -> str:
    """The dtype of a numpy, torch or jax array as a name ("float32", "bfloat16", ...)."""
    return str(a.dtype).replace("torch.", "")


def rel_err(out, ref) -> float:
    """||out - ref|| / ||ref|| in float64 (NaN if out has NaN where ref does not; the
    plain norm when ref is 0). The shapes must match."""
    out = to_numpy(out)
    ref = np.asarray(ref, dtype=np.float64)
    assert out.shape == ref.shape, (out.shape, ref.shape)
    denom = np.linalg.norm(ref.ravel())
    return float(np.linalg.norm((out - ref).ravel()) / (denom if denom > 0 else 1.0))


def assert_close(out, ref, dtype: str, what: str = "output", factor: float = 1.0):
    """rel_err(out, ref) within the OPS.md tolerance of ``dtype`` (times ``factor``)."""
    err = rel_err(out, ref)
    assert np.isfinite(err) and err <= TOLERANCE[dtype] * factor, (
        f"{what}: relative error {err:.3g} > {TOLERANCE[dtype] * factor:.3g} ({dtype})")


def same_bits(a, b) -> bool:
    """Bitwise equality of two numpy or torch arrays (NaN payloads and -0 included)."""
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    import torch
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(torch.equal(a.reshape(-1).contiguous().view(torch.uint8),
                            b.reshape(-1).contiguous().view(torch.uint8)))


def raises(op: str, match: str):
    """pytest.raises for a ValueError whose message starts with ``op: `` and matches."""
    return pytest.raises(ValueError, match=rf"^{op}: .*{match}")


def round_to(a, dtype: str) -> np.ndarray:
    """``a`` rounded (to nearest even) to ``dtype``, returned as float32 numpy (float64:
    unchanged, as float64)."""
    if dtype == "float64":
        return np.asarray(a, dtype=np.float64)
    a = np.asarray(a, dtype=np.float32)
    if dtype == "float32":
        return a
    if dtype == "float16":
        return a.astype(np.float16).astype(np.float32)
    if dtype != "bfloat16":
        raise ValueError(f"no rounding to {dtype}")
    bits = a.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(a), a, out)


def random_inputs(rng, shape, dtype="float32", offset=0.0, scale=1.0):
    """Random normal data (times ``scale``, plus ``offset``) already rounded to ``dtype``
    (returned as float32 numpy): what a kernel in that dtype sees."""
    return round_to((rng.standard_normal(shape) * scale + offset).astype(np.float32), dtype)


def make(shape, dtype="float32", device="cpu", seed=0, scale=1.0, numpy_ok=True):
    """Random normal input for the native frontend: numpy for float32 on the CPU (when
    ``numpy_ok``), else a torch tensor of ``dtype`` on ``device``."""
    a = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
    if dtype == "float32" and device == "cpu" and numpy_ok:
        return a
    import torch
    return torch.from_numpy(a).to(getattr(torch, dtype)).to(device)


def like(a: np.ndarray, ref, dtype=None):
    """numpy array ``a`` in ``ref``'s framework and device (and ``dtype``, default a's)."""
    if isinstance(ref, np.ndarray):
        return a if dtype is None else a.astype(dtype)
    import torch
    t = torch.from_numpy(np.array(a, order="C"))  # (ascontiguousarray makes 0-d arrays 1-d)
    if dtype is not None:
        t = t.to(getattr(torch, dtype))
    return t.to(ref.device)


def shape_id(shape) -> str:
    """A test id for a shape: "3x7", "2x3x33"."""
    return "x".join(map(str, shape))


def cases(**axes):
    """One decorator for several ``pytest.mark.parametrize`` axes, in the order given:
    ``cases(shape=(SHAPES, shape_id), dtype=DTYPES)``; an axis is its values, or
    (values, ids) with ids a list or a function."""
    def apply(fn):
        for name, values in axes.items():  # the first given is the innermost: first in the ids
            values, ids = values if isinstance(values, tuple) else (values, None)
            fn = pytest.mark.parametrize(name, values, ids=ids)(fn)
        return fn
    return apply


def assert_policies_agree(outs: dict, device: str, dtype: str, what: str = "",
                          against: str = "reference"):
    """``outs``: policy -> list of results. On the CPU one kernel serves every policy
    (bitwise equal); on CUDA they agree within the dtype's tolerance."""
    for policy, results in outs.items():
        for a, b in zip(results, outs[against]):
            if device == "cpu":
                assert same_bits(a, b), f"{what}: {policy} differs from {against} on the CPU"
            else:
                assert rel_err(a, to_numpy(b)) <= TOLERANCE[dtype], f"{what}: {policy} vs {against}"


def jax_with_targets(op: str):
    """jax, with xpuruntime's XLA FFI targets registered; skips without jax or without
    this op's targets (a build without XLA FFI headers)."""
    jax = pytest.importorskip("jax")
    import xpuruntime.jax  # noqa: F401  registers every target on every platform
    from xpuruntime._native import core
    if f"xpuruntime_{op}_fwd" not in core.ffi_targets():
        pytest.skip("built without XLA FFI headers")
    return jax


def fused_linear_ce_bad_calls(hidden, weight, bias, labels):
    """The malformed calls of fused_linear_cross_entropy that every frontend refuses alike:
    ``(args, kwargs, message pattern)``, all ValueError; hidden ``[T, H]``, weight ``[V, H]``
    (V = 97), bias ``[V]``, labels ``[T]`` of one frontend's arrays."""
    return [
        ((hidden, weight, labels), {"reduction": "avg"}, "unknown reduction 'avg'"),
        ((hidden, weight[:, :5], labels), {}, r"'weight' must be \[V, H\]"),
        ((hidden, weight, labels[:3]), {}, "'labels' must have the leading shape"),
        ((hidden, weight, labels), {"bias": bias[:4]}, r"'bias' must be \[97\]"),
        ((hidden, weight, labels), {"chunk_size": 0}, "'chunk_size' must be a positive int"),
        ((hidden, weight, labels), {"label_smoothing": 2.0}, "label_smoothing"),
    ]
