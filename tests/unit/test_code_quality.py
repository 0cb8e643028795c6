"""Lint, formatting and types are part of the test run, so CI holds them (task lint runs the same)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"
MYPY = Path(sys.executable).parent / "mypy"


def _run(*args: str) -> subprocess.CompletedProcess:
    assert RUFF.exists(), f"ruff is missing from the venv ({RUFF}); run `uv sync`"
    return subprocess.run([str(RUFF), *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_ruff_check_passes():
    result = _run("check", ".")
    assert result.returncode == 0, result.stdout[-4000:]


def test_ruff_format_is_applied():
    result = _run("format", "--check", ".")
    assert result.returncode == 0, result.stdout[-4000:]


def test_mypy_finds_no_errors():
    # What to check and how strictly: [tool.mypy] in pyproject.toml. The cache (.mypy_cache)
    # makes a run after a small change take seconds; a cold one, under half a minute.
    assert MYPY.exists(), f"mypy is missing from the venv ({MYPY}); run `uv sync`"
    result = subprocess.run([str(MYPY)], cwd=REPO, capture_output=True, text=True, timeout=240)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and "Success" in result.stdout, output[-4000:]


def test_ci_runs_exactly_the_readmes_two_commands_test():
    """The README's "Two commands" section names one command per fenced block; .ci/run execs the
    second (the test command) and nothing after it."""
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.+?)\n```", section)
    assert commands == [".venv/bin/task up", ".venv/bin/task test"], commands
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == f"exec {commands[1]}"
