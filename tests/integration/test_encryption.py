"""Stored personal data is encrypted: chat, feedback and auth in-process on a database of
their own (created for each test, dropped after), the real PostgreSQL and Pub/Sub emulator.

The raw rows are read with asyncpg, bypassing the services: no column of any table holds
the learner's words, the email or the display name; the APIs still return them. Rotation:
rows written under the first key and rows from before encryption (plaintext) are rewritten
by the services' reencrypt commands under a new key while the services run; after that the
first key is dropped from the configuration and everything still reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from argon2 import PasswordHasher
from auth_service.app import build as build_auth
from auth_service.settings import AuthSettings
from chat_service.app import build as build_chat
from chat_service.settings import ChatSettings
from feedback_service.app import build as build_feedback
from feedback_service.settings import FeedbackSettings
from httpx_sse import aconnect_sse
from pydantic import SecretStr
from support.services import RunningService, running_service
from workplace_kit.crypto import key_id_of, new_local_key

V1 = new_local_key("v1")
V2 = new_local_key("v2")
SCHEMAS = ("chat", "feedback", "auth")
PASSWORD = "correct horse battery staple"


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A database of this test's own: its keys and rows touch nobody else's."""
    base = os.environ["WP_DATABASE_URL"]
    name = f"wp_enc_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(base)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(base)
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@dataclass
class Platform:
    auth: RunningService
    chat: RunningService
    feedback: RunningService


@contextlib.asynccontextmanager
async def platform(database_url: str, keys: str, suffix: str) -> AsyncIterator[Platform]:
    common = {
        "database_url": database_url,
        "encryption_keys": SecretStr(keys),
        "pubsub_name_suffix": suffix,
        "ai_provider": "offline",
    }
    async with running_service(build_auth, AuthSettings(auth_cookie_secure=False, **common)) as auth:
        jwks = f"{auth.http_url}/.well-known/jwks.json"
        async with (
            running_service(build_feedback, FeedbackSettings(auth_jwks_url=jwks, **common)) as feedback,
            running_service(build_chat, ChatSettings(auth_jwks_url=jwks, **common)) as chat,
        ):
            yield Platform(auth, chat, feedback)


async def post(url: str, body: dict, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(url, json=body, headers=headers)


async def get(url: str, token: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(url, headers={"Authorization": f"Bearer {token}"})


async def register(p: Platform, email: str, name: str) -> dict:
    r = await post(
        f"{p.auth.http_url}/api/v2/auth/register", {"email": email, "password": PASSWORD, "display_name": name}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def login(p: Platform, email: str) -> dict:
    r = await post(f"{p.auth.http_url}/api/v2/auth/login", {"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()


async def chat_turn(p: Platform, token: str, message: str, session_id: str | None = None) -> dict:
    body = {"message": message} | ({"session_id": session_id} if session_id else {})
    async with httpx.AsyncClient(timeout=60) as client:
        async with aconnect_sse(
            client, "POST", p.chat.http_url + "/api/v2/chat", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as source:
            assert source.response.status_code == 200
            events = [(e.event, json.loads(e.data)) async for e in source.aiter_sse()]
    assert events[0][0] == "start" and events[-1][0] == "done", events
    return events[0][1]


async def history(p: Platform, token: str, session_id: str) -> list[str]:
    r = await get(f"{p.chat.http_url}/api/v2/chat/sessions/{session_id}", token)
    assert r.status_code == 200, r.text
    return [m["text"] for m in r.json()["messages"]]


async def analyses(p: Platform, token: str, session_id: str, count: int) -> list[dict]:
    url = f"{p.feedback.http_url}/api/v2/feedback/sessions/{session_id}/turns"
    for _ in range(150):
        r = await get(url, token)
        if r.status_code == 200 and len(r.json()) >= count:
            return sorted(r.json(), key=lambda a: a["turn_index"])
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {count} analyses for {session_id}: {r.status_code} {r.text}")


async def me(p: Platform, token: str) -> dict:
    r = await get(f"{p.auth.http_url}/api/v2/auth/me", token)
    assert r.status_code == 200, r.text
    return r.json()


async def stored_values(database_url: str) -> list[tuple[str, object]]:
    """Every text, bytea and json value of every table of the three schemas, as stored."""
    conn = await asyncpg.connect(database_url)
    try:
        columns = await conn.fetch(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = ANY($1) AND data_type IN ('text', 'bytea', 'jsonb', 'json', 'character varying')",
            list(SCHEMAS),
        )
        assert len(columns) > 20
        values = []
        for c in columns:
            where = f'"{c["table_schema"]}"."{c["table_name"]}"."{c["column_name"]}"'
            rows = await conn.fetch(
                f'SELECT "{c["column_name"]}"::text AS t, "{c["column_name"]}" AS v '
                f'FROM "{c["table_schema"]}"."{c["table_name"]}"'
            )
            values += [(where, r["v"]) for r in rows if r["v"] is not None]
        return values
    finally:
        await conn.close()


def plaintext_found(values: list[tuple[str, object]], *secrets: str) -> list[str]:
    found = []
    for where, value in values:
        raw = bytes(value) if isinstance(value, (bytes, bytearray, memoryview)) else str(value).encode()
        found += [f"{secret!r} in {where}" for secret in secrets if secret.encode() in raw]
    return found


async def test_stored_rows_hold_no_plaintext_while_the_apis_return_it(database_url, run_id):
    phrase = f"来週の面接で転職のことを話すつもりです {uuid.uuid4().hex[:6]}"
    email = f"secret.{uuid.uuid4().hex[:8]}@example.com"
    name = f"Hidden Name {uuid.uuid4().hex[:6]}"
    async with platform(database_url, V1, f".enc{run_id}a") as p:
        account = await register(p, email, name)
        token = account["access_token"]
        start = await chat_turn(p, token, phrase)
        session_id = start["session_id"]
        assert (await history(p, token, session_id))[0] == phrase
        (analysis,) = await analyses(p, token, session_id, 1)
        assert analysis["learner_text"] == phrase and analysis["summary"]

        # Sign-in finds the account by the blind index of its address.
        again = await login(p, email.upper())
        assert again["user"]["id"] == account["user"]["id"]
        assert (await me(p, again["access_token"]))["display_name"] == name
        r = await post(f"{p.auth.http_url}/api/v2/auth/register", {"email": email, "password": PASSWORD})
        assert r.status_code == 409, r.text

        values = await stored_values(database_url)
        assert plaintext_found(values, phrase, email, name, analysis["summary"], "BEGIN PRIVATE KEY") == []
        # ...and it is there, sealed: the message, the analysis, the outbox events, the users' columns.
        conn = await asyncpg.connect(database_url)
        try:
            for sql in (
                "SELECT count(*) FROM chat.messages WHERE text IS NULL AND text_sealed IS NOT NULL",
                "SELECT count(*) FROM feedback.turn_analyses WHERE learner_text_sealed IS NOT NULL",
                "SELECT count(*) FROM chat.outbox WHERE sealed",
                "SELECT count(*) FROM auth.users WHERE email_index IS NOT NULL AND email IS NULL",
                "SELECT count(*) FROM auth.signing_keys WHERE private_pem_sealed IS NOT NULL AND private_pem IS NULL",
            ):
                assert await conn.fetchval(sql) >= 1, sql
        finally:
            await conn.close()


def reencrypt(service: str, database_url: str, keys: str) -> str:
    env = {**os.environ, "WP_DATABASE_URL": database_url, "WP_ENCRYPTION_KEYS": keys}
    result = subprocess.run(
        [sys.executable, "-m", f"{service}_service", "reencrypt"], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


async def test_rotation_reencrypts_every_row_and_the_old_key_can_go(database_url, run_id):
    phrase = f"実は部長との関係で悩んでいます {uuid.uuid4().hex[:6]}"
    legacy_phrase = f"暗号化の前に保存された言葉 {uuid.uuid4().hex[:6]}"
    email = f"rotate.{uuid.uuid4().hex[:8]}@example.com"
    legacy_email = f"legacy.{uuid.uuid4().hex[:8]}@example.com"
    legacy_name = f"Legacy Name {uuid.uuid4().hex[:6]}"
    suffix = f".enc{run_id}b"

    # 1. Rows under the first key.
    async with platform(database_url, V1, suffix) as p:
        token = (await register(p, email, "Rotating Learner"))["access_token"]
        start = await chat_turn(p, token, phrase)
        session_id, user_id = start["session_id"], (await me(p, token))["id"]
        await analyses(p, token, session_id, 1)

    # 2. Rows as they were before encryption (plaintext), as an upgrade finds them.
    conn = await asyncpg.connect(database_url)
    try:
        legacy_turn = uuid.uuid4()
        await conn.execute(
            "INSERT INTO chat.messages (turn_id, session_id, turn_index, role, text) VALUES ($1, $2, 2, 'user', $3)",
            legacy_turn,
            uuid.UUID(session_id),
            legacy_phrase,
        )
        await conn.execute(
            "INSERT INTO feedback.turn_analyses (turn_id, session_id, user_id, source_service, turn_index, "
            "learner_text, language, dominant_emotion, polarity, engine, summary) "
            "VALUES ($1, $2, $3, 'chat', 2, $4, 'ja', 'joy', 0.5, 'offline', $5)",
            legacy_turn,
            uuid.UUID(session_id),
            user_id,
            legacy_phrase,
            "legacy summary " + legacy_phrase,
        )
        await conn.execute(
            "INSERT INTO auth.users (user_id, email, password_hash, display_name, guest) "
            "VALUES ($1, $2, $3, $4, false)",
            uuid.uuid4(),
            legacy_email,
            PasswordHasher().hash(PASSWORD),
            legacy_name,
        )
    finally:
        await conn.close()

    both = f"{V2},{V1}"
    async with platform(database_url, both, suffix) as p:
        # Plaintext rows read and sign in as before; the legacy address stays taken.
        assert (await history(p, token, session_id))[2] == legacy_phrase
        legacy = await login(p, legacy_email)
        assert (await me(p, legacy["access_token"]))["display_name"] == legacy_name
        r = await post(f"{p.auth.http_url}/api/v2/auth/register", {"email": legacy_email, "password": PASSWORD})
        assert r.status_code == 409, r.text
        # New rows under the new key while the old ones are still under the first.
        later = f"新しい鍵で保存される言葉 {uuid.uuid4().hex[:6]}"
        await chat_turn(p, token, later, session_id)

        # 3. Rotation while the services run; a second run finds nothing left to do.
        out = {s: reencrypt(s, database_url, both) for s in ("chat", "feedback", "auth")}
        assert "messages.text: 3 rows" in out["chat"], out["chat"]  # two under v1, one plaintext
        assert "turn_analyses.learner_text: 2 rows" in out["feedback"], out["feedback"]
        assert "users.email: 2 rows" in out["auth"] and "signing_keys.private_pem: 1 rows" in out["auth"], out["auth"]
        again = reencrypt("chat", database_url, both)
        assert "messages.text: 0 rows" in again and "wrapped again by the current key-encryption key: 0" in again

    # Every value is sealed under the current DEK of its service, every plaintext column is empty.
    conn = await asyncpg.connect(database_url)
    try:
        for schema, table, sealed, plain in (
            ("chat", "messages", "text_sealed", "text"),
            ("feedback", "turn_analyses", "learner_text_sealed", "learner_text"),
            ("feedback", "turn_analyses", "summary_sealed", "summary"),
            ("auth", "users", "email_sealed", "email"),
            ("auth", "users", "display_name_sealed", "display_name"),
            ("auth", "signing_keys", "private_pem_sealed", "private_pem"),
        ):
            current = await conn.fetchval(f"SELECT max(dek_id) FROM {schema}.data_keys")
            rows = await conn.fetch(f"SELECT {sealed} AS s, {plain} AS p FROM {schema}.{table}")
            assert rows and all(r["p"] is None for r in rows), (table, plain)
            assert {key_id_of(r["s"]) for r in rows if r["s"] is not None} == {current}, (table, sealed)
            kek_ids = await conn.fetch(f"SELECT DISTINCT kek_id FROM {schema}.data_keys")
            assert [r["kek_id"] for r in kek_ids] == ["local:v2"], schema
    finally:
        await conn.close()
    values = await stored_values(database_url)
    assert plaintext_found(values, phrase, legacy_phrase, later, email, legacy_email, legacy_name) == []

    # 4. The first key leaves the configuration: everything still reads, sign-in still finds.
    async with platform(database_url, V2, suffix) as p:
        token = (await login(p, email))["access_token"]
        texts = await history(p, token, session_id)
        assert texts[0] == phrase and texts[2] == legacy_phrase and texts[3] == later  # 2: no reply
        found = await analyses(p, token, session_id, 3)
        by_text = {a["learner_text"]: a for a in found}
        assert by_text.keys() == {phrase, legacy_phrase, later}
        assert by_text[legacy_phrase]["summary"] == "legacy summary " + legacy_phrase
        legacy = await login(p, legacy_email)
        assert (await me(p, legacy["access_token"]))["display_name"] == legacy_name
        # A new guest gets a token: the signing key, re-encrypted, still signs.
        r = await post(f"{p.auth.http_url}/api/v2/auth/guest", {"display_name": "after rotation"})
        assert r.status_code == 201, r.text
