"""Shared test helpers: devices, tolerances (OPS.md), float64 references."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

# ||out - ref|| / ||ref|| bounds of OPS.md, per input dtype.
TOLERANCE = {"float32": 1e-5, "float16": 2e-3, "bfloat16": 1e-2}
DTYPES = list(TOLERANCE)

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_JAX = importlib.util.find_spec("jax") is not None


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


TORCH_DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]
JAX_PLATFORMS = ["cpu", pytest.param("gpu", marks=pytest.mark.gpu)]


def pytest_collection_modifyitems(config, items):
    skip_torch = pytest.mark.skip(reason="no CUDA device visible to torch")
    skip_jax = pytest.mark.skip(reason="no GPU visible to jax")
    for item in items:
        if "gpu" not in item.keywords:
            continue
        params = getattr(item, "callspec", None)
        values = params.params.values() if params else ()
        if "cuda" in values and not torch_cuda_available():
            item.add_marker(skip_torch)
        if "gpu" in values and not jax_gpu_available():
            item.add_marker(skip_jax)


def rel_err(out, ref) -> float:
    """||out - ref|| / ||ref|| in float64 (NaN if out has NaN where ref does not)."""
    out = np.asarray(out, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    denom = np.linalg.norm(ref.ravel())
    return float(np.linalg.norm((out - ref).ravel()) / (denom if denom > 0 else 1.0))


def assert_close(out, ref, dtype: str, what: str = "output", factor: float = 1.0):
    err = rel_err(out, ref)
    assert np.isfinite(err) and err <= TOLERANCE[dtype] * factor, (
        f"{what}: relative error {err:.3g} > {TOLERANCE[dtype] * factor:.3g} ({dtype})")


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


# ---- rms_norm reference: float64 autodiff through torch ----------------------------------------

def rms_norm_reference(x, w, eps=1e-6, residual=None, dy=None, dh=None, dtype="float32"):
    """float64 forward (and gradients by autodiff when dy is given), from numpy inputs.

    With a residual, h = x + residual is rounded to ``dtype`` first (OPS.md).
    Returns dict with y, h and, with dy, dx, dw, dres.
    """
    import torch
    tdt = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    x64 = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    w64 = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    out = {}
    if residual is not None:
        r64 = torch.tensor(residual, dtype=torch.float64, requires_grad=True)
        hsum = x64 + r64
        # Rounding to the input dtype is a straight-through step for gradients.
        h = hsum + (hsum.detach().to(tdt).to(torch.float64) - hsum.detach())
    else:
        h = x64
    y = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps) * w64
    out["y"], out["h"] = y.detach().numpy(), h.detach().numpy()
    if dy is not None:
        loss = (y * torch.tensor(dy, dtype=torch.float64)).sum()
        if residual is not None and dh is not None:
            loss = loss + (h * torch.tensor(dh, dtype=torch.float64)).sum()
        loss.backward()
        out["dx"], out["dw"] = x64.grad.numpy(), w64.grad.numpy()
        if residual is not None:
            out["dres"] = r64.grad.numpy()
    return out


def random_inputs(rng, shape, dtype="float32", offset=0.0):
    """Random normal data already rounded to ``dtype`` (returned as float32 numpy)."""
    a = (rng.standard_normal(shape) + offset).astype(np.float32)
    if dtype == "float32":
        return a
    import torch
    tdt = {"float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    return torch.from_numpy(a).to(tdt).to(torch.float32).numpy()


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# ---- generic float64 references through torch autograd -----------------------------------------

def torch_f64_vjp(fn, inputs, dy=None):
    """``fn`` (torch ops) on float64 copies of numpy ``inputs``; with ``dy``, also the
    gradients of ``sum(fn(*inputs) * dy)`` for every input. Returns (y, [grads])."""
    import torch
    ts = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in inputs]
    y = fn(*ts)
    if dy is None:
        return y.detach().numpy(), None
    (y * torch.tensor(np.asarray(dy, dtype=np.float64))).sum().backward()
    return y.detach().numpy(), [t.grad.numpy() for t in ts]


def torch_reference_ops():
    """float64 torch definitions of the OPS.md ops, keyed by name (args as in OPS.md)."""
    import torch
    import torch.nn.functional as F
    return {
        "layer_norm": lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b, 1e-5),
        "softmax": lambda x: torch.softmax(x, -1),
        "swiglu": lambda g, u: F.silu(g) * u,
        "geglu": lambda g, u: F.gelu(g, approximate="tanh") * u,
    }


# ---- the fuzz suite's summary (tests/fuzz) ---------------------------------------------------

def pytest_report_header(config):
    fuzz = sys.modules.get("_fuzz")
    return None if fuzz is None else f"fuzz: XPU_FUZZ_SEED={fuzz.SEED}"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Cases the fuzz suite ran (and failed) per frontend, when it ran."""
    runner, fuzz = sys.modules.get("_runner"), sys.modules.get("_fuzz")
    counts = runner.counts() if runner is not None else {}
    if not counts:
        return
    tr = terminalreporter
    tr.section("fuzz cases per frontend")
    for fe, (n, bad) in counts.items():
        tr.write_line(f"{fe:>12}: {n:5d} cases, {bad} failed")
    tr.write_line(f"{'total':>12}: {sum(n for n, _ in counts.values()):5d} cases, "
                  f"{sum(b for _, b in counts.values())} failed (XPU_FUZZ_SEED={fuzz.SEED})")
