"""workplace_kit.auth: access tokens verified by every service, against real ES256 keys.

The keys are generated here and the JWKS is served by an injected fetcher (one test serves it
over loopback HTTP from this process to exercise the default fetcher); the clock is injected, so
expiry, leeway and the refetch interval are exact.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Depends
from jwt.algorithms import ECAlgorithm
from support.services import free_port
from workplace.chat.v1 import chat_pb2, chat_pb2_grpc
from workplace_kit.auth import (
    REASONS,
    InvalidToken,
    Principal,
    TokenVerifier,
    Unauthenticated,
    bearer_token,
    principal_dependency,
    principal_from_metadata,
)
from workplace_kit.config import ServiceSettings, load_settings
from workplace_kit.errors import Unavailable
from workplace_kit.grpc_server import GrpcService, start_grpc_server
from workplace_kit.service import create_http_app

ISSUER = "workplace-auth"
AUDIENCE = "workplace"
T0 = 1_750_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class SigningKey:
    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or uuid.uuid4().hex[:12]
        self.private = ec.generate_private_key(ec.SECP256R1())

    @property
    def jwk(self) -> dict[str, Any]:
        return {
            **ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True),
            "kid": self.kid,
            "use": "sig",
            "alg": "ES256",
        }

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, claims: dict[str, Any], **header: Any) -> str:
        # Signed as raw JWS: jwt.encode would refuse some of the odd claims these tests send.
        payload = json.dumps(claims).encode()
        return jwt.api_jws.encode(payload, self.private, algorithm="ES256", headers={"kid": self.kid, **header})


class Jwks:
    """The auth service's JWKS endpoint, as an injected fetcher: counts calls, can fail."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.calls = 0
        self.fail = False

    async def __call__(self) -> dict[str, Any]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionRefusedError("connect call failed ('127.0.0.1', 8103)")
        return {"keys": [k.jwk for k in self.keys]}


def claims(clock: Clock, **changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-42",
        "iat": int(clock.now),
        "exp": int(clock.now) + 900,
        "jti": "token-1",
        "guest": False,
        "scope": "learner",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def verifier(jwks: Jwks, clock: Clock, **options: Any) -> TokenVerifier:
    return TokenVerifier("http://auth.invalid/jwks", ISSUER, AUDIENCE, fetch_jwks=jwks, clock=clock, **options)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}.{b64(signature)}"


async def refused(v: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as err:
        await v.verify(token)
    assert err.value.reason in REASONS
    return err.value.reason


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key() -> SigningKey:
    return SigningKey()


@pytest.fixture
def jwks(key: SigningKey) -> Jwks:
    return Jwks(key)


async def test_a_valid_token_gives_its_principal(key, jwks, clock):
    v = verifier(jwks, clock)
    token = key.sign(claims(clock, guest=True, scope="learner  coach", jti="abc"))
    principal = await v.verify(token)
    assert principal == Principal(
        user_id="user-42",
        guest=True,
        scopes=frozenset({"learner", "coach"}),
        expires_at=datetime.fromtimestamp(T0 + 900, tz=UTC),
        token_id="abc",
    )
    assert principal.expires_at.tzinfo is not None
    # Cached: the second token of the same key needs no fetch.
    assert (await v.verify(key.sign(claims(clock, scope=None)))).scopes == frozenset()
    assert jwks.calls == 1


async def test_times_are_checked_with_leeway(key, jwks, clock):
    v = verifier(jwks, clock, leeway_s=30)
    assert await refused(v, key.sign(claims(clock, iat=int(T0) - 960, exp=int(T0) - 31))) == "expired"
    # Inside the leeway a just-expired token (a clock a little ahead of the issuer's) passes.
    await v.verify(key.sign(claims(clock, iat=int(T0) - 920, exp=int(T0) - 20)))
    assert await refused(v, key.sign(claims(clock, nbf=int(T0) + 120))) == "not_yet_valid"
    assert await refused(v, key.sign(claims(clock, iat=int(T0) + 120, exp=int(T0) + 1020))) == "not_yet_valid"
    await v.verify(key.sign(claims(clock, nbf=int(T0) + 20, iat=int(T0) + 20)))
    # A token valid now expires with the clock.
    token = key.sign(claims(clock))
    await v.verify(token)
    clock.now += 900 + 30
    assert await refused(v, token) == "expired"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "someone-else"}, "wrong_issuer"),
        ({"iss": 7}, "wrong_issuer"),
        ({"aud": "other-platform"}, "wrong_audience"),
        ({"aud": ["other", "platforms"]}, "wrong_audience"),
        ({"sub": None}, "missing_claim"),
        ({"exp": None}, "missing_claim"),
        ({"iat": None}, "missing_claim"),
        ({"jti": None}, "missing_claim"),
        ({"iss": None}, "missing_claim"),
        ({"aud": None}, "missing_claim"),
        ({"guest": None}, "missing_claim"),
        ({"sub": ""}, "missing_claim"),
        ({"sub": 42}, "malformed"),
        ({"guest": "false"}, "malformed"),
        ({"scope": ["learner"]}, "malformed"),
        ({"exp": "tomorrow"}, "malformed"),
        ({"exp": True}, "malformed"),
        ({"exp": 10**30}, "malformed"),
    ],
)
async def test_claims_are_checked(key, jwks, clock, changes, reason):
    assert await refused(verifier(jwks, clock), key.sign(claims(clock, **changes))) == reason


async def test_an_audience_list_that_includes_ours_passes(key, jwks, clock):
    await verifier(jwks, clock).verify(key.sign(claims(clock, aud=["other", AUDIENCE])))


@pytest.mark.parametrize(
    "alg", ["none", "None", "NONE", "HS256", "HS512", "RS256", "PS256", "ES384", "ES512", "EdDSA", ""]
)
async def test_only_es256_is_accepted_before_any_key_is_looked_at(key, jwks, clock, alg):
    token = unsigned({"alg": alg, "typ": "JWT", "kid": key.kid}, claims(clock), b"\x00" * 64)
    v = verifier(jwks, clock)
    assert await refused(v, token) == "alg_not_allowed"
    assert await refused(v, unsigned({"typ": "JWT", "kid": key.kid}, claims(clock))) == "alg_not_allowed"
    assert jwks.calls == 0


async def test_really_signed_tokens_of_other_algorithms_are_refused(key, jwks, clock):
    v = verifier(jwks, clock)
    await v.verify(key.sign(claims(clock)))  # the key is known and cached
    # alg none, unsigned (PyJWT writes it when asked).
    none_token = jwt.encode(claims(clock), None, algorithm="none", headers={"kid": key.kid})
    assert await refused(v, none_token) == "alg_not_allowed"
    # The classic confusion: HS256 with the public key (which anyone can download) as the secret.
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}).encode())
    body = b64(json.dumps(claims(clock)).encode())
    mac = hmac.new(key.public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    assert await refused(v, f"{header}.{body}.{b64(mac)}") == "alg_not_allowed"
    # RS256 with a real RSA key.
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rs_token = jwt.encode(claims(clock), rsa_key, algorithm="RS256", headers={"kid": key.kid})
    assert await refused(v, rs_token) == "alg_not_allowed"
    # ES512 on another curve.
    p521 = ec.generate_private_key(ec.SECP521R1())
    assert await refused(v, jwt.encode(claims(clock), p521, "ES512", headers={"kid": key.kid})) == "alg_not_allowed"
    assert jwks.calls == 1


async def test_forged_and_tampered_tokens_are_refused(key, jwks, clock):
    v = verifier(jwks, clock)
    impostor = SigningKey(kid=key.kid)  # claims to be the published key
    assert await refused(v, impostor.sign(claims(clock))) == "bad_signature"
    # Claims changed after signing: another user, not a guest any more, admin scope.
    header, _, signature = key.sign(claims(clock, guest=True)).split(".")
    for changed in (
        claims(clock, sub="user-1"),
        claims(clock, guest=False),
        claims(clock, guest=True, scope="learner admin"),
    ):
        assert await refused(v, f"{header}.{b64(json.dumps(changed).encode())}.{signature}") == "bad_signature"
    # The signature changed, truncated, or taken from another token.
    token = key.sign(claims(clock))
    head, body, sig = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[5] ^= 0x01
    assert await refused(v, f"{head}.{body}.{b64(bytes(raw))}") == "bad_signature"
    assert await refused(v, f"{head}.{body}.{b64(bytes(raw[:32]))}") == "bad_signature"
    assert await refused(v, f"{head}.{body}.") == "bad_signature"
    other_sig = key.sign(claims(clock, sub="user-1")).split(".")[2]
    assert await refused(v, f"{head}.{body}.{other_sig}") == "bad_signature"


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "!!!.###.$$$",
        "Bearer x.y.z",
        b64(b'{"alg":"ES256"').rjust(10, "e") + ".e30.",
        b64(b"[1, 2]") + ".e30.",
        b64(json.dumps({"alg": "ES256", "kid": 7}).encode()) + ".e30.",
        b64(json.dumps({"alg": "ES256", "kid": "k", "typ": "JWE"}).encode()) + ".e30.",
        b64(json.dumps({"alg": "ES256", "kid": "k", "crit": ["exp"]}).encode()) + ".e30.",
        b64(json.dumps({"alg": "ES256", "kid": "k", "b64": False}).encode()) + "..",
        "e" * 9000 + ".e30.",
    ],
)
async def test_malformed_strings_are_refused(jwks, clock, token):
    assert await refused(verifier(jwks, clock), token) == "malformed"
    assert jwks.calls == 0


async def test_an_empty_token_is_missing_and_a_kidless_one_names_no_key(key, jwks, clock):
    v = verifier(jwks, clock)
    assert await refused(v, "") == "missing"
    kidless = jwt.encode(claims(clock), key.private, algorithm="ES256")
    assert await refused(v, kidless) == "unknown_key"
    assert jwks.calls == 0


async def test_a_payload_that_is_not_a_json_object_is_malformed(key, jwks, clock):
    v = verifier(jwks, clock)
    signed = jwt.api_jws.encode(b"[1,2,3]", key.private, algorithm="ES256", headers={"kid": key.kid})
    assert await refused(v, signed) == "malformed"


async def test_an_unknown_kid_is_refused_after_one_fetch(key, jwks, clock):
    v = verifier(jwks, clock)
    stranger = SigningKey()
    assert await refused(v, stranger.sign(claims(clock))) == "unknown_key"
    assert jwks.calls == 1


async def test_key_rotation(clock):
    old, new = SigningKey("2025-01"), SigningKey("2025-02")
    jwks = Jwks(old)
    v = verifier(jwks, clock, refetch_min_interval_s=30, max_key_age_s=300)
    old_token = old.sign(claims(clock))
    await v.verify(old_token)
    # The auth service publishes the new key next to the old one, then signs with the new one:
    # the first token of the unknown kid fetches the JWKS again.
    jwks.keys.append(new)
    clock.now += 60
    new_token = new.sign(claims(clock))
    await v.verify(new_token)
    await v.verify(old_token)
    assert jwks.calls == 2
    # The old key is withdrawn: once the cached keys are old enough they are fetched again, and
    # tokens of the withdrawn key fail while those of the new one still pass.
    jwks.keys = [new]
    await v.verify(old_token)  # still within max_key_age_s of the last fetch
    clock.now += 301
    assert await refused(v, old_token) == "unknown_key"
    await v.verify(new_token)
    assert jwks.calls == 3


async def test_a_flood_of_unknown_kids_fetches_at_most_once_per_interval(key, jwks, clock):
    v = verifier(jwks, clock, refetch_min_interval_s=30)
    await v.verify(key.sign(claims(clock)))
    assert jwks.calls == 1
    clock.now += 31
    forged = [SigningKey().sign(claims(clock)) for _ in range(5)]
    tokens = [forged[i % 5] for i in range(200)]
    results = await asyncio.gather(*(v.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, InvalidToken) and r.reason == "unknown_key" for r in results)
    assert jwks.calls == 2
    for _ in range(50):
        clock.now += 0.5  # 25 s in all: still within the interval
        assert await refused(v, forged[0]) == "unknown_key"
    assert jwks.calls == 2
    # Genuine tokens keep passing from the cache meanwhile.
    await v.verify(key.sign(claims(clock)))
    clock.now += 6
    assert await refused(v, forged[1]) == "unknown_key"
    assert jwks.calls == 3


async def test_a_key_published_moments_after_a_fetch_is_found_after_the_interval(key, jwks, clock):
    v = verifier(jwks, clock, refetch_min_interval_s=30)
    await v.verify(key.sign(claims(clock)))
    late = SigningKey()
    jwks.keys.append(late)
    token = late.sign(claims(clock))
    clock.now += 10
    assert await refused(v, SigningKey().sign(claims(clock))) == "unknown_key"  # fetches (first miss)
    clock.now += 31
    await v.verify(token)


async def test_a_jwks_fetch_failure_is_unavailable_not_a_refusal(key, jwks, clock):
    jwks.fail = True
    v = verifier(jwks, clock, refetch_min_interval_s=30)
    token = key.sign(claims(clock))
    with pytest.raises(Unavailable) as err:
        await v.verify(token)
    assert err.value.http_status == 503 and "8103" not in err.value.message
    # Within the interval the auth service is not asked again, and the answer stays 503.
    with pytest.raises(Unavailable):
        await v.verify(token)
    assert jwks.calls == 1
    # It comes back.
    jwks.fail = False
    clock.now += 30
    await v.verify(token)
    assert jwks.calls == 2


async def test_cached_keys_serve_while_the_auth_service_is_down(key, jwks, clock):
    v = verifier(jwks, clock, max_key_age_s=300)
    await v.verify(key.sign(claims(clock)))
    jwks.fail = True
    clock.now += 400  # the cached keys are old: a refresh is due, and fails
    await v.verify(key.sign(claims(clock)))
    assert jwks.calls == 2
    # A kid never seen cannot be checked: that is an outage, not a forged token.
    with pytest.raises(Unavailable):
        await v.verify(SigningKey().sign(claims(clock)))


@pytest.mark.parametrize("document", [{"nope": []}, {"keys": "x"}, [], "keys"])
async def test_a_document_that_is_not_a_jwks_is_unavailable(key, clock, document):
    async def fetch() -> Any:
        return document

    v = TokenVerifier("http://auth.invalid/jwks", ISSUER, AUDIENCE, fetch_jwks=fetch, clock=clock)
    with pytest.raises(Unavailable):
        await v.verify(key.sign(claims(clock)))


async def test_jwks_entries_that_are_not_es256_signing_keys_are_skipped(key, clock):
    rsa_jwk = jwt.algorithms.RSAAlgorithm.to_jwk(rsa.generate_private_key(65537, 2048).public_key(), as_dict=True)
    p384 = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP384R1()).public_key(), as_dict=True)
    off_curve = {**key.jwk, "y": key.jwk["x"]}
    hmac_key = {"kty": "oct", "k": b64(key.public_pem), "kid": "hs", "alg": "HS256"}
    private_too = {**ECAlgorithm.to_jwk(key.private, as_dict=True), "kid": key.kid}
    entries = [
        "not a key",
        {**rsa_jwk, "kid": "rsa"},
        {**p384, "kid": "p384"},
        {**off_curve, "kid": "bad"},
        {**key.jwk, "kid": "enc", "use": "enc"},
        {**key.jwk, "kid": "es384", "alg": "ES384"},
        hmac_key,
        private_too,  # only its public part is used
    ]

    async def fetch() -> dict[str, Any]:
        return {"keys": entries}

    v = TokenVerifier("http://auth.invalid/jwks", ISSUER, AUDIENCE, fetch_jwks=fetch, clock=clock)
    await v.verify(key.sign(claims(clock)))
    for kid in ("rsa", "p384", "bad", "enc", "es384", "hs"):
        assert await refused(v, key.sign(claims(clock), kid=kid)) == "unknown_key", kid


def test_bearer_token_prefers_the_header():
    assert bearer_token("Bearer abc.def.ghi", "cookie.tok.en") == "abc.def.ghi"
    assert bearer_token("bearer   abc ", None) == "abc"
    assert bearer_token(None, "cookie.tok.en") == "cookie.tok.en"
    assert bearer_token("Basic dXNlcjpwYXNz", "cookie.tok.en") == "cookie.tok.en"
    for header, cookie in ((None, None), ("", ""), ("Basic dXNlcjpwYXNz", None), (None, "  ")):
        with pytest.raises(InvalidToken) as err:
            bearer_token(header, cookie)
        assert err.value.reason == "missing"
    for header in ("Bearer", "Bearer ", "Bearer a b"):
        with pytest.raises(InvalidToken) as err:
            bearer_token(header, "cookie.tok.en")
        assert err.value.reason == "malformed"


def test_unauthenticated_maps_to_401_and_unauthenticated():
    exc = Unauthenticated(reason="expired")
    assert (exc.http_status, exc.grpc_code_name, exc.error_code) == (401, "UNAUTHENTICATED", "unauthenticated")
    assert exc.to_json() == {"error": "unauthenticated", "message": "the access token has expired"}
    assert exc.http_headers() == {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    assert Unauthenticated().http_headers() == {"WWW-Authenticate": "Bearer"}
    assert Unauthenticated(reason="bad_signature").message == "the access token is not valid"


def test_settings_name_the_auth_service(monkeypatch):
    for name in ("WP_AUTH_JWKS_URL", "WP_AUTH_ISSUER", "WP_AUTH_AUDIENCE", "WP_AUTH_COOKIE_NAME"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(ServiceSettings, service_name="chat")
    assert settings.auth_jwks_url == "http://127.0.0.1:8103/.well-known/jwks.json"
    assert (settings.auth_issuer, settings.auth_audience, settings.auth_cookie_name) == (
        "workplace-auth",
        "workplace",
        "wp_access",
    )
    monkeypatch.setenv("WP_AUTH_JWKS_URL", "http://auth.workplace.svc:8103/.well-known/jwks.json")
    v = TokenVerifier.from_settings(load_settings(ServiceSettings))
    assert v.jwks_url == "http://auth.workplace.svc:8103/.well-known/jwks.json"
    with pytest.raises(ValueError):
        TokenVerifier("file:///etc/passwd", ISSUER, AUDIENCE)


async def test_the_http_dependency_answers_401_json_and_takes_header_or_cookie(key, jwks, clock):
    app = create_http_app(ServiceSettings(service_name="t"), title="t")
    current = principal_dependency(verifier(jwks, clock), "wp_access")

    @app.get("/me")
    async def me(principal: Principal = Depends(current)) -> dict[str, object]:
        return {"user": principal.user_id, "guest": principal.guest}

    good = key.sign(claims(clock))
    expired = key.sign(claims(clock, iat=int(T0) - 2000, exp=int(T0) - 1000))
    forged = SigningKey(kid=key.kid).sign(claims(clock))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/me", headers={"Authorization": f"Bearer {good}"})
        assert r.status_code == 200 and r.json() == {"user": "user-42", "guest": False}
        r = await client.get("/me", headers={"Cookie": f"wp_access={good}"})
        assert r.status_code == 200 and r.json()["user"] == "user-42"
        # The header wins over the cookie, both ways.
        assert (
            await client.get("/me", headers={"Authorization": f"Bearer {good}", "Cookie": "wp_access=x"})
        ).status_code == 200
        r = await client.get("/me", headers={"Authorization": f"Bearer {forged}", "Cookie": f"wp_access={good}"})
        assert r.status_code == 401
        r = await client.get("/me")
        assert r.status_code == 401 and r.json() == {"error": "unauthenticated", "message": "authentication required"}
        r = await client.get("/me", headers={"Authorization": f"Bearer {expired}"})
        assert r.status_code == 401 and r.json() == {
            "error": "unauthenticated",
            "message": "the access token has expired",
        }
        for bad in ("garbage", forged, "e30." * 2 + "x", "Bearer"):
            r = await client.get("/me", headers={"Authorization": f"Bearer {bad}"})
            assert r.status_code == 401 and r.json()["error"] == "unauthenticated", bad
            assert "Traceback" not in r.text and "signature" not in r.text.lower()
            assert r.headers["content-type"] == "application/json"
        r = await client.get("/me", headers={"Cookie": f"wp_access={forged}"})
        assert r.status_code == 401 and r.json()["message"] == "the access token is not valid"
        # Keys that cannot be fetched: 503 with Retry-After, not a 401 that would sign people out.
        jwks.fail = True
        stranger = SigningKey().sign(claims(clock))
        fresh = verifier(jwks, clock)
        app.dependency_overrides[current] = principal_dependency(fresh, "wp_access")
        r = await client.get("/me", headers={"Authorization": f"Bearer {stranger}"})
        assert r.status_code == 503 and r.json()["error"] == "unavailable" and int(r.headers["retry-after"]) > 0


class _Metadata:
    def __init__(self, *pairs: tuple[str, str]) -> None:
        self.pairs = pairs

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.pairs


async def test_grpc_metadata_gives_the_principal_or_unauthenticated(key, jwks, clock):
    v = verifier(jwks, clock)
    good = key.sign(claims(clock))
    principal = await principal_from_metadata(v, _Metadata(("x-other", "1"), ("authorization", f"Bearer {good}")))
    assert principal.user_id == "user-42"
    for metadata, reason in (
        (_Metadata(), "missing"),
        (_Metadata(("authorization", "Basic dXNlcjpwYXNz")), "missing"),
        (_Metadata(("authorization", "Bearer garbage")), "malformed"),
        (_Metadata(("authorization", "Bearer")), "malformed"),
        (_Metadata(("authorization", f"Bearer {SigningKey(kid=key.kid).sign(claims(clock))}")), "bad_signature"),
        (_Metadata(("authorization", f"Bearer {good}"), ("authorization", f"Bearer {good}")), "malformed"),
    ):
        with pytest.raises(Unauthenticated) as err:
            await principal_from_metadata(v, metadata)
        assert err.value.reason == reason


class _AuthServicer(chat_pb2_grpc.ChatServiceServicer):
    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier

    async def GetHistory(self, request, context):  # noqa: N802
        principal = await principal_from_metadata(self.verifier, context)
        return chat_pb2.GetHistoryResponse(session_id=principal.user_id)


async def test_grpc_calls_without_a_valid_token_are_unauthenticated(key, jwks):
    v = TokenVerifier("http://auth.invalid/jwks", ISSUER, AUDIENCE, fetch_jwks=jwks)  # the real clock
    good = key.sign(claims(Clock(time.time())))
    service = GrpcService(
        chat_pb2_grpc.add_ChatServiceServicer_to_server, _AuthServicer(v), "workplace.chat.v1.ChatService"
    )
    server, port, _ = await start_grpc_server([service], port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = chat_pb2_grpc.ChatServiceStub(channel)
            reply = await stub.GetHistory(chat_pb2.GetHistoryRequest(), metadata=(("authorization", f"Bearer {good}"),))
            assert reply.session_id == "user-42"
            for metadata in ((), (("authorization", "Bearer nope"),)):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.GetHistory(chat_pb2.GetHistoryRequest(), metadata=metadata)
                assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
                assert "Traceback" not in (err.value.details() or "")
    finally:
        await server.stop(None)


class _JwksHandler(http.server.BaseHTTPRequestHandler):
    body = b""
    delay_s = 0.0

    def do_GET(self) -> None:  # noqa: N802
        time.sleep(self.delay_s)
        self.send_response(200 if self.path == "/.well-known/jwks.json" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


async def test_the_default_fetcher_gets_the_jwks_over_http_without_blocking_the_loop(key):
    handler = type("Handler", (_JwksHandler,), {"body": json.dumps({"keys": [key.jwk]}).encode(), "delay_s": 0.3})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        v = TokenVerifier(f"{base}/.well-known/jwks.json", ISSUER, AUDIENCE)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        principal = await v.verify(key.sign(claims(Clock(time.time()))))
        ticker.cancel()
        assert principal.user_id == "user-42"
        assert ticks >= 10  # the loop kept running while the fetch waited 0.3 s
        # A wrong path (404) and a closed port are outages.
        for url in (f"{base}/nope", f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"):
            with pytest.raises(Unavailable):
                await TokenVerifier(url, ISSUER, AUDIENCE).verify(key.sign(claims(Clock(time.time()))))
    finally:
        server.shutdown()
        server.server_close()
