"""Debian's Chromium for the browser tests, driven by playwright (sync or async)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def launch_options() -> dict[str, object]:
    """`playwright.chromium.launch(**launch_options())`, in either API."""
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS)}
