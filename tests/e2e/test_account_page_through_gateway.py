"""The account page through the gateway (the platform of `task up`): a guest who practised
creates an account and still has their conversation, logs out into a fresh guest and logs in
again; in Chromium on a phone, the forms and a wrong password's message in Japanese."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.browser import launch_options
from web_service.ui_text import TEXT
from workplace_kit.web_security import CSRF_COOKIE_NAME, CSRF_HEADER_NAME

GATEWAY = "http://127.0.0.1:8080"
AUTH = "/api/v2/auth"
PASSWORD = "practise-every-day"
SCREENSHOTS = Path("/tmp")


def _email() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}@example.co.jp"


class PageCalls:
    """The HTTP calls account.js makes: same origin, cookies, the CSRF header from the csrf
    cookie on each state-changing call, tokens delivered as cookies."""

    def __init__(self, client: httpx.Client):
        self.client = client

    def call(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        headers = {"X-Token-Delivery": "cookie"}
        if method != "GET" and (token := self.client.cookies.get(CSRF_COOKIE_NAME)):
            headers[CSRF_HEADER_NAME] = token
        return self.client.request(method, AUTH + path, json=body, headers=headers)

    def current_user(self) -> dict:
        me = self.call("GET", "/me")
        if me.status_code == 401:
            me = self.call("POST", "/session", {"language": "ja"})
            assert me.status_code == 200, me.text
            return me.json()["user"]
        assert me.status_code == 200, me.text
        return me.json()


@pytest.fixture
def page_calls(platform) -> Iterator[PageCalls]:
    with httpx.Client(base_url=GATEWAY, timeout=60, headers={"Origin": GATEWAY}) as client:
        r = client.get("/account")
        assert r.status_code == 200 and client.cookies.get(CSRF_COOKIE_NAME)
        yield PageCalls(client)


def _practise(calls: PageCalls) -> str:
    """One turn of free chat as the page sends it; the session's id."""
    headers = {CSRF_HEADER_NAME: calls.client.cookies[CSRF_COOKIE_NAME]}
    with calls.client.stream("POST", "/api/v2/chat", json={"message": "おはようございます！"}, headers=headers) as r:
        assert r.status_code == 200, r.read()
        session_id, done = "", False
        for line in r.iter_lines():
            if line.startswith("data:"):
                data = json.loads(line[5:])
                session_id = session_id or data.get("session_id", "")
                done = done or "reply_turn_id" in data
        assert session_id and done
    return session_id


def test_the_page_through_the_gateway_in_both_languages(platform):
    with httpx.Client(base_url=GATEWAY, timeout=30) as client:
        for lang in ("ja", "en"):
            r = client.get(f"/account?lang={lang}")
            assert r.status_code == 200 and f'<html lang="{lang}">' in r.text
            for form in ("upgrade-form", "login-form", "logout-form"):
                assert f'id="{form}"' in r.text
            assert TEXT[lang]["save_explain"] in r.text
            # Local runtime: no Google sign-in, so no link, and auth's start is a 404.
            assert 'href="/api/v2/auth/oidc/start"' not in r.text
        assert client.get("/static/account.js").status_code == 200
        assert 'href="/account"' in client.get("/").text
        r = client.get(AUTH + "/oidc/start", follow_redirects=False)
        assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_a_guest_keeps_their_practice_in_the_account_logs_out_and_back_in(page_calls: PageCalls):
    guest = page_calls.current_user()
    assert guest["guest"] is True
    session_id = _practise(page_calls)
    email = _email()

    r = page_calls.call("POST", "/upgrade", {"email": email, "password": "too-short", "display_name": "e2e"})
    assert r.status_code == 422 and [p["field"] for p in r.json()["problems"]] == ["password"]
    r = page_calls.call("POST", "/upgrade", {"email": email, "password": PASSWORD, "display_name": "e2e"})
    assert r.status_code == 200 and r.json()["user"]["id"] == guest["id"] and r.json()["access_token"] == ""
    me = page_calls.current_user()
    assert (me["guest"], me["email"]) == (False, email)
    history = page_calls.client.get(f"/api/v2/chat/sessions/{session_id}")
    assert history.status_code == 200 and history.json()["messages"], "the practice is kept"

    assert page_calls.call("POST", "/logout", {}).status_code == 204
    fresh = page_calls.current_user()
    assert fresh["guest"] is True and fresh["id"] != guest["id"]
    assert page_calls.client.get(f"/api/v2/chat/sessions/{session_id}").status_code == 404

    r = page_calls.call("POST", "/login", {"email": email, "password": PASSWORD + "?"})
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    r = page_calls.call("POST", "/login", {"email": email, "password": PASSWORD})
    assert r.status_code == 200 and r.json()["user"]["id"] == guest["id"]
    assert page_calls.client.get(f"/api/v2/chat/sessions/{session_id}").status_code == 200


def test_a_phone_creates_an_account_and_is_told_of_a_wrong_password(platform):
    from playwright.sync_api import sync_playwright

    ja = TEXT["ja"]
    email = _email()
    problems: list[str] = []

    def on_console(message) -> None:
        # auth's expected refusals (/me before the sign-in, the wrong password) are failed loads
        if message.type == "error" and not (
            message.text.startswith("Failed to load resource") and AUTH in message.location.get("url", "")
        ):
            problems.append(message.text)

    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options())
        context = browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="ja-JP",
        )
        page = context.new_page()
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.on("console", on_console)
        page.goto(GATEWAY + "/")
        page.locator("#account-link").click()
        page.locator("#guest-part").wait_for(state="visible")
        assert page.locator("#who-kind").inner_text() == ja["kind_guest"]

        page.locator("#upgrade-email").fill(email)
        page.locator("#upgrade-password").fill(PASSWORD)
        page.locator("#upgrade-form button").click()
        page.locator("#account-part").wait_for(state="visible")
        assert page.locator("#account-status").inner_text() == ja["upgraded"]
        assert page.locator("#who-email").inner_text() == email
        page.screenshot(path=str(SCREENSHOTS / "account_e2e_signed_in_phone.png"), full_page=True)

        page.locator("#logout-form button").click()
        page.locator("#guest-part").wait_for(state="visible")
        page.locator("#login-email").fill(email)
        page.locator("#login-password").fill("not-the-password")
        page.locator("#login-form button").click()
        page.locator("#login-error").wait_for(state="visible")
        assert page.locator("#login-error").inner_text() == ja["err_wrong_credentials"]
        assert page.locator("#who-kind").inner_text() == ja["kind_guest"]
        page.screenshot(path=str(SCREENSHOTS / "account_e2e_wrong_password_phone.png"), full_page=True)
        browser.close()
    assert not problems, problems
