"""The installed package's facts: one version everywhere (the wheel's metadata, the
compiled core, ``xpuruntime.__version__``, ``python -m xpuruntime info``), and the files
a wheel carries (license, typing marker, stubs of the extension)."""

import importlib.metadata
import json
import pathlib
import subprocess
import sys

import xpuruntime

PACKAGE = pathlib.Path(xpuruntime.__file__).parent


def test_one_version_everywhere():
    meta = importlib.metadata.version("xpuruntime")
    assert xpuruntime.__version__ == meta
    assert xpuruntime.info()["version"] == meta
    out = subprocess.run([sys.executable, "-P", "-m", "xpuruntime", "info", "--json"],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["version"] == meta


def test_license_in_the_distribution():
    files = importlib.metadata.files("xpuruntime") or []
    licenses = [f for f in files if f.name == "LICENSE"]
    assert licenses, "no LICENSE among the installed files"
    assert "Apache License" in licenses[0].read_text()
    assert importlib.metadata.metadata("xpuruntime")["License-Expression"] == "Apache-2.0"


def test_typing_marker_and_extension_stubs():
    assert (PACKAGE / "py.typed").is_file()
    stubs = (PACKAGE / "_core.pyi").read_text()
    # Generated from the extension itself (nanobind stubgen): it names the core's functions.
    for name in ("def kernels(", "def ffi_targets(", "class Pool:"):
        assert name in stubs, name
