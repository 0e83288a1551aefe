"""`import xpuruntime` reaches ops, memory and the frontends as attributes, lazily:
nothing heavy is imported up front, and it works without jax or torch."""

import subprocess
import sys

import pytest


def run_python(code: str) -> str:
    """Runs ``code`` in a fresh interpreter (-P: the installed package) and returns stdout."""
    proc = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_attributes_after_bare_import():
    out = run_python(
        "import sys, numpy as np, xpuruntime\n"
        "heavy = [m for m in ('torch', 'jax', 'onnxruntime', 'xpuruntime.ops', 'xpuruntime.memory')"
        " if m in sys.modules]\n"
        "x = np.ones((2, 8), np.float32)\n"
        "y = xpuruntime.ops.rms_norm(x, np.ones(8, np.float32))\n"
        "print(heavy, round(float(y.sum()), 3), callable(xpuruntime.memory.stats),"
        " 'ops' in dir(xpuruntime), 'torch' in dir(xpuruntime.interop))\n")
    assert out == "[] 16.0 True True True"


def test_works_without_jax_or_torch():
    # A None entry in sys.modules makes `import jax` / `import torch` raise ImportError.
    out = run_python(
        "import sys\n"
        "sys.modules['jax'] = sys.modules['torch'] = None\n"
        "import xpuruntime\n"
        "print(xpuruntime.ops.__name__, xpuruntime.interop.onnxruntime.DOMAIN)\n"
        "for name in ('xpuruntime.jax', 'xpuruntime.interop.torch'):\n"
        "    try:\n"
        "        eval(name)\n"
        "    except ImportError as e:\n"
        "        print(str(e).split(';')[1].strip())\n")
    assert out.splitlines() == [
        "xpuruntime.ops xpuruntime",
        "install it with `pip install xpuruntime[jax]`",
        "install it with `pip install xpuruntime[torch]`",
    ]


def test_unknown_attribute_is_attribute_error():
    import xpuruntime
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        xpuruntime.nope  # noqa: B018
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        xpuruntime.interop.nope  # noqa: B018
    assert not hasattr(xpuruntime, "nope")


@pytest.mark.skipif(__import__("importlib").util.find_spec("torch") is None, reason="no torch")
def test_torch_frontend_as_attribute():
    out = run_python("import xpuruntime, torch\n"
                     "print(round(xpuruntime.interop.torch.rms_norm(torch.ones(2, 4), torch.ones(4)).sum().item(), 3))")
    assert out == "8.0"


def test_model_frontends_name_their_extra():
    """xpuruntime.flax and xpuruntime.interop.transformers are attributes too, and without
    their framework they raise ImportError naming the extra to install."""
    out = run_python(
        "import sys\n"
        "sys.modules['flax'] = sys.modules['transformers'] = None\n"
        "import xpuruntime\n"
        "print('flax' in dir(xpuruntime), 'transformers' in dir(xpuruntime.interop))\n"
        "for name in ('xpuruntime.flax', 'xpuruntime.interop.transformers'):\n"
        "    try:\n"
        "        eval(name)\n"
        "    except ImportError as e:\n"
        "        print(str(e).split(';')[1].strip())\n")
    assert out.splitlines() == [
        "True True",
        "install it with `pip install xpuruntime[flax]`",
        "install it with `pip install xpuruntime[transformers]`",
    ]
