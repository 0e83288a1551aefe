"""Every op under jax.jit on an 8-device CPU mesh (4 x 2): row-sharded inputs stay
sharded (no all-gather in the compiled program), results match one device, and
sharding along the normalized axis is gathered with a warning; rope with the
sequence axis sharded and cos/sin replicated runs without any collective. The cases run in a
fresh process because the device count is fixed when jax starts."""

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("jax")

CASES = pathlib.Path(__file__).parent / "_sharded_cases.py"


def test_sharded_ops_on_an_8_device_mesh(tmp_path):
    out = subprocess.run([sys.executable, str(CASES)], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    lines = [line for line in out.stdout.splitlines() if line.startswith("ok ")]
    assert len(lines) == 21, out.stdout
