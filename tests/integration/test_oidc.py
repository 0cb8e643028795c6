"""Sign-in with an OpenID Connect provider (Google's flow) against a local stand-in provider
(tests/support/oidc_provider.py) and the real PostgreSQL: the browser's round trip
start -> provider -> callback, with the cookies a browser would carry."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from auth_service.app import build as build_auth
from auth_service.settings import AuthSettings
from support.oidc_provider import Account, OidcProviderStandIn
from support.services import free_port, running_service
from workplace_kit.auth import TokenVerifier

# The address the provider sends the browser back to: the app's public one (behind the gateway),
# not the test's auth instance; the test follows its path and query on the instance.
REDIRECT_URL = "https://app.example.test/api/v2/auth/oidc/callback"
ORG_DOMAIN = "example.co.jp"


@pytest.fixture(scope="module")
def provider():
    with OidcProviderStandIn() as stand_in:
        yield stand_in


def _settings(provider: OidcProviderStandIn, **extra) -> AuthSettings:
    return AuthSettings(
        auth_cookie_secure=False,
        auth_oidc_issuer=provider.issuer,
        auth_oidc_client_id=provider.client_id,
        auth_oidc_client_secret=provider.client_secret,
        auth_oidc_redirect_url=REDIRECT_URL,
        **extra,
    )


@pytest.fixture(scope="module")
async def oidc_auth(provider):
    async with running_service(build_auth, _settings(provider)) as svc:
        yield svc


@pytest.fixture(scope="module")
async def org_auth(provider):
    """Only accounts of one Google Workspace domain may sign in."""
    async with running_service(build_auth, _settings(provider, auth_oidc_allowed_domains=ORG_DOMAIN)) as svc:
        yield svc


def new_account(provider: OidcProviderStandIn, **fields) -> Account:
    account = Account(f"sub-{uuid.uuid4().hex}", f"g-{uuid.uuid4().hex[:10]}@example.com", **fields)
    provider.reset(account)
    return account


async def sign_in(browser: httpx.AsyncClient, auth_url: str, *, tamper_state: bool = False) -> httpx.Response:
    """The browser's round trip; the answer of the callback."""
    start = await browser.get(f"{auth_url}/api/v2/auth/oidc/start")
    assert start.status_code == 303, start.text
    assert "wp_oidc" in start.headers["set-cookie"] and "samesite=lax" in start.headers["set-cookie"].lower()
    authorize = httpx.URL(start.headers["location"])
    assert authorize.params["code_challenge_method"] == "S256" and authorize.params["nonce"]
    at_provider = await browser.get(authorize)
    assert at_provider.status_code == 302, at_provider.text
    back = httpx.URL(at_provider.headers["location"])
    assert str(back.copy_with(query=None)) == REDIRECT_URL
    params = dict(back.params)
    if tamper_state:
        params["state"] = params["state"][:-2] + "xx"
    return await browser.get(f"{auth_url}{back.path}", params=params)


def signed_in_cookies(response: httpx.Response) -> dict[str, str]:
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    assert {"wp_access", "wp_refresh"} <= set(cookies), cookies
    for name in ("wp_access", "wp_refresh"):
        assert "httponly" in cookies[name].lower() and "samesite=strict" in cookies[name].lower()
    return cookies


async def me(browser: httpx.AsyncClient, auth_url: str) -> dict:
    r = await browser.get(f"{auth_url}/api/v2/auth/me")
    assert r.status_code == 200, r.text
    return r.json()


def refused(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and body["message"], body
    assert "Traceback" not in response.text
    assert "wp_access" not in response.headers.get("set-cookie", "")


async def test_first_sign_in_creates_an_account_and_delivers_cookies(oidc_auth, provider):
    account = new_account(provider, name="山田 太郎")
    async with httpx.AsyncClient(timeout=30) as browser:
        r = await sign_in(browser, oidc_auth.http_url)
        assert r.status_code == 303 and r.headers["location"] == "/", r.text
        signed_in_cookies(r)
        user = await me(browser, oidc_auth.http_url)
    assert user["email"] == account.email and user["display_name"] == "山田 太郎" and user["guest"] is False
    # The provider got the PKCE verifier and the client's credentials with the code.
    sent = provider.token_requests[-1]
    assert sent["code_verifier"] and sent["client_secret"] == provider.client_secret
    assert sent["redirect_uri"] == REDIRECT_URL
    # Our own access token, as every service verifies it.
    async with httpx.AsyncClient(timeout=30) as browser:
        r = await sign_in(browser, oidc_auth.http_url)
        token = browser.cookies["wp_access"]
    settings = AuthSettings()
    verifier = TokenVerifier(
        f"{oidc_auth.http_url}/.well-known/jwks.json", settings.auth_issuer, settings.auth_audience
    )
    principal = await verifier.verify(token)
    assert principal.user_id == user["id"] and not principal.guest


async def test_second_sign_in_is_the_same_account(oidc_auth, provider):
    new_account(provider)
    async with httpx.AsyncClient(timeout=30) as browser:
        assert (await sign_in(browser, oidc_auth.http_url)).status_code == 303
        first = await me(browser, oidc_auth.http_url)
    async with httpx.AsyncClient(timeout=30) as other_browser:
        assert (await sign_in(other_browser, oidc_auth.http_url)).status_code == 303
        second = await me(other_browser, oidc_auth.http_url)
    assert second["id"] == first["id"]


async def test_a_guest_keeps_their_id(oidc_auth, provider):
    account = new_account(provider)
    async with httpx.AsyncClient(timeout=30) as browser:
        r = await browser.post(
            f"{oidc_auth.http_url}/api/v2/auth/guest", json={}, headers={"X-Token-Delivery": "cookie"}
        )
        assert r.status_code == 201, r.text
        guest_id = r.json()["user"]["id"]
        guest_refresh = browser.cookies["wp_refresh"]
        assert (await sign_in(browser, oidc_auth.http_url)).status_code == 303
        user = await me(browser, oidc_auth.http_url)
        assert user["id"] == guest_id and user["guest"] is False and user["email"] == account.email
    # The guest's own refresh token said "guest": it no longer works (sent as an API client).
    async with httpx.AsyncClient(timeout=30) as api:
        stale = await api.post(f"{oidc_auth.http_url}/api/v2/auth/refresh", json={"refresh_token": guest_refresh})
    assert stale.status_code == 401, stale.text
    # Later sign-ins (another browser, no guest) find the same account.
    async with httpx.AsyncClient(timeout=30) as browser:
        assert (await sign_in(browser, oidc_auth.http_url)).status_code == 303
        assert (await me(browser, oidc_auth.http_url))["id"] == guest_id


async def test_a_password_account_with_the_same_email_is_not_taken_over(oidc_auth, provider):
    account = new_account(provider)
    async with httpx.AsyncClient(base_url=oidc_auth.http_url, timeout=30) as api:
        r = await api.post(
            "/api/v2/auth/register", json={"email": account.email, "password": "correct horse battery staple"}
        )
        assert r.status_code == 201, r.text
    async with httpx.AsyncClient(timeout=30) as browser:
        refused(await sign_in(browser, oidc_auth.http_url), 409, "oidc_account_exists")


@pytest.mark.parametrize(
    ("tamper", "status", "error"),
    [
        ({"nonce": "not-the-one-sent"}, 401, "oidc_nonce_mismatch"),
        ({"aud": "another-client", "azp": "another-client"}, 401, "oidc_wrong_audience"),
        ({"iss": "https://accounts.example.invalid"}, 401, "oidc_wrong_issuer"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, 401, "oidc_expired"),
        ({"email_verified": False}, 403, "oidc_email_unverified"),
        ("rogue", 401, "oidc_bad_signature"),
    ],
)
async def test_an_id_token_that_does_not_verify_is_refused(oidc_auth, provider, tamper, status, error):
    new_account(provider)
    if tamper == "rogue":
        provider.rogue_signature = True
    else:
        provider.claims_override = tamper
    async with httpx.AsyncClient(timeout=30) as browser:
        refused(await sign_in(browser, oidc_auth.http_url), status, error)


async def test_state_must_match_the_browser_and_is_used_once(oidc_auth, provider):
    new_account(provider)
    async with httpx.AsyncClient(timeout=30) as browser:
        refused(await sign_in(browser, oidc_auth.http_url, tamper_state=True), 400, "oidc_state_mismatch")
    # A callback in a browser that did not start the sign-in (no state cookie): login CSRF.
    async with httpx.AsyncClient(timeout=30) as victim, httpx.AsyncClient(timeout=30) as attacker:
        start = await attacker.get(f"{oidc_auth.http_url}/api/v2/auth/oidc/start")
        back = httpx.URL((await attacker.get(start.headers["location"])).headers["location"])
        refused(await victim.get(f"{oidc_auth.http_url}{back.path}", params=back.params), 400, "oidc_state_mismatch")
    # The same callback twice (replayed): the second is refused.
    async with httpx.AsyncClient(timeout=30) as browser:
        start = await browser.get(f"{oidc_auth.http_url}/api/v2/auth/oidc/start")
        state_cookie = browser.cookies["wp_oidc"]
        back = httpx.URL((await browser.get(start.headers["location"])).headers["location"])
        assert (await browser.get(f"{oidc_auth.http_url}{back.path}", params=back.params)).status_code == 303
        browser.cookies.set("wp_oidc", state_cookie, path="/api/v2/auth/oidc")
        refused(await browser.get(f"{oidc_auth.http_url}{back.path}", params=back.params), 400, "oidc_state_mismatch")


async def test_a_cancelled_sign_in_is_a_clear_error(oidc_auth):
    async with httpx.AsyncClient(timeout=30) as browser:
        r = await browser.get(f"{oidc_auth.http_url}/api/v2/auth/oidc/callback", params={"error": "access_denied"})
    refused(r, 401, "oidc_denied")


async def test_organisations_allow_their_workspace_domain_only(org_auth, provider):
    new_account(provider, hosted_domain=ORG_DOMAIN)
    async with httpx.AsyncClient(timeout=30) as browser:
        r = await sign_in(browser, org_auth.http_url)
        assert r.status_code == 303, r.text
    new_account(provider, hosted_domain="other.example")
    async with httpx.AsyncClient(timeout=30) as browser:
        refused(await sign_in(browser, org_auth.http_url), 403, "oidc_domain_not_allowed")
    # A personal account with a company address is not the organisation's (no `hd`).
    provider.reset(Account(f"sub-{uuid.uuid4().hex}", f"x-{uuid.uuid4().hex[:8]}@{ORG_DOMAIN}"))
    async with httpx.AsyncClient(timeout=30) as browser:
        refused(await sign_in(browser, org_auth.http_url), 403, "oidc_domain_not_allowed")


async def test_start_hints_the_organisation_domain(org_auth):
    async with httpx.AsyncClient(timeout=30) as browser:
        start = await browser.get(f"{org_auth.http_url}/api/v2/auth/oidc/start")
    assert httpx.URL(start.headers["location"]).params["hd"] == ORG_DOMAIN


async def test_disabled_without_a_client_id(auth):
    """The shared auth instance has no OIDC settings."""
    async with httpx.AsyncClient(base_url=auth.http_url, timeout=30) as client:
        for path in ("/api/v2/auth/oidc/start", "/api/v2/auth/oidc/callback?code=x&state=y"):
            r = await client.get(path)
            assert r.status_code == 404 and r.json()["error"] == "not_found", r.text


async def test_an_unreachable_provider_is_a_503():
    nowhere = OidcProviderStandIn(port=free_port())  # never started: nothing answers there
    async with running_service(build_auth, _settings(nowhere)) as svc, httpx.AsyncClient(timeout=30) as browser:
        r = await browser.get(f"{svc.http_url}/api/v2/auth/oidc/start")
    assert r.status_code == 503 and r.json()["error"] == "unavailable", r.text
    assert r.headers["retry-after"]
