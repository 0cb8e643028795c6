"""The auth service against the real PostgreSQL: accounts, guests, tokens, rotation, reuse.

Tokens are checked the way every other service checks them: the kit's TokenVerifier against
the JWKS the auth service publishes over HTTP."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import httpx
import jwt
import pytest
from auth_service.keys import KeyStore
from auth_service.settings import AuthSettings
from support.tokens import attack_tokens
from workplace.auth.v1 import auth_pb2, auth_pb2_grpc
from workplace_kit.auth import InvalidToken, TokenVerifier

PASSWORD = "correct horse battery staple"


@pytest.fixture
async def client(auth):
    async with httpx.AsyncClient(base_url=auth.http_url, timeout=30) as c:
        yield c


def verifier_for(auth) -> TokenVerifier:
    settings = AuthSettings()
    return TokenVerifier(
        f"{auth.http_url}/.well-known/jwks.json", settings.auth_issuer, settings.auth_audience, refetch_min_interval_s=0
    )


def unique_email() -> str:
    return f"learner-{uuid.uuid4().hex[:10]}@example.com"


async def test_guest_gets_tokens_that_every_service_can_verify(auth, client):
    r = await client.post("/api/v2/auth/guest", json={"language": "en"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user"]["guest"] is True and body["user"]["display_name"] == "Guest"
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "ES256" and header["kid"]
    principal = await verifier_for(auth).verify(body["access_token"])
    assert principal.user_id == body["user"]["id"] and principal.guest
    me = await client.get("/api/v2/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["id"] == body["user"]["id"]


async def test_register_login_and_wrong_credentials(client):
    email = unique_email()
    r = await client.post(
        "/api/v2/auth/register", json={"email": email.upper(), "password": PASSWORD, "display_name": "佐藤 花子"}
    )
    assert r.status_code == 201, r.text
    assert r.json()["user"] | {"id": "-"} == {
        "id": "-",
        "display_name": "佐藤 花子",
        "email": email,
        "guest": False,
        "preferred_language": "ja",
    }
    again = await client.post("/api/v2/auth/register", json={"email": email, "password": PASSWORD})
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    ok = await client.post("/api/v2/auth/login", json={"email": email, "password": PASSWORD})
    assert ok.status_code == 200 and ok.json()["user"]["email"] == email
    for wrong in ({"email": email, "password": PASSWORD + "x"}, {"email": unique_email(), "password": PASSWORD}):
        refused = await client.post("/api/v2/auth/login", json=wrong)
        assert refused.status_code == 401
        # The same answer for an unknown email and a wrong password: nothing to enumerate.
        assert refused.json() == {"error": "unauthenticated", "message": "the email or the password is wrong"}
    # The schema says what is accepted: a short password or a malformed email is a 422.
    short = await client.post("/api/v2/auth/register", json={"email": unique_email(), "password": "short"})
    assert short.status_code == 422 and short.json()["problems"][0]["field"] == "password"
    bad_email = await client.post("/api/v2/auth/register", json={"email": "not-an-email", "password": PASSWORD})
    assert bad_email.status_code == 422 and bad_email.json()["problems"][0]["field"] == "email"
    extra = await client.post("/api/v2/auth/login", json={"email": email, "password": PASSWORD, "admin": True})
    assert extra.status_code == 422


async def test_refresh_rotates_and_a_reused_token_ends_the_whole_sign_in(client):
    first = (await client.post("/api/v2/auth/guest", json={})).json()
    second = await client.post("/api/v2/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"] and second["user"]["id"] == first["user"]["id"]
    third = (await client.post("/api/v2/auth/refresh", json={"refresh_token": second["refresh_token"]})).json()

    # The first token again (a thief's copy): refused, and the family is revoked...
    reused = await client.post("/api/v2/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401 and "ended" in reused.json()["message"]
    # ...so the legitimate newest token no longer works either.
    latest = await client.post("/api/v2/auth/refresh", json={"refresh_token": third["refresh_token"]})
    assert latest.status_code == 401
    unknown = await client.post("/api/v2/auth/refresh", json={"refresh_token": "made-up"})
    assert unknown.status_code == 401


async def test_two_refreshes_of_one_token_at_once_give_one_new_token(client):
    tokens = (await client.post("/api/v2/auth/guest", json={})).json()
    answers = await asyncio.gather(
        *(client.post("/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]}) for _ in range(2))
    )
    assert sorted(r.status_code for r in answers) == [200, 401]


async def test_logout_ends_the_sign_in(client):
    tokens = (await client.post("/api/v2/auth/guest", json={})).json()
    assert (
        await client.post("/api/v2/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    ).status_code == 204
    r = await client.post("/api/v2/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401


async def test_guest_upgrades_to_an_account_and_keeps_its_id(auth, client):
    guest = (await client.post("/api/v2/auth/guest", json={"display_name": "たろう"})).json()
    bearer = {"Authorization": f"Bearer {guest['access_token']}"}
    email = unique_email()
    r = await client.post("/api/v2/auth/upgrade", json={"email": email, "password": PASSWORD}, headers=bearer)
    assert r.status_code == 200, r.text
    upgraded = r.json()
    assert upgraded["user"]["id"] == guest["user"]["id"] and upgraded["user"]["guest"] is False
    assert upgraded["user"]["display_name"] == "たろう"
    assert not (await verifier_for(auth).verify(upgraded["access_token"])).guest
    # The guest's refresh token said "guest": it is ended; the new one works.
    stale = await client.post("/api/v2/auth/refresh", json={"refresh_token": guest["refresh_token"]})
    assert stale.status_code == 401
    again = await client.post(
        "/api/v2/auth/upgrade", json={"email": unique_email(), "password": PASSWORD}, headers=bearer
    )
    assert again.status_code == 409
    login = await client.post("/api/v2/auth/login", json={"email": email, "password": PASSWORD})
    assert login.json()["user"]["id"] == guest["user"]["id"]


async def test_forged_expired_unsigned_and_tampered_tokens_are_refused(auth, client):
    tokens = (await client.post("/api/v2/auth/guest", json={})).json()
    good = tokens["access_token"]
    real = await auth.app.state.service.keys.current()
    attacks = attack_tokens(good, real.private_key, real.kid)
    for name, token in attacks.items():
        r = await client.get("/api/v2/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert r.json()["error"] == "unauthenticated" and "Traceback" not in r.text, name
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"', name
    missing = await client.get("/api/v2/auth/me")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    async with grpc.aio.insecure_channel(auth.grpc_address) as channel:
        stub = auth_pb2_grpc.AuthServiceStub(channel)
        ok = await stub.VerifyToken(auth_pb2.VerifyTokenRequest(token=good))
        assert ok.valid and ok.user_id == tokens["user"]["id"] and ok.guest
        for name, token in attacks.items():
            refused = await stub.VerifyToken(auth_pb2.VerifyTokenRequest(token=token))
            assert not refused.valid and refused.error, name
        signed = (("authorization", f"Bearer {good}"),)
        user = await stub.GetUser(auth_pb2.GetUserRequest(user_id=tokens["user"]["id"]), metadata=signed)
        assert user.user.guest and user.user.id == tokens["user"]["id"]
        assert (await stub.GetUser(auth_pb2.GetUserRequest(), metadata=signed)).user.id == tokens["user"]["id"]
        # Someone else's id (or no such user) with a valid token: NOT_FOUND; without a token or
        # with an attack token: UNAUTHENTICATED. A user id in a request is never trusted.
        other = (await client.post("/api/v2/auth/guest", json={})).json()["user"]["id"]
        for user_id in (other, str(uuid.uuid4())):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetUser(auth_pb2.GetUserRequest(user_id=user_id), metadata=signed)
            assert refused.value.code() == grpc.StatusCode.NOT_FOUND
        for metadata in [(), *((("authorization", f"Bearer {t}"),) for t in attacks.values())]:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetUser(auth_pb2.GetUserRequest(user_id=other), metadata=metadata)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_key_rotation_keeps_old_tokens_valid_and_signs_with_the_new_key(auth, client):
    before = (await client.post("/api/v2/auth/guest", json={})).json()["access_token"]
    old_kid = jwt.get_unverified_header(before)["kid"]
    running = auth.app.state.service.keys
    keys = KeyStore(running.pool, cipher=running.cipher, token_ttl_s=900, publish_lead_s=1.0)
    new_kid = await keys.rotate()
    # Published at once, signing only after the lead time (verifiers learn it first).
    published = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert new_kid in published
    meanwhile = (await client.post("/api/v2/auth/guest", json={})).json()["access_token"]
    assert jwt.get_unverified_header(meanwhile)["kid"] == old_kid
    await asyncio.sleep(1.2)
    after = (await client.post("/api/v2/auth/guest", json={})).json()["access_token"]
    assert jwt.get_unverified_header(after)["kid"] == new_kid != old_kid
    published = {k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new_kid} <= published
    verifier = verifier_for(auth)
    for token in (before, after):
        await verifier.verify(token)
    with pytest.raises(InvalidToken):
        await verifier.verify(after[:-4] + ("AAAA" if not after.endswith("AAAA") else "BBBB"))


async def test_browser_session_goes_on_with_its_cookie_or_starts_a_guest(client):
    """The pages' sign-in: tokens only in HttpOnly SameSite=Strict cookies; the refresh cookie
    is sent to the auth service only; a second call continues the same learner."""
    first = await client.post("/api/v2/auth/session", json={"language": "en"})
    assert first.status_code == 200 and first.json()["access_token"] == "" and first.json()["refresh_token"] == ""
    set_cookies = first.headers.get_list("set-cookie")
    access = next(c for c in set_cookies if c.startswith("wp_access="))
    refresh = next(c for c in set_cookies if c.startswith("wp_refresh="))
    for cookie in (access, refresh):
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie, cookie
    assert "Path=/api/v2/auth" in refresh and "Path=/;" in access + ";"
    # With the cookies comes a CSRF token for the page's scripts to send back (not HttpOnly).
    csrf = next(c for c in set_cookies if c.startswith("wp_csrf="))
    assert "HttpOnly" not in csrf and "SameSite=strict" in csrf
    refused = await client.post("/api/v2/auth/session", json={})  # the cookies, but no token
    assert refused.status_code == 403 and refused.json()["error"] == "csrf"
    with_token = {"X-CSRF-Token": client.cookies["wp_csrf"]}
    again = await client.post("/api/v2/auth/session", json={}, headers=with_token)  # the client kept the cookies
    assert again.json()["user"]["id"] == first.json()["user"]["id"]
    client.cookies.clear()
    fresh = await client.post("/api/v2/auth/session", json={})
    assert fresh.json()["user"]["id"] != first.json()["user"]["id"] and fresh.json()["user"]["guest"]
    out = await client.post("/api/v2/auth/logout", json={}, headers={"X-CSRF-Token": client.cookies["wp_csrf"]})
    assert out.status_code == 204 and any(c.startswith('wp_access=""') for c in out.headers.get_list("set-cookie"))
    assert any(c.startswith('wp_csrf=""') for c in out.headers.get_list("set-cookie"))
