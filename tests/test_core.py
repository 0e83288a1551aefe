"""The core through the native module: registry, policies, errors, info."""

import subprocess
import sys

import numpy as np
import pytest

import xpuruntime
from xpuruntime import _core, _spec


def test_registry_lists_rms_norm_for_every_dtype_and_policy():
    kernels = {(k["op"], k["direction"], k["device"]): k for k in xpuruntime.kernels()}
    for direction in ("forward", "backward"):
        entry = kernels[("rms_norm", direction, "cpu")]
        assert entry["dtypes"] == ["bfloat16", "float16", "float32"]
        assert entry["policies"] == ["deterministic", "fast", "reference"]
        if _core.built_with_cuda:
            assert ("rms_norm", direction, "cuda") in kernels


@pytest.mark.parametrize("op", _spec.op_names())
def test_native_kernels_registered_for_every_device_dtype_and_policy(op):
    keys = {(k["op"], k["direction"], k["device"], k["dtype"], k["policy"]) for k in _core.kernels()}
    devices = ["cpu"] + (["cuda"] if _core.built_with_cuda else [])
    for direction in ("forward", "backward"):
        for device in devices:
            for dtype in ("float32", "float16", "bfloat16"):
                for policy in ("fast", "deterministic", "reference"):
                    assert (op, direction, device, dtype, policy) in keys


def test_onnxruntime_library_is_packaged():
    pytest.importorskip("onnxruntime")
    from xpuruntime.interop import onnxruntime as xo
    assert xo.library_path().endswith("libxpuruntime_ort.so")


def test_unknown_op_error_lists_what_exists():
    with pytest.raises(xpuruntime.KernelNotFoundError, match="unknown op 'no_such_op'"):
        _core.lookup_kernel("no_such_op", "forward", "cpu", "float32", "fast")
    with pytest.raises(LookupError, match="registered for rms_norm: rms_norm/forward/cpu"):
        _core.lookup_kernel("rms_norm", "forward", "cpu", "float64", "fast")


def test_policy_scope_and_global(monkeypatch):
    assert xpuruntime.get_policy() == "fast"
    with xpuruntime.policy("deterministic"):
        assert xpuruntime.get_policy() == "deterministic"
        with xpuruntime.policy("reference"):
            assert xpuruntime.get_policy() == "reference"
        assert xpuruntime.get_policy() == "deterministic"
    xpuruntime.set_policy("reference")
    try:
        assert xpuruntime.get_policy() == "reference"
    finally:
        xpuruntime.set_policy(None)
    monkeypatch.setenv("XPURUNTIME_POLICY", "deterministic")
    assert xpuruntime.get_policy() == "deterministic"
    monkeypatch.setenv("XPURUNTIME_POLICY", "bogus")
    with pytest.raises(ValueError, match="unknown policy 'bogus'"):
        xpuruntime.get_policy()


def test_import_without_frontends(tmp_path):
    # The package imports with jax, torch and onnxruntime hidden; frontends name their extra.
    code = (
        "import sys\n"
        "for m in ('jax', 'torch', 'onnxruntime'): sys.modules[m] = None\n"
        "import xpuruntime, xpuruntime.ops, numpy as np\n"
        "x = np.ones((2, 4), np.float32) * np.arange(4, dtype=np.float32)\n"
        "xpuruntime.ops.rms_norm(x, np.ones(4, np.float32))\n"
        "try:\n"
        "    import xpuruntime.jax\n"
        "except ImportError as e:\n"
        "    assert 'xpuruntime[jax]' in str(e), e\n"
        "try:\n"
        "    import xpuruntime.interop.torch\n"
        "except ImportError as e:\n"
        "    assert 'xpuruntime[torch]' in str(e), e\n"
        "print('ok')\n"
    )
    # Run from elsewhere so the installed package is imported, not the source folder.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


@pytest.mark.parametrize("first", ["xpuruntime", "torch", "jax"])
def test_frameworks_import_in_any_order(tmp_path, first):
    # Each framework imported after xpuruntime (and before) works: the extension
    # exports nothing but its init, so no C++ runtime state is shared by accident.
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    order = [first] + [m for m in ("xpuruntime", "torch", "jax") if m != first]
    code = (
        "".join(f"import {m}\n" for m in order)
        + "import numpy as np, xpuruntime.ops\n"
        "xpuruntime.devices()\n"
        "t = torch.ones(3, 4)\n"
        "y = xpuruntime.ops.rms_norm(t, torch.ones(4))\n"
        "assert torch.allclose(y, torch.ones(3, 4), atol=1e-3)\n"
        "print(jax.numpy.ones(2).sum())\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_info_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "xpuruntime", "info"], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "rms_norm" in out.stdout and "CUDA built" in out.stdout


def test_empty_rejects_bad_requests():
    with pytest.raises(ValueError, match="negative dimension"):
        _core.empty([-1], "float32", "cpu", 0, 0)
    with pytest.raises(ValueError, match="unknown dtype"):
        _core.empty([1], "float128", "cpu", 0, 0)
    owned = _core.empty([3, 4], "float32", "cpu", 0, 0)
    assert _core.array_info(owned) == ("float32", (3, 4), "cpu", 0)


def test_a_bad_environment_policy_reads_the_cores_text_in_every_frontend(monkeypatch):
    # XPURUNTIME_POLICY is checked by the core's attribute rule, which names the op.
    monkeypatch.setenv("XPURUNTIME_POLICY", "bogus")
    want = r"^softmax: unknown policy 'bogus'; expected fast, deterministic or reference$"
    calls = [lambda: xpuruntime.ops.softmax(np.ones((2, 4), np.float32))]
    try:
        import jax.numpy as jnp
        import xpuruntime.jax as xj
        calls.append(lambda: xj.softmax(jnp.ones((2, 4))))
    except ImportError:
        pass
    try:
        import torch
        import xpuruntime.interop.torch as xt
        calls.append(lambda: xt.softmax(torch.ones(2, 4)))
    except ImportError:
        pass
    for call in calls:
        with pytest.raises(ValueError, match=want):
            call()
