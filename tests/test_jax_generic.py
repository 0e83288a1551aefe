"""The JAX frontend as generic code over the op specs: targets and functions come
from the spec list, any rank of leading axes folds (issue 15.1: rank > 8 crashed or
misreported the device), vmap folds its batch into rows, unknown policies and
attributes fail with the core's own text."""

import os
import subprocess
import sys

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

import references  # noqa: E402
import xpuruntime  # noqa: E402
import xpuruntime.jax as xj  # noqa: E402
from helpers import assert_close, random_inputs, to_numpy  # noqa: E402
from xpuruntime import _spec  # noqa: E402
from xpuruntime._native import core  # noqa: E402
from _spec_examples import attr_cases, example, float_inputs, has_table  # noqa: E402

ROW_OPS = [op for op in _spec.op_names() if not has_table(op)]


def _results(op, inputs, attrs):
    out = getattr(xj, op)(*inputs[:_n_required(op)], **attrs, **_optional(op, inputs))
    return out if isinstance(out, tuple) else (out,)


def _n_required(op):
    return sum(not s.optional for s in _spec.get(op).inputs)


def _optional(op, inputs):
    return {s.name: a for s, a in zip(_spec.get(op).inputs, inputs) if s.optional and a is not None}


def test_targets_and_functions_come_from_the_specs():
    # One target a spec, named by op, direction and (past 1) the spec's revision.
    want = sorted(s.xla_target for s in _spec.all_specs())
    assert xj.target_names() == want and len(want) == 2 * len(_spec.op_names())
    for s in _spec.all_specs():
        assert s.xla_target.startswith(f"xpuruntime_{s.op}_{'fwd' if s.direction == 'forward' else 'bwd'}")
    assert _spec.get("rms_norm", "backward").xla_target == "xpuruntime_rms_norm_bwd_v2"
    for op in _spec.op_names():
        assert callable(getattr(xj, op)) and op in xj.__all__
        assert "Args:" in getattr(xj, op).__doc__


def _flat(op, a, spec_input, rows):
    """An input of the rank-R example seen as the 2-d problem: rows flattened."""
    if a is None or spec_input.role == "parameter":
        return a
    return a.reshape((rows, -1)) if spec_input.role == "rows" else a.reshape(rows)


@pytest.mark.parametrize("rank", [9, 10, 11, 12])
@pytest.mark.parametrize("op", ROW_OPS)
def test_ranks_above_eight_fold_into_rows(op, rank):
    # Leading axes of sizes 1-3 (12 rows in all): same numbers as the 2-d call, value
    # and gradients, bitwise (the kernel sees the same rows).
    lead = ((2, 1, 3, 2) + (1,) * 8)[:rank - 1]
    rows = int(np.prod(lead))
    for attrs in attr_cases(op):
        inputs, attrs = example(op, lead, optional=True, attrs=attrs)
        spec = _spec.get(op)
        flat = [_flat(op, a, s, rows) for a, s in zip(inputs, spec.inputs)]
        got, want = _results(op, inputs, attrs), _results(op, flat, attrs)
        for g, w in zip(got, want):
            assert g.shape[:rank - 1] == lead or g.shape == (), (op, g.shape)
            np.testing.assert_array_equal(np.asarray(g).reshape(np.shape(w)), np.asarray(w))
        argnums = float_inputs(op, inputs)

        def loss(*a):
            return sum(jnp.sum(r.astype(jnp.float32)) for r in _results(op, a, attrs)
                       if jnp.issubdtype(r.dtype, jnp.floating))
        for g, w in zip(jax.grad(loss, argnums)(*inputs), jax.grad(loss, argnums)(*flat)):
            np.testing.assert_array_equal(np.asarray(g).reshape(np.shape(w)), np.asarray(w))


def test_issue_15_1_repro_in_a_child_process():
    # The exact cases of the issue: a crash here kills only the child.
    code = ("import jax.numpy as jnp, numpy as np, xpuruntime.jax as xj\n"
            "y = xj.softmax(jnp.ones((1,) * 11 + (4,)))\n"
            "assert y.shape == (1,) * 11 + (4,) and np.allclose(np.asarray(y), 0.25)\n"
            "y = xj.rms_norm(jnp.ones((1,) * 8 + (4,)), jnp.ones(4))\n"
            "assert np.allclose(np.asarray(y), 1.0, atol=1e-5), y\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                         env={**os.environ, "JAX_PLATFORMS": "cpu"}, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-3000:]


def test_the_handler_folds_ranks_the_frontend_never_checked():
    # A raw ffi_call of rank 12, bypassing the frontend: the handler folds, no overflow.
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2,) + (1,) * 10 + (5,)), jnp.float32)
    call = jax.ffi.ffi_call("xpuruntime_softmax_fwd", jax.ShapeDtypeStruct(x.shape, x.dtype))
    got = call(x, scale=np.float32(1.0), policy="fast")
    np.testing.assert_allclose(np.asarray(got), np.asarray(jax.nn.softmax(x, -1)), rtol=1e-6)
    w = jnp.ones(5)
    out = jax.ShapeDtypeStruct(x.shape, x.dtype)
    y = jax.ffi.ffi_call("xpuruntime_rms_norm_fwd_v2", out)(x, w, eps=np.float32(0), policy="fast")
    np.testing.assert_allclose(np.asarray(y), np.asarray(x / jnp.sqrt(jnp.mean(x * x, -1, keepdims=True))),
                               rtol=1e-5)


def test_rope_rank_other_than_four_is_an_error():
    with pytest.raises(xpuruntime.InvalidArgumentError, match=r"rope: 'x' must be 4-d"):
        xj.rope(jnp.ones((1,) * 8 + (4,)), jnp.ones((1, 2)), jnp.ones((1, 2)))


def test_vmap_folds_the_batch_into_rows():
    # One kernel call over all the rows, no loop, when the parameters are shared.
    x, w = jnp.ones((3, 4, 16)), jnp.ones(16)
    text = jax.jit(jax.vmap(xj.rms_norm, in_axes=(0, None))).lower(x, w).as_text()
    assert text.count("xpuruntime_rms_norm_fwd") == 1 and "while" not in text
    text = jax.jit(jax.vmap(xj.rope, in_axes=(0, None, None))).lower(
        jnp.ones((3, 2, 8, 2, 16)), jnp.ones((8, 8)), jnp.ones((8, 8))).as_text()
    assert text.count("xpuruntime_rope_fwd") == 1 and "while" not in text
    # Per-example weight gradients (vmap of grad): the kernel once for dx, the
    # per-example sums from the glue; same numbers as one example at a time.
    for op, params in (("rms_norm", (w,)), ("layer_norm", (w, jnp.zeros(16)))):
        loss = lambda a, *p, op=op: jnp.sum(jnp.sin(getattr(xj, op)(a, *p)))  # noqa: E731
        grad = jax.vmap(jax.grad(loss, tuple(range(1 + len(params)))), in_axes=(0,) + (None,) * len(params))
        xs = jnp.asarray(np.random.default_rng(1).standard_normal((3, 4, 16)), jnp.float32)
        text = jax.jit(grad).lower(xs, *params).as_text()
        assert text.count(f"xpuruntime_{op}_bwd") == 1 and "while" not in text, op
        got = grad(xs, *params)
        for i in range(3):
            for g, want in zip(got, jax.grad(loss, tuple(range(1 + len(params))))(xs[i], *params)):
                np.testing.assert_allclose(np.asarray(g[i]), np.asarray(want), rtol=2e-5, atol=1e-5)
    # Per-example weights cannot fold: one call per example, still correct.
    ws = jnp.stack([w, 2 * w, 3 * w])
    got = jax.vmap(xj.rms_norm)(x, ws)
    np.testing.assert_allclose(np.asarray(got), np.asarray(jnp.stack([xj.rms_norm(x[i], ws[i]) for i in range(3)])),
                               rtol=1e-6)


def test_unknown_policy_and_attribute_errors_are_the_cores():
    x, w = jnp.ones((2, 8)), jnp.ones(8)
    with pytest.raises(xpuruntime.InvalidArgumentError) as caught:
        xj.rms_norm(x, w, policy="bogus")
    with pytest.raises(xpuruntime.InvalidArgumentError) as native:
        _spec.normalize_attrs(_spec.get("rms_norm"), {"policy": "bogus"})
    assert str(caught.value) == str(native.value)
    assert "rms_norm: unknown policy 'bogus'; expected fast, deterministic or reference" in str(caught.value)
    with pytest.raises(xpuruntime.InvalidArgumentError, match="cross_entropy: unknown reduction 'max'"):
        xj.cross_entropy(x, jnp.zeros(2, jnp.int32), reduction="max")
    with pytest.raises(xpuruntime.InvalidArgumentError, match="softmax: attribute 'scale' must be a float"):
        xj.softmax(x, scale="2")
    with pytest.raises(TypeError, match="got an unexpected keyword argument 'eps'"):
        xj.softmax(x, eps=1.0)


@pytest.mark.parametrize("op", _spec.op_names())
def test_xla_ffi_targets_registered_on_every_platform(op):
    targets = core.ffi_targets()
    if not targets:
        pytest.skip("built without XLA FFI headers")
    for direction in (_spec.FORWARD, _spec.BACKWARD):
        name = _spec.get(op, direction).xla_target
        assert "cpu" in targets[name]
        if core.built_with_cuda:
            assert "CUDA" in targets[name]


# ops whose inputs are all rows or parameters: (rows inputs, parameter inputs)
VMAP_OPS = {op: (sum(s.role == "rows" for s in _spec.get(op).inputs),
                 sum(s.role == "parameter" for s in _spec.get(op).inputs))
            for op in ("layer_norm", "softmax", "swiglu", "geglu")}


@pytest.mark.parametrize("op", list(VMAP_OPS))
@pytest.mark.parametrize("in_axis", [0, 1])
def test_vmap_and_vmap_of_grad(rng, op, in_axis):
    """vmap over a leading axis of the rows (parameters shared), of the value and of the
    gradients, against the float64 reference one example at a time."""
    fn = getattr(xj, op)
    n_rows, n_param = VMAP_OPS[op]
    shape = (3, 4, 16)
    inputs = ([random_inputs(rng, shape) for _ in range(n_rows)]
              + [random_inputs(rng, shape[-1:]) for _ in range(n_param)])
    axes = (in_axis,) * n_rows + (None,) * n_param
    got = jax.vmap(fn, in_axes=axes)(*map(jnp.asarray, inputs))
    want = references.forward(op, *inputs)["y"]
    assert_close(to_numpy(got), np.moveaxis(want, in_axis, 0), "float32")
    dy = random_inputs(rng, shape)
    loss = lambda *a: jnp.sum(fn(*a[:-1]) * a[-1])  # noqa: E731
    grads = jax.vmap(jax.grad(loss, argnums=tuple(range(len(inputs)))), in_axes=axes + (in_axis,))(
        *map(jnp.asarray, inputs), jnp.asarray(dy))
    names = [f"d{s.name}" for s in _spec.get(op).inputs]
    for i in range(shape[in_axis]):
        example_ = [np.take(a, i, axis=in_axis) for a in inputs[:n_rows]] + inputs[n_rows:]
        ref = references.vjp(op, *example_, cotangents={"dy": np.take(dy, i, axis=in_axis)})
        for g, name in zip(grads, names):
            assert_close(to_numpy(g[i]), ref[name], "float32", name)
