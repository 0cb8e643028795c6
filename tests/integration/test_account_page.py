"""The account page (web's /account, account.js) with the real auth service, in-process on the
real PostgreSQL and Redis, behind one origin as the gateway serves them (support/same_origin.py):
the page in both languages, the HTTP calls its script makes (cookies, CSRF header, tokens as
cookies), and Chromium filling the forms on a phone and on a desktop."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from support.browser import launch_options
from support.same_origin import same_origin
from support.services import free_port, running_service
from web_service.app import build as build_web
from web_service.settings import WebSettings
from web_service.ui_text import TEXT
from workplace_kit.web_security import CSRF_COOKIE_NAME, CSRF_HEADER_NAME

AUTH = "/api/v2/auth"
SCREENSHOTS = Path("/tmp")
PASSWORD = "practise-every-day"


def _web_settings(identities, **overrides) -> WebSettings:
    # Chat and feedback are not needed here: nothing listens on their ports (the practice page
    # then shows its notice at once).
    return WebSettings(
        auth_jwks_url=identities.jwks_url,
        auth_cookie_secure=False,
        web_chat_grpc_addr=f"127.0.0.1:{free_port()}",
        web_feedback_grpc_addr=f"127.0.0.1:{free_port()}",
        web_grpc_timeout_s=2,
        **overrides,
    )


@pytest.fixture(scope="module")
async def site(auth, identities) -> AsyncIterator[str]:
    """The pages and auth on one origin (Google sign-in off, as by default)."""
    async with running_service(build_web, _web_settings(identities)) as web:
        async with same_origin({AUTH + "/": auth.http_url}, default=web.http_url) as url:
            yield url


def _email() -> str:
    return f"learner-{uuid.uuid4().hex[:12]}@example.co.jp"


class Browser:
    """What account.js does, over HTTP: same-origin calls with the cookies, the CSRF header
    read from the csrf cookie on each state-changing call, tokens delivered as cookies."""

    def __init__(self, client: httpx.AsyncClient):
        self.client = client

    async def call(self, method: str, path: str, body: dict | None = None, *, csrf: bool = True) -> httpx.Response:
        headers = {"X-Token-Delivery": "cookie"}
        token = self.client.cookies.get(CSRF_COOKIE_NAME)
        if csrf and method != "GET" and token:
            headers[CSRF_HEADER_NAME] = token
        return await self.client.request(method, AUTH + path, json=body, headers=headers)

    async def open_page(self) -> str:
        page = await self.client.get("/account")
        assert page.status_code == 200
        return page.text

    async def current_user(self) -> dict:
        me = await self.call("GET", "/me")
        if me.status_code == 401:
            session = await self.call("POST", "/session", {"language": "ja"})
            assert session.status_code == 200, session.text
            return session.json()["user"]
        assert me.status_code == 200, me.text
        return me.json()


@pytest.fixture
async def browser(site) -> AsyncIterator[Browser]:
    # The origin's headers as a browser sends them with a fetch (the services check Origin).
    async with httpx.AsyncClient(base_url=site, headers={"Origin": site}, timeout=30) as client:
        yield Browser(client)


async def test_the_page_renders_the_guest_forms_in_japanese_and_english(browser: Browser):
    for lang, other in (("ja", "en"), ("en", "ja")):
        r = await browser.client.get(f"/account?lang={lang}")
        assert r.status_code == 200 and f'<html lang="{lang}">' in r.text
        assert browser.client.cookies.get("wp_lang") == lang
        # What the page shows (its wording for the script left out).
        page = html.unescape(re.sub(r'<script type="application/json".*?</script>', "", r.text, flags=re.S))
        t = TEXT[lang]
        for key in ("account_heading", "save_heading", "save_explain", "login_heading", "create_account", "log_in"):
            assert t[key] in page, (lang, key)
        assert TEXT[other]["save_heading"] not in page
        # Every input has its label; the browser may fill the right things in.
        inputs = re.findall(r"<input [^>]*>", r.text)
        assert len(inputs) == 5
        for tag in inputs:
            input_id = re.search(r'id="([^"]+)"', tag).group(1)
            assert f'<label for="{input_id}">' in r.text, input_id
        assert 'id="upgrade-email" name="email" type="email" autocomplete="email"' in r.text
        assert 'autocomplete="new-password"\n            minlength="10"' in r.text
        assert 'id="login-password" name="password" type="password" autocomplete="current-password"' in r.text
        # CSP: scripts from files only, no inline handlers or styles.
        assert '<script type="module" src="/static/account.js"></script>' in r.text
        for script in re.findall(r"<script[^>]*>", r.text):
            assert "src=" in script or 'type="application/json"' in script, script
        assert not re.search(r"\son[a-z]+=|\sstyle=|<style", r.text)
        assert "script-src 'self'" in r.headers["content-security-policy"]
        # Google sign-in is off by default: no link to it.
        assert 'href="/api/v2/auth/oidc/start"' not in r.text and 'id="google-sign-in"' not in r.text
        # The language link stays on this page.
        assert f'href="/account?lang={other}"' in r.text
    assert browser.client.cookies.get(CSRF_COOKIE_NAME), "the page gives the browser its CSRF token"


async def test_the_practice_page_links_to_the_account_page(browser: Browser):
    r = await browser.client.get("/?lang=ja")
    assert r.status_code == 200
    assert f'<a href="/account" id="account-link">{TEXT["ja"]["nav_account"]}</a>' in r.text


async def test_the_script_is_served(browser: Browser):
    r = await browser.client.get("/static/account.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert 'import { csrfHeaders } from "/static/csrf.js"' in r.text
    assert '"X-Token-Delivery": "cookie"' in r.text


async def test_google_sign_in_link_only_when_enabled(auth, identities):
    settings = _web_settings(identities, web_google_sign_in_enabled=True)
    async with running_service(build_web, settings) as web, httpx.AsyncClient(base_url=web.http_url) as client:
        for lang in ("ja", "en"):
            page = (await client.get(f"/account?lang={lang}")).text
            assert f'href="/api/v2/auth/oidc/start">{TEXT[lang]["google_sign_in"]}</a>' in page
    # The auth service of these tests has no OIDC client: its start answers 404 JSON, which is
    # why the link is shown only where the chart turns both on.
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{auth.http_url}{AUTH}/oidc/start", follow_redirects=False)
        assert r.status_code == 404 and r.json()["error"] == "not_found"


async def test_guest_creates_an_account_logs_out_and_logs_in_again(browser: Browser, site: str):
    await browser.open_page()
    guest = await browser.current_user()
    assert guest["guest"] is True and guest["email"] is None
    assert browser.client.cookies.get("wp_access"), "the sign-in's tokens are cookies"
    email = _email()
    upgrade = {"email": email, "password": PASSWORD, "display_name": "山田 花子"}

    # Without the CSRF header a browser's state-changing call is refused.
    r = await browser.call("POST", "/upgrade", upgrade, csrf=False)
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    # The errors account.js turns into words: a short password...
    r = await browser.call("POST", "/upgrade", {**upgrade, "password": "short"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    assert [p["field"] for p in r.json()["problems"]] == ["password"]

    r = await browser.call("POST", "/upgrade", upgrade)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["access_token"] == "" and body["refresh_token"] == "", "tokens go into HttpOnly cookies only"
    assert body["user"]["id"] == guest["id"], "the guest becomes the account: their history stays theirs"
    me = await browser.current_user()
    assert (me["guest"], me["email"], me["display_name"], me["id"]) == (False, email, "山田 花子", guest["id"])

    # ... an email someone already has (another guest, another browser)...
    async with httpx.AsyncClient(base_url=site, headers={"Origin": site}) as other_client:
        other = Browser(other_client)
        await other.open_page()
        await other.current_user()
        r = await other.call("POST", "/upgrade", {**upgrade, "display_name": ""})
        assert r.status_code == 409 and (r.json()["error"], r.json()["field"]) == ("conflict", "email")

    # Log out: the cookies are gone, and the page's next sign-in is a fresh guest.
    r = await browser.call("POST", "/logout", {})
    assert r.status_code == 204
    assert not browser.client.cookies.get("wp_access")
    fresh = await browser.current_user()
    assert fresh["guest"] is True and fresh["id"] != guest["id"]

    # ... and a wrong password.
    r = await browser.call("POST", "/login", {"email": email, "password": PASSWORD + "?"})
    assert r.status_code == 401 and r.json()["error"] == "unauthenticated"
    r = await browser.call("POST", "/login", {"email": email.upper(), "password": PASSWORD})
    assert r.status_code == 200 and r.json()["access_token"] == ""
    assert (await browser.current_user())["id"] == guest["id"]


# -- Chromium ----------------------------------------------------------------------------


async def _open_browser(playwright):
    return await playwright.chromium.launch(**launch_options())


def _watch(page, problems: list[str]) -> None:
    """Script errors and CSP violations; auth's expected refusals (a 401 from /me before the
    sign-in, a wrong password, a taken email) are failed loads the console reports too."""

    def on_console(message) -> None:
        if message.type != "error":
            return
        if message.text.startswith("Failed to load resource") and AUTH in message.location.get("url", ""):
            return
        problems.append(message.text)

    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", on_console)


async def test_a_phone_creates_an_account_and_sees_friendly_errors(site: str, auth):
    from playwright.async_api import async_playwright

    ja = TEXT["ja"]
    email = _email()
    problems: list[str] = []
    async with async_playwright() as p:
        chromium = await _open_browser(p)
        context = await chromium.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="ja-JP",
        )
        page = await context.new_page()
        _watch(page, problems)
        await page.goto(site + "/account")
        await page.locator("#guest-part").wait_for(state="visible")
        assert await page.locator("#who-kind").inner_text() == ja["kind_guest"]
        assert await page.locator("#account-part").is_hidden()
        await page.screenshot(path=str(SCREENSHOTS / "account_guest_phone.png"), full_page=True)

        # Create the account: the button is disabled while the request is on its way.
        await page.get_by_label(ja["display_name"]).fill("佐藤 太郎")
        await page.locator("#upgrade-email").fill(email)
        await page.locator("#upgrade-password").fill(PASSWORD)
        held = []

        async def hold(route) -> None:
            held.append(await page.locator("#upgrade-form button").is_disabled())
            await route.continue_()

        await page.route(f"**{AUTH}/upgrade", hold)
        await page.locator("#upgrade-form button").click()
        await page.locator("#account-part").wait_for(state="visible")
        assert held == [True]
        assert await page.locator("#account-status").inner_text() == ja["upgraded"]
        assert await page.locator("#who-kind").inner_text() == ja["kind_account"]
        assert await page.locator("#who-email").inner_text() == email
        assert await page.locator("#who-name").inner_text() == "佐藤 太郎"
        assert await page.locator("#guest-part").is_hidden()
        assert not await page.locator("#upgrade-form button").is_disabled()
        await page.screenshot(path=str(SCREENSHOTS / "account_signed_in_phone.png"), full_page=True)

        # Log out: a new guest at once.
        await page.locator("#logout-form button").click()
        await page.locator("#guest-part").wait_for(state="visible")
        assert await page.locator("#account-status").inner_text() == ja["logged_out"]
        assert await page.locator("#who-kind").inner_text() == ja["kind_guest"]

        # A wrong password: said in plain Japanese next to the form.
        await page.locator("#login-email").fill(email)
        await page.locator("#login-password").fill(PASSWORD + "?")
        await page.locator("#login-form button").click()
        error = page.locator("#login-error")
        await error.wait_for(state="visible")
        assert await error.inner_text() == ja["err_wrong_credentials"]
        await page.screenshot(path=str(SCREENSHOTS / "account_wrong_password_phone.png"), full_page=True)

        # The right one: signed in as the account again.
        await page.locator("#login-password").fill(PASSWORD)
        await page.locator("#login-form button").click()
        await page.locator("#account-part").wait_for(state="visible")
        assert await page.locator("#account-status").inner_text() == ja["logged_in"]
        assert await page.locator("#who-email").inner_text() == email

        # Back on the practice page and on the account page again: still the account.
        await page.goto(site + "/")
        await page.screenshot(path=str(SCREENSHOTS / "account_practice_page_phone.png"))
        await page.locator("#account-link").click()
        await page.locator("#account-part").wait_for(state="visible")
        assert await page.locator("#who-email").inner_text() == email
        await chromium.close()
    assert not problems, problems


async def test_a_desktop_in_english_is_told_the_email_is_taken_and_to_wait(site: str, auth, browser: Browser):
    from playwright.async_api import async_playwright

    en = TEXT["en"]
    # Someone already has this email, and this one has had too many wrong passwords.
    taken = _email()
    await browser.open_page()
    await browser.current_user()
    assert (await browser.call("POST", "/upgrade", {"email": taken, "password": PASSWORD})).status_code == 200
    attempts = 0
    while (await browser.call("POST", "/login", {"email": taken, "password": "wrong-password"})).status_code == 401:
        attempts += 1
        assert attempts < 50, "no limit on password attempts"

    problems: list[str] = []
    async with async_playwright() as p:
        chromium = await _open_browser(p)
        page = await chromium.new_page(viewport={"width": 1280, "height": 900}, locale="en-GB")
        _watch(page, problems)
        await page.goto(site + "/account?lang=en")
        await page.locator("#guest-part").wait_for(state="visible")
        await page.screenshot(path=str(SCREENSHOTS / "account_guest_desktop_en.png"), full_page=True)

        await page.locator("#upgrade-email").fill(taken)
        await page.locator("#upgrade-password").fill(PASSWORD)
        await page.locator("#upgrade-form button").click()
        error = page.locator("#upgrade-error")
        await error.wait_for(state="visible")
        assert await error.inner_text() == en["err_email_taken"]
        assert await page.locator("#upgrade-email").get_attribute("aria-invalid") == "true"
        assert await page.locator("#upgrade-form button").inner_text() == en["create_account"]

        await page.locator("#login-email").fill(taken)
        await page.locator("#login-password").fill(PASSWORD)
        await page.locator("#login-form button").click()
        error = page.locator("#login-error")
        await error.wait_for(state="visible")
        text = await error.inner_text()
        assert re.fullmatch(r"Too many attempts\. Please wait \d+ seconds and try again\.", text), text
        await page.screenshot(path=str(SCREENSHOTS / "account_errors_desktop_en.png"), full_page=True)
        await chromium.close()
    assert not problems, problems
