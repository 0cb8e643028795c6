"""Rate limits and the daily AI quota against the real Redis: 429 with Retry-After in the JSON
error format (RESOURCE_EXHAUSTED over gRPC), counted per address and per account, and a Redis
that cannot answer lets requests through instead of failing them."""

from __future__ import annotations

import random
import uuid

import grpc
import httpx
import pytest
from auth_service.app import build as build_auth
from auth_service.settings import AuthSettings
from chat_service.app import build as build_chat
from chat_service.settings import ChatSettings
from support.services import running_service
from workplace.chat.v1 import chat_pb2, chat_pb2_grpc
from workplace_kit.ratelimit import UNCHECKED, Limiter, RateLimited, Rule


def an_address() -> str:
    """A documentation-range address of its own per test: counters never meet another test's."""
    return f"198.51.100.{random.randint(1, 254)}, 2001:db8::{random.getrandbits(32):x}:{random.getrandbits(16):x}"


@pytest.fixture(scope="module")
async def strict_auth():
    settings = AuthSettings(
        auth_cookie_secure=False, auth_sign_ins_rate="3/minute", auth_password_attempts_rate="2/minute"
    )
    async with running_service(build_auth, settings) as svc:
        yield svc


def assert_limited(r: httpx.Response) -> None:
    assert r.status_code == 429, r.text
    body = r.json()
    assert body["error"] == "rate_limited" and body["message"] and 1 <= body["retry_after_s"] <= 60
    assert r.headers["retry-after"] == str(body["retry_after_s"])


async def test_new_sign_ins_are_limited_per_address(strict_auth):
    address, other = an_address(), an_address()
    async with httpx.AsyncClient(base_url=strict_auth.http_url, timeout=30) as client:
        for _ in range(3):
            r = await client.post("/api/v2/auth/guest", json={}, headers={"X-Forwarded-For": address})
            assert r.status_code == 201, r.text
        # The fourth from the same address, whichever way it asks for an account:
        for path, body in [
            ("/api/v2/auth/guest", {}),
            ("/api/v2/auth/session", {}),
            ("/api/v2/auth/register", {"email": f"{uuid.uuid4().hex[:8]}@example.com", "password": "x" * 12}),
        ]:
            assert_limited(await client.post(path, json=body, headers={"X-Forwarded-For": address}))
        # Only the last X-Forwarded-For entry (the gateway's) counts: a client's own entries
        # in front of it change nothing.
        last = address.rsplit(",", 1)[1]
        assert_limited(
            await client.post("/api/v2/auth/guest", json={}, headers={"X-Forwarded-For": f"10.0.0.9,{last}"})
        )
        r = await client.post("/api/v2/auth/guest", json={}, headers={"X-Forwarded-For": other})
        assert r.status_code == 201


async def test_password_attempts_are_limited_per_email_from_any_address(strict_auth):
    email = f"victim-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=strict_auth.http_url, timeout=30) as client:
        for _ in range(2):
            r = await client.post(
                "/api/v2/auth/login",
                json={"email": email, "password": "wrong-password"},
                headers={"X-Forwarded-For": an_address()},
            )
            assert r.status_code == 401
        assert_limited(
            await client.post(
                "/api/v2/auth/login",
                json={"email": email.upper(), "password": "wrong-password"},
                headers={"X-Forwarded-For": an_address()},
            )
        )


@pytest.fixture(scope="module")
async def strict_chat(identities, run_id):
    settings = ChatSettings(
        ai_provider="offline",
        auth_jwks_url=identities.jwks_url,
        pubsub_name_suffix=f".t{run_id}",  # as every in-process service: they share one outbox
        chat_messages_rate="3/minute",
        chat_ai_replies_rate="4/day",
    )
    async with running_service(build_chat, settings) as svc:
        yield svc


async def _send(client: httpx.AsyncClient, headers: dict[str, str], session_id: str = "") -> httpx.Response:
    body = {"message": "お疲れさまです。", "session_id": session_id} if session_id else {"message": "お疲れさまです。"}
    return await client.post("/api/v2/chat", json=body, headers=headers)


async def test_chat_messages_per_minute_and_ai_replies_per_day_per_learner(strict_chat, identities):
    name = f"busy-{uuid.uuid4().hex[:6]}"
    headers = await identities.headers(name)
    async with httpx.AsyncClient(base_url=strict_chat.http_url, timeout=60) as client:
        for _ in range(3):
            assert (await _send(client, headers)).status_code == 200
        limited = await _send(client, headers)
        assert_limited(limited)
        assert "wait a moment" in limited.json()["message"]
        # Another learner is not slowed down by the first.
        assert (await _send(client, await identities.headers(f"calm-{uuid.uuid4().hex[:6]}"))).status_code == 200
    # Over gRPC the same rule answers RESOURCE_EXHAUSTED.
    async with grpc.aio.insecure_channel(strict_chat.grpc_address) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in stub.StreamReply(
                chat_pb2.StreamReplyRequest(message="もう一度"), metadata=await identities.metadata(name)
            ):
                pass
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_the_daily_quota_is_counted_apart_from_the_minute(identities):
    """A day's replies run out even for a learner who never hurries."""
    limiter = Limiter(ChatSettings().redis_url)
    user = str(uuid.uuid4())
    day = Rule("chat-ai-replies", "2/day", "Today's practice limit is reached")
    await limiter.hit(day, user)
    await limiter.hit(day, user)
    with pytest.raises(RateLimited) as refused:
        await limiter.hit(day, user)
    assert refused.value.http_status == 429 and 23 * 3600 < refused.value.retry_after_s <= 24 * 3600


async def test_an_unreachable_redis_lets_requests_through():
    limiter = Limiter("redis://127.0.0.1:1/0")  # nothing listens on port 1
    rule = Rule("probe", "1/minute", "never")
    before = UNCHECKED.labels("probe")._value.get()
    for _ in range(3):
        await limiter.hit(rule, "someone")  # no error: counted as unchecked, not refused
    assert UNCHECKED.labels("probe")._value.get() == before + 3
