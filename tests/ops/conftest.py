"""The ``frontend`` fixture: every frontend of tests/frontends.py behind one call signature
(``frontend.call(op, *inputs, dtype=, device=, policy=, **attrs)``); one that is not
installed here skips its cases, saying why. ``grad_frontend``: the frontends with
autodiff (``frontend.grad``)."""

from __future__ import annotations

import pytest

from frontends import FRONTENDS


def _get(name):
    frontend = FRONTENDS[name]
    reason = frontend.missing()
    if reason:
        pytest.skip(f"{name}: {reason}")
    return frontend


@pytest.fixture(params=list(FRONTENDS))
def frontend(request):
    return _get(request.param)


@pytest.fixture(params=[name for name, f in FRONTENDS.items() if f.autodiff])
def grad_frontend(request):
    return _get(request.param)
