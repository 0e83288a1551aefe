"""swiglu (``silu(gate) * up``) through every frontend and each frontend's own tests: the
cases of glu_cases.py, shared with the other gated unit, for this op."""

import pytest

from .glu_cases import *  # noqa: F401,F403  the tests, run here with op = "swiglu"


@pytest.fixture
def op():
    return "swiglu"
