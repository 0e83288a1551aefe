"""layer_norm's batching glue: under vmap, the weight and bias gradients of each
example come from jnp (the kernel's sum over every row would mix the examples),
while the kernel still runs once over all rows for dx. Autodiff is the generic
custom_vjp."""

from __future__ import annotations

import jax.numpy as jnp

from ._batching import sum_per_example


def _xhat(a):
    return (a["x"].astype(jnp.float32) - a["mean"][..., None]) * a["rstd"][..., None]


# ``fn(named batched inputs, attrs)``; layer_norm's read the saved statistics, not attrs.
PER_EXAMPLE = {
    "dweight": lambda a, _: sum_per_example(a["dy"].astype(jnp.float32) * _xhat(a)).astype(
        a["weight"].dtype),
    "dbias": lambda a, _: sum_per_example(a["dy"]).astype(a["weight"].dtype),
}
