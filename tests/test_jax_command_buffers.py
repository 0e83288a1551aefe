"""XLA command buffers (CUDA graphs) on the GPU: every op, forward and backward,
gives bitwise the same results with command buffers forced on for custom calls
as with them off. Each setting runs in its own process because XLA reads its
flags once."""

import os
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")

pytestmark = pytest.mark.gpu

# The program: every op once, value and gradients, f32 and bf16, on the GPU.
# It writes the results to an .npz file and prints how many of our CUDA handler
# calls ran while XLA captured a command buffer (xpuruntime counts them with
# XPURUNTIME_COUNT_CAPTURES=1; newer XLA converts thunks, so HLO text can't tell).
_PROGRAM = r"""
import sys
import numpy as np
import jax, jax.numpy as jnp
import xpuruntime.jax as xj
from xpuruntime import _core

def loss(x, w, b, g, u, labels):
    h = xj.layer_norm(xj.rms_norm(x, w), w, b)
    h = xj.softmax(xj.swiglu(h, g) + xj.geglu(h, u), scale=0.5)
    t, n = h.shape
    r = xj.rope(h.reshape(2, t // 2, 4, n // 4), jnp.cos(jnp.arange(t // 2 * n // 8.0)).reshape(t // 2, n // 8),
                jnp.sin(jnp.arange(t // 2 * n // 8.0)).reshape(t // 2, n // 8))
    return xj.cross_entropy(r.reshape(t, n), labels, label_smoothing=0.1)

step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3, 4)))
rng = np.random.default_rng(3)
out = {}
for dtype in ("float32", "bfloat16"):
    f = lambda *s: jnp.asarray(rng.standard_normal(s), dtype=dtype)
    args = (f(64, 1024), f(1024), f(1024), f(64, 1024), f(64, 1024),
            jnp.asarray(rng.integers(0, 1024, 64), dtype=jnp.int32))
    args = jax.device_put(args, jax.devices("gpu")[0])
    for _ in range(3):  # replays of the same command buffer must agree too
        value, grads = step(*args)
    out[dtype + "_loss"] = np.asarray(value.astype(jnp.float32))
    for i, g in enumerate(grads):
        out[f"{dtype}_grad{i}"] = np.asarray(g.astype(jnp.float32))
np.savez(sys.argv[1], **out)
print(_core.xla_captured_calls())
"""


def _run(tmp_path, name: str, xla_flags: str):
    env = dict(os.environ, XLA_FLAGS=xla_flags, XLA_PYTHON_CLIENT_PREALLOCATE="false",
               XPURUNTIME_COUNT_CAPTURES="1")
    path = tmp_path / f"{name}.npz"
    proc = subprocess.run([sys.executable, "-c", _PROGRAM, str(path)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    captured = int(proc.stdout.strip().splitlines()[-1])
    return dict(np.load(path)), captured


def test_results_identical_with_command_buffers_on_and_off(tmp_path):
    from conftest import jax_gpu_available
    if not jax_gpu_available():
        pytest.skip("no JAX GPU")
    off, used_off = _run(tmp_path, "off", "--xla_gpu_enable_command_buffer=")
    on, used_on = _run(tmp_path, "on", "--xla_gpu_enable_command_buffer=FUSION,CUSTOM_CALL "
                       "--xla_gpu_graph_min_graph_size=1")
    assert used_off == 0
    assert used_on > 0, "no xpuruntime kernel ran inside a command buffer"
    assert on.keys() == off.keys()
    for key in off:
        assert np.isfinite(off[key]).all(), key
        np.testing.assert_array_equal(on[key], off[key], err_msg=key)
