"""Debian's Chromium for the browser tests, driven by playwright (sync or async)."""

from __future__ import annotations

import re

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


def launch_options() -> dict[str, object]:
    """`playwright.chromium.launch(**launch_options())`, in either API."""
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS)}


class PageDriver:
    """One Chromium page of the platform (Japanese unless asked otherwise; a new context is a
    new guest) and what went wrong in it: uncaught script errors and console errors other than
    the HTTP statuses a test expects (add them to `expected_statuses`)."""

    def __init__(self, playwright, **context_options):
        self.browser = playwright.chromium.launch(**launch_options())
        self.context = self.browser.new_context(**{"locale": "ja-JP", **context_options})
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.expected_statuses: set[int] = set()
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("console", self._console)

    def _console(self, message) -> None:
        if message.type != "error":
            return
        status = re.search(r"status of (\d{3})", message.text)
        if status and int(status.group(1)) in self.expected_statuses:
            return
        self.problems.append(message.text)

    def transcript(self) -> list[tuple[str, str]]:
        """The conversation as shown: (user|model, text) per bubble."""
        bubbles = self.page.locator("#log li.msg")
        return [
            (
                "user" if "user" in (bubbles.nth(i).get_attribute("class") or "") else "model",
                bubbles.nth(i).locator(".body").inner_text().strip(),
            )
            for i in range(bubbles.count())
        ]

    def send(self, message: str) -> None:
        """Types the message, sends it with Enter and waits until the reply has settled (or the
        roleplay has closed)."""
        self.page.fill("#message", message)
        self.page.press("#message", "Enter")
        self.page.wait_for_function(
            "() => { const b = document.querySelector('#send');"
            " const last = [...document.querySelectorAll('#log li.msg.model')].pop();"
            " return b && !b.disabled && last && !last.classList.contains('pending')"
            "   || (document.querySelector('#closing') && !document.querySelector('#closing').hidden); }",
            timeout=30_000,
        )

    def close(self) -> None:
        self.browser.close()


# A phone-sized page.
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}
