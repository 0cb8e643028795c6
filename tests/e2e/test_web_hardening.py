"""The browser's side of the platform's security, through the gateway (the platform of `task up`):
CSRF protection of cookie requests, the security headers of every page, and text a learner
types (an XSS payload) shown as text everywhere it is shown."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from support.browser import launch_options
from workplace_kit.web_security import CSRF_COOKIE_NAME, CSRF_HEADER_NAME

GATEWAY = "http://127.0.0.1:8080"
XSS_PAYLOADS = (
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '<a href="javascript:alert(1)">click</a> javascript:alert(1)',
    "</textarea><svg onload=alert(1)>",
)
XSS_MESSAGE = "こんにちは " + " ".join(XSS_PAYLOADS)


def _browser_like_client() -> httpx.Client:
    """A client signed in as the pages are: the page (CSRF cookie), then /api/v2/auth/session."""
    client = httpx.Client(base_url=GATEWAY, timeout=60)
    page = client.get("/")
    assert page.status_code == 200 and client.cookies.get(CSRF_COOKIE_NAME), page.headers.get_list("set-cookie")
    r = client.post("/api/v2/auth/session", json={}, headers={CSRF_HEADER_NAME: client.cookies[CSRF_COOKIE_NAME]})
    assert r.status_code == 200 and client.cookies.get("wp_access"), r.text
    return client


@pytest.fixture
def browser(platform) -> Iterator[httpx.Client]:
    client = _browser_like_client()  # already in use: closed here, not entered again
    try:
        yield client
    finally:
        client.close()


def _events(response: httpx.Response) -> list[tuple[str, dict]]:
    events, event = [], ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            events.append((event, json.loads(line[5:].strip())))
    return events


def _chat(client: httpx.Client, message: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, dict]], str]:
    with client.stream("POST", "/api/v2/chat", json={"message": message}, headers=headers) as r:
        if r.status_code != 200:
            r.read()
            return r.status_code, [], r.text
        return 200, _events(r), ""


# --------------------------------------------------------------------------- CSRF


def test_a_cookie_request_needs_the_csrf_token_of_its_cookie(browser):
    token = browser.cookies[CSRF_COOKIE_NAME]
    for headers in ({}, {CSRF_HEADER_NAME: "wrong"}, {CSRF_HEADER_NAME: token[:-1]}):
        status, _, body = _chat(browser, "おはようございます", headers)
        assert status == 403 and json.loads(body)["error"] == "csrf", (headers, body)
    # The auth service's routes are guarded the same way (the refresh cookie goes there).
    r = browser.post("/api/v2/auth/session", json={})
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    r = browser.post("/api/v2/auth/logout", json={})
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    status, events, body = _chat(browser, "おはようございます", {CSRF_HEADER_NAME: token})
    assert status == 200 and events[-1][0] == "done", body


def test_a_state_changing_request_from_another_origin_is_refused(browser):
    headers = {CSRF_HEADER_NAME: browser.cookies[CSRF_COOKIE_NAME], "Origin": "https://evil.example"}
    status, _, body = _chat(browser, "おはようございます", headers)
    assert status == 403 and json.loads(body)["error"] == "csrf"
    # A page elsewhere cannot sign a browser in either (login CSRF), cookies or not.
    r = httpx.post(GATEWAY + "/api/v2/auth/guest", json={}, headers={"Origin": "https://evil.example"}, timeout=30)
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    same = {**headers, "Origin": GATEWAY}
    assert _chat(browser, "おはようございます", same)[0] == 200


def test_bearer_requests_need_no_csrf_token(platform):
    token = httpx.post(GATEWAY + "/api/v2/auth/guest", json={}, timeout=30).json()["access_token"]
    with httpx.Client(base_url=GATEWAY, timeout=60) as client:
        status, events, body = _chat(client, "おはようございます", {"Authorization": f"Bearer {token}"})
    assert status == 200 and events[-1][0] == "done", body


def test_logout_clears_the_csrf_cookie_with_the_tokens(browser):
    r = browser.post("/api/v2/auth/logout", json={}, headers={CSRF_HEADER_NAME: browser.cookies[CSRF_COOKIE_NAME]})
    assert r.status_code == 204
    cleared = {c.split("=", 1)[0] for c in r.headers.get_list("set-cookie") if "Max-Age=0" in c}
    assert {"wp_access", "wp_refresh", CSRF_COOKIE_NAME} <= cleared


# --------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "path",
    ["/", "/?lang=en", "/static/chat.js", "/static/csrf.js", "/api/v2/chat/options", "/healthz", "/nowhere"],
)
def test_every_answer_carries_the_security_headers(platform, path):
    r = httpx.get(GATEWAY + path, timeout=30)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert r.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    permissions = r.headers["permissions-policy"]
    assert "camera=()" in permissions and "microphone=(self)" in permissions and "geolocation=()" in permissions
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cross-origin-opener-policy"] == "same-origin"
    assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    for name in ("content-security-policy", "strict-transport-security", "permissions-policy"):
        assert len(r.headers.get_list(name)) == 1, (name, "sent twice: gateway and service")


def test_the_page_has_no_inline_script_handler_or_style(platform):
    """What CSP would block (and an injection would need) is not in our own markup either."""
    import re

    html = httpx.get(GATEWAY + "/", timeout=30).text
    for script in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in script or 'type="application/json"' in script, script
    assert not re.search(r"\son[a-z]+\s*=", html), "an inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "an inline style attribute"
    assert "javascript:" not in html


# --------------------------------------------------------------------------- XSS


def test_a_payload_in_the_language_parameter_is_not_reflected(platform):
    r = httpx.get(GATEWAY + "/", params={"lang": '"><script>alert(1)</script>'}, timeout=30)
    assert r.status_code == 200 and "<script>alert(1)" not in r.text and "alert(1)" not in r.text


def test_xss_payloads_in_a_message_come_back_escaped_or_as_json(browser):
    status, events, body = _chat(browser, XSS_MESSAGE, {CSRF_HEADER_NAME: browser.cookies[CSRF_COOKIE_NAME]})
    assert status == 200, body
    session_id, turn_id = events[0][1]["session_id"], events[0][1]["user_turn_id"]

    # The JSON API: the text as data, served as JSON (never sniffed as HTML: nosniff).
    history = browser.get(f"/api/v2/chat/sessions/{session_id}")
    assert history.status_code == 200 and history.headers["content-type"] == "application/json"
    assert history.headers["x-content-type-options"] == "nosniff"
    assert history.json()["messages"][0]["text"] == XSS_MESSAGE
    feedback = _stored_feedback(browser, session_id)
    assert feedback.headers["content-type"] == "application/json"

    # The HTML fragment web renders with the learner's words (the feedback card): escaped only.
    card = _feedback_card(browser, session_id, turn_id)
    for raw in ("<script", "<img", "<svg", "<a href", "</textarea"):
        assert raw not in card, (raw, card)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in card
    assert "&lt;img src=x onerror=alert(1)&gt;" in card and "&#34;&gt;" in card
    assert "&lt;a href=&#34;javascript:alert(1)&#34;&gt;" in card
    assert "&lt;/textarea&gt;&lt;svg onload=alert(1)&gt;" in card


def _stored_feedback(client: httpx.Client, session_id: str) -> httpx.Response:
    """The session's analyses once the turn's is stored (stored cards quote the learner's text)."""
    deadline = time.monotonic() + 60
    while True:
        r = client.get(f"/api/v2/feedback/sessions/{session_id}/turns")
        assert r.status_code == 200, r.text
        if r.json():
            return r
        assert time.monotonic() < deadline, "the turn was not analysed within 60 s"
        time.sleep(0.5)


def _feedback_card(client: httpx.Client, session_id: str, turn_id: str) -> str:
    """The feedback card of the turn from web's SSE stream, as the page receives it."""
    deadline = time.monotonic() + 60
    with client.stream("GET", f"/events/sessions/{session_id}/feedback") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines: list[str] = []
        for line in r.iter_lines():
            if line.startswith("data:"):
                lines.append(line[5:].strip())
            elif not line and lines:
                html = "\n".join(lines)
                if f'data-turn-id="{turn_id}"' in html:
                    return html
                lines = []
            assert time.monotonic() < deadline, "no feedback card within 60 s"
    raise AssertionError("the stream ended without the card")


def test_a_browser_shows_xss_payloads_as_text_and_runs_nothing(platform):
    """Chromium: the page under its CSP raises no violation, and a learner's message full of
    payloads shows as text in the conversation and on its feedback card; no dialog opens."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options())
        page = browser.new_page(locale="ja-JP")
        problems: list[str] = []
        dialogs: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(GATEWAY + "/")
        message = f"{XSS_MESSAGE} ({uuid.uuid4().hex[:4]})"
        page.fill("#message", message)
        page.press("#message", "Enter")
        page.wait_for_selector("li.msg.model .engine-badge", timeout=30_000)
        page.wait_for_selector("#send:not([disabled])", timeout=30_000)
        assert page.locator("li.msg.user .body").last.inner_text() == message
        assert "failed" not in (page.locator("li.msg.model").last.get_attribute("class") or "")
        card = page.locator("#feedback-stream article.card").first
        card.wait_for(timeout=60_000)
        assert card.locator(".quote").inner_text() == message
        injected = page.evaluate(
            "() => document.querySelectorAll('#log img, #log svg, #log script, #log a,"
            " #feedback-stream img, #feedback-stream svg, #feedback-stream script, #feedback-stream a').length"
        )
        browser.close()
    assert injected == 0 and not dialogs, (injected, dialogs)
    assert not problems, problems  # a CSP violation is reported as a console error
