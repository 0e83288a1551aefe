"""Tests by op: tests/ops/test_<op>.py, each run through every frontend (the
``frontend`` fixture of conftest.py) against its float64 reference in
tests/references.py. A package, so that this folder's conftest.py does not take the
module name ``conftest`` from tests/conftest.py."""
