"""Run by test_jax_sharding.py in a fresh process with 8 host CPU devices (the
device count must be set before jax is imported). Prints one line per case."""

import os
import sys
import warnings

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

import xpuruntime.jax as xj  # noqa: E402

MESH = jax.make_mesh((4, 2), ("data", "model"))
RNG = np.random.default_rng(0)


def put(a, *spec):
    return jax.device_put(a, NamedSharding(MESH, P(*spec)))


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


COLLECTIVES = ("all-gather", "all-reduce", "all-to-all", "collective-permute", "reduce-scatter")


def check(name, fn, args, sharded_args, want_spec=None, no_collectives=False):
    jitted = jax.jit(fn)
    hlo = jitted.lower(*sharded_args).compile().as_text()
    got = jitted(*sharded_args)
    ref = jax.jit(fn)(*args)
    for g, r in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(ref)):
        err = float(np.max(np.abs(np.asarray(g) - np.asarray(r)))) / (float(np.max(np.abs(np.asarray(r)))) + 1e-30)
        assert err < 1e-5, (name, err)
    assert "all-gather" not in hlo, f"{name}: all-gather in the compiled program"
    if no_collectives:
        found = [c for c in COLLECTIVES if c in hlo]
        assert not found, f"{name}: {found} in the compiled program"
    if want_spec is not None:
        spec = tuple(jax.tree_util.tree_leaves(got)[0].sharding.spec)
        assert spec[:len(want_spec)] == want_spec, (name, spec)
    print(f"ok {name}")


def main():
    x, w, b, u = f32(16, 6, 32), f32(32), f32(32), f32(16, 6, 32)
    xs, us = put(x, "data", "model", None), put(u, "data", "model", None)
    ws, bs = put(w), put(b)
    rows = ("data", "model")
    check("rms_norm", xj.rms_norm, (x, w), (xs, ws), rows)
    check("rms_norm residual", lambda a, c, r: xj.rms_norm(a, c, residual=r), (x, w, u), (xs, ws, us), rows)
    check("layer_norm", xj.layer_norm, (x, w, b), (xs, ws, bs), rows)
    check("softmax", lambda a: xj.softmax(a, scale=0.5), (x,), (xs,), rows)
    check("swiglu", xj.swiglu, (x, u), (xs, us), rows)
    check("geglu", xj.geglu, (x, u), (xs, us), rows)
    loss = lambda a, c, d, g: jnp.sum(xj.layer_norm(xj.rms_norm(a, c), c, d) * g)  # noqa: E731
    check("norm grads", jax.grad(loss, argnums=(0, 1, 2)), (x, w, b, u), (xs, ws, bs, us), rows)
    glu_loss = lambda a, c: jnp.sum(xj.softmax(xj.swiglu(a, c) + xj.geglu(a, c)) * a)  # noqa: E731
    check("glu softmax grads", jax.grad(glu_loss, argnums=(0, 1)), (x, u), (xs, us), rows)

    q = f32(8, 4, 2, 16)
    cos, sin = np.cos(f32(4, 8)), np.sin(f32(4, 8))
    check("rope", lambda a: xj.rope(a, cos, sin), (q,), (put(q, "data", None, "model", None),), ("data",))
    check("rope grad", jax.grad(lambda a: jnp.sum(xj.rope(a, cos, sin) ** 2)), (q,),
          (put(q, "data", None, "model", None),), ("data",))

    # Context parallelism: x sharded along the sequence, cos/sin replicated. Each device
    # slices its rows of the tables locally: no communication at all.
    q = f32(4, 16, 2, 16)
    cos, sin = np.cos(f32(16, 8)), np.sin(f32(16, 8))
    rope = lambda a, c, s: xj.rope(a, c, s)  # noqa: E731
    for name, spec in (("rope sequence-sharded", (None, "data", None, None)),
                       ("rope batch- and sequence-sharded", ("model", "data", None, None)),
                       ("rope sequence over both mesh axes", (None, ("data", "model"), None, None))):
        check(name, rope, (q, cos, sin), (put(q, *spec), put(cos), put(sin)), spec[:2],
              no_collectives=True)
    check("rope sequence-sharded grad", jax.grad(lambda a, c, s: jnp.sum(xj.rope(a, c, s) ** 2)),
          (q, cos, sin), (put(q, None, "data", None, None), put(cos), put(sin)), (None, "data"),
          no_collectives=True)

    logits, labels = f32(64, 40), RNG.integers(0, 40, 64).astype(np.int32)
    labels[::5] = -100
    ls, lbs = put(logits, "data", None), put(labels, "data")
    for red in ("mean", "sum", "none"):
        fn = lambda a, c, red=red: xj.cross_entropy(a, c, label_smoothing=0.1, reduction=red)  # noqa: E731
        check(f"cross_entropy {red}", fn, (logits, labels), (ls, lbs))
        check(f"cross_entropy {red} grad", jax.grad(lambda a, c, fn=fn: jnp.sum(fn(a, c))),
              (logits, labels), (ls, lbs), ("data",))

    # Sharded along the normalized axis: correct, gathered, and said so.
    xl = put(x, "data", None, "model")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = jax.jit(xj.rms_norm)(xl, ws)
    assert any("last (reduced) axis" in str(c.message) for c in caught), [str(c.message) for c in caught]
    assert np.allclose(np.asarray(got), np.asarray(jax.jit(xj.rms_norm)(x, w)), rtol=1e-5, atol=1e-6)
    print("ok last-axis sharding warns and gathers")


if __name__ == "__main__":
    main()
    sys.stdout.flush()
