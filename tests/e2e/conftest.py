"""The platform as `task up` runs it, started once for all end-to-end tests.

If it is already up (a developer ran `task up`), the tests use it and leave it running;
otherwise they start it and stop the services (not the infra) afterwards.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
GATEWAY = "http://127.0.0.1:8080"


def _gateway_up() -> bool:
    try:
        return httpx.get(GATEWAY + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
def platform():
    started = False
    if not _gateway_up():
        result = subprocess.run(
            [sys.executable, str(REPO / "scripts" / "localrt.py"), "all", "up"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, "task up failed:\n" + result.stdout[-2000:] + result.stderr[-4000:]
        started = True
    yield GATEWAY
    if started:
        subprocess.run([sys.executable, str(REPO / "scripts" / "localrt.py"), "services", "down"], timeout=120)


@pytest.fixture
def chromium(platform):
    """Opens Chromium pages on the platform (`chromium(**context options)` -> PageDriver), each
    closed after the test; screenshots go to .run/screenshots."""
    from playwright.sync_api import sync_playwright
    from support.browser import PageDriver

    (REPO / ".run" / "screenshots").mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        opened: list[PageDriver] = []

        def open_browser(**options) -> PageDriver:
            opened.append(PageDriver(playwright, **options))
            return opened[-1]

        yield open_browser
        for driver in opened:
            driver.close()
