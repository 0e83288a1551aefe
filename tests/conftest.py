"""pytest setup for the whole suite: CUDA cases skip without a device, and the ``rng``
fixture. The helpers live in helpers.py (tolerances, devices, error norms) and the
float64 references in references.py; the helpers are re-exported here for test files
that import them from ``conftest``."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import (DEVICES, DTYPES, HAS_JAX, HAS_TORCH, JAX_PLATFORMS, POLICIES,  # noqa: F401
                     TOLERANCE, TORCH_DEVICES, assert_close, jax_gpu_available, random_inputs,
                     rel_err, to_numpy, torch_cuda_available)


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


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

