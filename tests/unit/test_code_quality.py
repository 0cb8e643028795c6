"""Lint and formatting are part of the test run, so CI holds them (task lint runs the same)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"


def _run(*args: str) -> subprocess.CompletedProcess:
    assert RUFF.exists(), f"ruff is missing from the venv ({RUFF}); run `uv sync`"
    return subprocess.run([str(RUFF), *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_ruff_check_passes():
    result = _run("check", ".")
    assert result.returncode == 0, result.stdout[-4000:]


def test_ruff_format_is_applied():
    result = _run("format", "--check", ".")
    assert result.returncode == 0, result.stdout[-4000:]
