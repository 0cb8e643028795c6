"""A service image built with buildah from deploy/images/Containerfile, then run: it starts with
the local runtime's PostgreSQL, Redis and Pub/Sub emulator and becomes ready; it runs as uid
10001 from the installed environment alone. `task test:images` (needs buildah and debootstrap;
the task installs them). The first build makes the Debian base (about a minute) and downloads the
locked wheels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import images  # noqa: E402 - scripts/images.py, the build this tests

SERVICE = "auth"  # the smallest service with a database, Redis and the broker


@pytest.fixture(scope="module")
def built() -> str:
    took = images.build([SERVICE])
    print(f"\n{SERVICE} image built in {took[SERVICE]:.0f} s")
    return images.image_name(SERVICE)


def test_the_image_is_configured_to_run_unprivileged_from_its_environment(built: str) -> None:
    config = json.loads(
        subprocess.run([*images.BUILDAH, "inspect", "--type", "image", built], capture_output=True, check=True).stdout
    )["OCIv1"]["config"]
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["workplace-service"]
    assert any(e.startswith("PATH=/app/venv/bin:") for e in config["Env"])
    container = subprocess.run([*images.BUILDAH, "from", built], capture_output=True, text=True, check=True)
    name = container.stdout.strip()
    try:
        where = subprocess.run(
            [*images.BUILDAH, "run", "--isolation", "chroot", "--user", "10001:10001", name, "--",
             "python", "-c", "import auth_service, workplace_kit, os; "
             "print(auth_service.__file__, workplace_kit.__file__, os.path.exists('/src'), os.getuid())"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
    finally:
        subprocess.run([*images.BUILDAH, "rm", name], capture_output=True)
    service_file, kit_file, has_sources, uid = where
    assert service_file.startswith("/app/venv/lib/") and kit_file.startswith("/app/venv/lib/")
    assert has_sources == "False" and uid == "10001"


def test_the_image_starts_and_becomes_ready(built: str) -> None:
    took = images.smoke(SERVICE, images.local_env())
    print(f"\n{SERVICE} ready {took:.1f} s after start")
    assert took < 120
