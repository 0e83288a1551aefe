"""jax.export: programs using xpuruntime ops serialize, load in a fresh process
that imports xpuruntime, and give the same numbers. Committed artifacts guard
backward compatibility of target names, operands and attributes."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from jax import export  # noqa: E402

import xpuruntime.jax as xj  # noqa: E402
from xpuruntime import _spec  # noqa: E402
from xpuruntime.jax._registration import _version_tuple  # noqa: E402
from conftest import JAX_PLATFORMS  # noqa: E402
from _spec_examples import attr_cases, example, float_inputs  # noqa: E402

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def model(x, w, b, g, u, labels):
    """Every op once, forward and backward."""
    def loss(x, w, b, g, u):
        h = xj.layer_norm(xj.rms_norm(x, w), w, b)
        h = xj.softmax(xj.swiglu(h, g) + xj.geglu(h, u), scale=0.5)
        r = xj.rope(h.reshape(2, 4, 1, 16), jnp.ones((4, 8)), jnp.zeros((4, 8)))
        return xj.cross_entropy(r.reshape(8, 16), labels, label_smoothing=0.1)
    return jax.value_and_grad(loss, argnums=(0, 1))(x, w, b, g, u)


def inputs():
    rng = np.random.default_rng(7)
    f = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return f(8, 16), f(16), f(16), f(8, 16), f(8, 16), rng.integers(0, 16, 8).astype(np.int32)


def exported(platforms=("cpu",)):
    args = inputs()
    return export.export(jax.jit(model), platforms=list(platforms),
                         disabled_checks=xj.export_disabled_checks())(*args)


def on_platform(platform: str):
    """Runs the block's computations on the first device of ``platform`` ("cpu" or "gpu")."""
    return jax.default_device(jax.devices(platform)[0])


def test_export_refuses_without_the_allowance():
    with pytest.raises(ValueError, match="xpuruntime_"):
        export.export(jax.jit(model), platforms=["cpu"])(*inputs())


@pytest.mark.parametrize("platform", JAX_PLATFORMS)
def test_round_trip_in_a_fresh_process(tmp_path, platform):
    # Exported for both platforms; the fresh process runs it on `platform`.
    blob = exported(("cpu", "cuda") if platform == "gpu" else ("cpu",)).serialize()
    path = tmp_path / "model.jax"
    path.write_bytes(blob)
    with on_platform(platform):
        expected = jax.jit(model)(*inputs())
    np.save(tmp_path / "expected.npy", np.concatenate([np.ravel(np.asarray(a)) for a in
                                                       jax.tree_util.tree_leaves(expected)]))
    code = (
        "import sys, numpy as np, jax\n"
        "from jax import export\n"
        "import xpuruntime.jax  # registers the FFI targets\n"
        f"sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r})\n"
        "from test_jax_export import inputs\n"
        f"exp = export.deserialize(open({str(path)!r}, 'rb').read())\n"
        f"with jax.default_device(jax.devices({platform!r})[0]):\n"
        "    out = exp.call(*inputs())\n"
        "got = np.concatenate([np.ravel(np.asarray(a)) for a in jax.tree_util.tree_leaves(out)])\n"
        f"want = np.load({str(tmp_path / 'expected.npy')!r})\n"
        "assert np.array_equal(got, want), np.abs(got - want).max()\n"
        "print('ok')\n")
    env = dict(os.environ)
    if platform == "cpu":
        env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("*.jax")))
def test_committed_artifacts_still_load_and_run(fixture):
    # jax loads what older jax versions exported, not what newer ones did (the oldest
    # supported jax, the package's build pin, runs this test too).
    made_by = fixture.rsplit("_jax", 1)[1].removesuffix(".jax")
    if _version_tuple(jax.__version__) < _version_tuple(made_by):
        pytest.skip(f"artifact exported by jax {made_by}, newer than this jax {jax.__version__}")
    exp = export.deserialize((FIXTURES / fixture).read_bytes())
    if "cpu" not in exp.platforms:
        pytest.skip("artifact for another platform")
    with on_platform("cpu"):
        got = exp.call(*inputs())
        want = jax.jit(model)(*inputs())
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fixture", sorted(p.name for p in (FIXTURES / "retired").glob("*.jax")))
def test_artifacts_of_retired_targets_fail_clearly(fixture):
    # Made against targets whose operands changed since (their specs' revision went up:
    # rms_norm's forward has no rstd output, its backward no rstd input): the call names
    # the missing target instead of computing something else.
    made_by = fixture.rsplit("_jax", 1)[1].removesuffix(".jax")
    if _version_tuple(jax.__version__) < _version_tuple(made_by):
        pytest.skip(f"artifact exported by jax {made_by}, newer than this jax {jax.__version__}")
    exp = export.deserialize((FIXTURES / "retired" / fixture).read_bytes())
    with on_platform("cpu"), pytest.raises(Exception, match=r"xpuruntime_\w+ "):
        jax.block_until_ready(exp.call(*inputs()))


def _symbolic(op, inputs):
    """Input shapes with the leading (batch) axis of every per-row input symbolic."""
    (b,) = export.symbolic_shape("b")
    return [None if a is None else jax.ShapeDtypeStruct(
        (b,) + a.shape[1:] if s.role in ("rows", "labels") else a.shape, a.dtype)
        for s, a in zip(_spec.get(op).inputs, inputs)]


@pytest.mark.parametrize("grad", [False, True], ids=["value", "grad"])
@pytest.mark.parametrize("op", _spec.op_names())
def test_symbolic_batch_dimension(op, grad):
    # Issue 15.6: shape-polymorphic export of every op and its gradient (the workspace
    # of the norm gradients and cross_entropy's forward were sized from symbolic dims).
    cases = [(attrs, optional) for attrs in attr_cases(op) for optional in (False, True)]
    for attrs, optional in cases:
        inputs, attrs = example(op, (3, 2), optional=optional, attrs=attrs)
        fn = getattr(xj, op)
        n_req = sum(not s.optional for s in _spec.get(op).inputs)
        names = [s.name for s in _spec.get(op).inputs]

        def run(*a):
            out = fn(*a[:n_req], **attrs, **{n: v for n, v in zip(names[n_req:], a[n_req:]) if v is not None})
            return out if isinstance(out, tuple) else (out,)

        def loss(*a):
            return sum(jnp.sum(jnp.sin(r)) for r in run(*a) if jnp.issubdtype(r.dtype, jnp.floating))

        f = jax.grad(loss, float_inputs(op, inputs)) if grad else run
        exp = export.export(jax.jit(f), platforms=["cpu"],
                            disabled_checks=xj.export_disabled_checks())(*_symbolic(op, inputs))
        for batch in (1, 3, 5):
            concrete, _ = example(op, (batch, 2), optional=optional, seed=batch)
            got, want = exp.call(*concrete), jax.jit(f)(*concrete)
            for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
                np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6, atol=1e-6,
                                           err_msg=f"{op} {attrs} batch {batch}")


def test_workspace_bound_refuses_a_symbolic_last_axis():
    # The norm backward's scratch grows with N: no bound exists, and it says so.
    (n,) = export.symbolic_shape("n")
    x, w = jax.ShapeDtypeStruct((4, n), jnp.float32), jax.ShapeDtypeStruct((n,), jnp.float32)
    grad = jax.grad(lambda a, b: jnp.sum(xj.rms_norm(a, b)), (0, 1))
    with pytest.raises(ValueError, match="rms_norm: the backward workspace grows with the symbolic"):
        export.export(jax.jit(grad), platforms=["cpu"], disabled_checks=xj.export_disabled_checks())(x, w)


if __name__ == "__main__":  # regenerate the fixture: python tests/test_jax_export.py
    # After a spec's revision goes up, move the old artifact to fixtures/retired/ and
    # bump the model number here.
    (FIXTURES / f"model_v2_jax{jax.__version__}.jax").write_bytes(exported().serialize())
