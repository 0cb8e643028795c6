"""Legacy (Flask) sessions move to accounts: real Flask-Session sessions written by Flask into the
real Redis (a key prefix of this run's own), the auth and chat services in-process on the real
PostgreSQL and Pub/Sub emulator.

The legacy app is Flask + Flask-Session 0.8 with signed cookies, as the old app ran; sessions
of Flask-Session before 0.6 (pickled) are written the way it wrote them, pickle.dumps of the
session dict under the same key."""

from __future__ import annotations

import asyncio
import io
import os
import pickle
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
import redis
from auth_service.app import build as build_auth
from auth_service.legacy import chat_session_id, legacy_key
from auth_service.legacy_batch import migrate_all
from auth_service.settings import AuthSettings
from chat_service.app import build as build_chat
from chat_service.settings import ChatSettings
from flask import Flask, request, session
from flask_session import Session
from rich.console import Console
from support.services import running_service
from workplace.auth.v1 import auth_pb2, auth_pb2_grpc

SECRET = "the-legacy-apps-secret-key"
COOKIE = "session"


@pytest.fixture(scope="module")
def prefix(run_id: str) -> str:
    return f"legacy-test-{run_id}-{uuid.uuid4().hex[:6]}:"


@pytest.fixture(scope="module")
def legacy_redis(prefix):
    client = redis.Redis.from_url(os.environ.get("WP_REDIS_URL", "redis://127.0.0.1:6379/0"))
    yield client
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def legacy_app(prefix, legacy_redis) -> Flask:
    """The old app's session store: Flask-Session on Redis, signed cookies."""
    app = Flask("legacy")
    app.secret_key = SECRET
    app.config.update(
        SESSION_TYPE="redis",
        SESSION_REDIS=legacy_redis,
        SESSION_KEY_PREFIX=prefix,
        SESSION_USE_SIGNER=True,
        SESSION_PERMANENT=False,
    )
    with pytest.warns(DeprecationWarning):  # SESSION_USE_SIGNER, as the old app has it
        Session(app)

    @app.post("/seed")
    def seed():
        session.update(request.get_json())
        return "ok"

    return app


def legacy_session(app: Flask, data: dict) -> str:
    """A session written by Flask-Session itself; returns its cookie's value."""
    client = app.test_client()
    assert client.post("/seed", json=data).status_code == 200
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def pickled_legacy_session(app: Flask, legacy_redis, data: object) -> str:
    """A session as Flask-Session before 0.6 stored it (a pickle); its cookie signed alike."""
    interface = app.session_interface
    sid = interface._generate_sid(32)
    legacy_redis.set(interface.key_prefix + sid, pickle.dumps(data))
    return interface._sign(app, sid)


def sid_of(app: Flask, cookie: str) -> str:
    return app.session_interface._unsign(app, cookie)


def chat_exchanges(count: int, tag: str) -> list[dict]:
    exchanges = [{"human": "[雑談開始]", "ai": f"おはよう {tag}", "timestamp": "2025-06-01T09:00:00"}]
    exchanges += [
        {"human": f"learner {tag} {i}", "ai": f"reply {tag} {i}", "timestamp": f"2025-06-01T09:{i:02d}:30"}
        for i in range(1, count)
    ]
    return exchanges


def seed_data(tag: str, exchanges: int = 3) -> dict:
    return {
        "chat_history": chat_exchanges(exchanges, tag),
        "chat_settings": {"partner_type": "boss", "situation": "evening", "topic": "general"},
        "scenario_history": {"scenario7": [{"human": f"scenario {tag}", "ai": "ok", "timestamp": "2025-06-02T10:00"}]},
        "csrf_token": "abc",
    }


@pytest.fixture(scope="module")
def auth_settings(prefix, run_id) -> AuthSettings:
    return AuthSettings(
        auth_cookie_secure=False,
        pubsub_name_suffix=f".t{run_id}",
        legacy_session_key_prefix=prefix,
        legacy_secret_key=SECRET,
        legacy_timezone="Asia/Tokyo",
    )


@pytest.fixture(scope="module")
async def legacy_auth(auth_settings):
    async with running_service(build_auth, auth_settings) as svc:
        yield svc


@pytest.fixture(scope="module")
async def chat(legacy_auth, run_id):
    settings = ChatSettings(
        pubsub_name_suffix=f".t{run_id}",
        ai_provider="offline",
        auth_jwks_url=f"{legacy_auth.http_url}/.well-known/jwks.json",
    )
    async with running_service(build_chat, settings) as svc:
        yield svc


async def visit(auth_url: str, cookies: dict[str, str]) -> httpx.Response:
    """The page's POST /api/v2/auth/session; with our cookies, the CSRF header as the page sends it."""
    headers = {"X-CSRF-Token": cookies["wp_csrf"]} if "wp_csrf" in cookies else {}
    async with httpx.AsyncClient(base_url=auth_url, cookies=cookies, headers=headers, timeout=30) as client:
        return await client.post("/api/v2/auth/session", json={})


async def chat_history(chat_url: str, access_token: str, session_id: uuid.UUID, count: int) -> dict:
    """The chat session once it has `count` messages (the event reaches chat within seconds)."""
    async with httpx.AsyncClient(base_url=chat_url, timeout=30) as client:
        for _ in range(150):
            r = await client.get(
                f"/api/v2/chat/sessions/{session_id}", headers={"Authorization": f"Bearer {access_token}"}
            )
            if r.status_code == 200 and len(r.json()["messages"]) >= count:
                return r.json()
            assert r.status_code in (200, 404), r.text
            await asyncio.sleep(0.2)
    raise AssertionError(f"chat session {session_id} did not get its {count} messages")


async def migrations(legacy_auth) -> int:
    pool = legacy_auth.app.state.service.repository.pool
    return await pool.fetchval("SELECT count(*) FROM legacy_migrations")


async def test_a_visit_with_the_legacy_cookie_moves_every_message_once(legacy_app, legacy_auth, chat):
    data = seed_data("visit", exchanges=4)
    cookie = legacy_session(legacy_app, data)
    first = await visit(legacy_auth.http_url, {COOKIE: cookie})
    assert first.status_code == 200, first.text
    user = first.json()["user"]
    assert user["guest"] is True
    # Our cookies are set, the legacy one cleared.
    assert first.cookies.get("wp_access") and first.cookies.get("wp_refresh")
    cleared = [h for h in first.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")]
    assert cleared and ("Max-Age=0" in cleared[0] or "expires=Thu, 01 Jan 1970" in cleared[0])

    # Chat shows the free chat to the new learner's token: every exchange, in order.
    session_id = chat_session_id(legacy_key(sid_of(legacy_app, cookie)))
    history = await chat_history(chat.http_url, first.cookies["wp_access"], session_id, 8)
    texts = [(m["role"], m["text"]) for m in history["messages"]]
    expected = []
    for exchange in data["chat_history"]:
        expected += [("user", exchange["human"]), ("model", exchange["ai"])]
    assert texts == expected
    assert history["partner"] == "boss" and history["situation"] == "after_work"
    assert history["messages"][0]["created_at"].startswith("2025-06-01T00:00:00")  # 09:00 in Tokyo
    assert {m["engine_id"] for m in history["messages"] if m["role"] == "model"} == {"legacy"}

    # The same cookie again (say the answer was lost): the same guest, nothing moved twice.
    before = await migrations(legacy_auth)
    again = await visit(legacy_auth.http_url, {COOKIE: cookie})
    assert again.status_code == 200 and again.json()["user"]["id"] == user["id"]
    assert await migrations(legacy_auth) == before
    await asyncio.sleep(1)  # a duplicate would have arrived by now
    assert len((await chat_history(chat.http_url, again.cookies["wp_access"], session_id, 8))["messages"]) == 8

    # The scenario history is kept with auth, whole, until the scenario service takes it.
    kept = await legacy_auth.app.state.legacy.repository.histories(uuid.UUID(user["id"]))
    assert [(kind, name) for kind, name, _ in kept] == [("scenario", "scenario7")]
    assert '"learner": "scenario visit"' in kept[0][2]

    # Internal callers see the same through gRPC.
    async with grpc.aio.insecure_channel(legacy_auth.grpc_address) as channel:
        reply = await auth_pb2_grpc.AuthServiceStub(channel).MigrateLegacySession(
            auth_pb2.MigrateLegacySessionRequest(legacy_session_id=cookie)
        )
    assert reply.already_migrated and reply.user.id == user["id"]
    assert (reply.migrated_session_count, reply.migrated_message_count) == (2, 10)


async def test_a_signed_in_learner_gets_the_legacy_session_linked(legacy_app, legacy_auth, chat):
    learner = await visit(legacy_auth.http_url, {})
    user_id = learner.json()["user"]["id"]
    cookie = legacy_session(legacy_app, seed_data("linked", exchanges=2))
    ours = {name: learner.cookies[name] for name in ("wp_refresh", "wp_csrf")}
    linked = await visit(legacy_auth.http_url, {COOKIE: cookie, **ours})
    assert linked.status_code == 200 and linked.json()["user"]["id"] == user_id
    session_id = chat_session_id(legacy_key(sid_of(legacy_app, cookie)))
    history = await chat_history(chat.http_url, linked.cookies["wp_access"], session_id, 4)
    assert history["messages"][2]["text"] == "learner linked 1"


async def test_a_malicious_pickle_is_refused_never_run(legacy_app, legacy_redis, legacy_auth, tmp_path: Path):
    marker = tmp_path / "legacy-pickle-ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    cookie = pickled_legacy_session(legacy_app, legacy_redis, {"chat_history": [], "x": Exploit()})
    before = await migrations(legacy_auth)
    r = await visit(legacy_auth.http_url, {COOKIE: cookie})
    # The visitor gets a plain new guest; nothing is moved, the cookie is left alone.
    assert r.status_code == 200 and r.json()["user"]["guest"] is True
    assert not [h for h in r.headers.get_list("set-cookie") if h.startswith(f"{COOKIE}=")]
    assert await migrations(legacy_auth) == before
    async with grpc.aio.insecure_channel(legacy_auth.grpc_address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await auth_pb2_grpc.AuthServiceStub(channel).MigrateLegacySession(
                auth_pb2.MigrateLegacySessionRequest(legacy_session_id=cookie)
            )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "plain data" in refused.value.details()
    assert not marker.exists()


async def test_batch_dry_run_changes_nothing_then_moves_all_and_runs_again_safely(
    legacy_app, legacy_redis, legacy_auth, auth_settings, chat, tmp_path: Path
):
    marker = tmp_path / "batch-pickle-ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    # Older Flask-Session's pickles next to newer msgpack sessions, one empty, one unsafe.
    pickled = pickled_legacy_session(legacy_app, legacy_redis, seed_data("batch-pickled", exchanges=2))
    written = legacy_session(legacy_app, seed_data("batch-msgpack", exchanges=3))
    legacy_session(legacy_app, {"csrf_token": "only settings"})
    pickled_legacy_session(legacy_app, legacy_redis, {"x": Exploit()})
    quiet = Console(file=io.StringIO())

    before = await migrations(legacy_auth)
    dry = await migrate_all(auth_settings, dry_run=True, console=quiet)
    assert await migrations(legacy_auth) == before
    assert dry.counts["migrated"] >= 2 and dry.counts["skipped_unsafe"] >= 1 and dry.counts["skipped_empty"] >= 1

    run = await migrate_all(auth_settings, dry_run=False, console=quiet)
    assert run.counts["migrated"] == dry.counts["migrated"]
    assert run.counts["skipped_unsafe"] == dry.counts["skipped_unsafe"] and run.counts["failed"] == 0
    assert await migrations(legacy_auth) == before + run.counts["migrated"]
    assert any(key.startswith(auth_settings.legacy_session_key_prefix) for key, _ in run.problems)

    again = await migrate_all(auth_settings, dry_run=False, console=quiet)
    assert again.counts["migrated"] == 0
    assert again.counts["already_migrated"] == run.counts["already_migrated"] + run.counts["migrated"]
    assert await migrations(legacy_auth) == before + run.counts["migrated"]
    assert not marker.exists()

    # A learner moved by the batch signs in with the legacy cookie and finds the chat.
    for cookie, count in ((pickled, 4), (written, 6)):
        r = await visit(legacy_auth.http_url, {COOKIE: cookie})
        session_id = chat_session_id(legacy_key(sid_of(legacy_app, cookie)))
        history = await chat_history(chat.http_url, r.cookies["wp_access"], session_id, count)
        assert len(history["messages"]) == count
