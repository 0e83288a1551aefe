"""The examples in docs/jax.md run and print what they say."""

import doctest
import pathlib

import pytest


def test_jax_page_examples():
    pytest.importorskip("jax")
    page = pathlib.Path(__file__).parent.parent / "docs" / "jax.md"
    result = doctest.testfile(str(page), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 10, result
