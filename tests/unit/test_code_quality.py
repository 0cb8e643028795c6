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
