"""Shared set-up for the whole test run: the real components, started once.

Only for runs that include more than tests/unit (unit tests need no infrastructure).
PostgreSQL+pgvector, Redis and the Pub/Sub emulator come from the project's own script
(scripts/localrt.py infra up, which `task test` runs first). If they do not answer, we run
that script here; if it fails, the run stops with its message — under CI=true as anywhere
else, nothing is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.run import RUN_ID

REPO = Path(__file__).resolve().parent.parent

# Opt-in suites the default run does not collect (each has its own task, see Taskfile.yml):
# tests/local_llm needs llama.cpp built into its own environment (`task test:local-llm`);
# tests/images builds a container image with buildah (`task test:images`, which sets
# WP_TEST_IMAGES), minutes the default run does not spend.
collect_ignore = ["local_llm"] + ([] if os.environ.get("WP_TEST_IMAGES") else ["images"])


def _read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def _needs_infrastructure(config: pytest.Config) -> bool:
    """Unit tests need no PostgreSQL, Redis or emulator: `pytest tests/unit` starts none."""
    unit = (REPO / "tests" / "unit").resolve()
    paths = [Path(arg.split("::")[0]).resolve() for arg in config.args] or [REPO / "tests"]
    return any(path != unit and unit not in path.parents for path in paths)


def pytest_configure(config: pytest.Config) -> None:
    if not _needs_infrastructure(config):
        return
    # Runs before collection, so modules that read the environment at import time see it.
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "localrt.py"), "infra", "up"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise pytest.UsageError(
            "the test components (PostgreSQL+pgvector, Redis, Pub/Sub emulator) could not be started:\n"
            + result.stdout[-3000:]
            + result.stderr[-3000:]
        )
    os.environ.update(_read_env_file(REPO / ".run" / "env"))
    os.environ.setdefault("WP_ENVIRONMENT", "test")
    # Every test learner comes from 127.0.0.1 (as in the local runtime, scripts/localrt.py):
    # the per-address limit of new sign-ins is tested with its own settings
    # (tests/integration/test_rate_limits.py).
    os.environ.setdefault("WP_AUTH_SIGN_INS_RATE", "1000000/hour")
    # The services tests start in-process stop at once (no load balancer to drain from); the
    # draining itself is tested with its own settings (tests/unit/test_graceful_shutdown.py).
    os.environ.setdefault("WP_SHUTDOWN_DRAIN_S", "0")
    os.environ.setdefault("WP_SHUTDOWN_GRACE_S", "5")


@pytest.fixture(scope="session")
def run_id() -> str:
    """Suffix for topic and subscription names, so test runs never share Pub/Sub state."""
    return RUN_ID
