"""A service's own database role, as production gives it (Cloud SQL IAM users): the migrations
Job (`python -m workplace_kit.db migrate ... --grant-to ROLE`) applies the schema as the DDL role
and grants the service's role read and write on its rows; the service then runs as that role
with no right to change any schema, its migrations' bookkeeping or another service's data.

Real PostgreSQL; the role is named as Cloud SQL names an IAM user (`<sa>@<project>.iam`)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import pytest


def _as_role(database_url: str, role: str) -> str:
    parts = urlsplit(database_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, f"{quote(role, safe='')}@{host}", parts.path, parts.query, ""))


def _migrate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workplace_kit.db", "migrate", "--schema", "chat", "--package", "chat_service", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ,
    )


@pytest.fixture
async def service_role():
    admin_url = os.environ["WP_DATABASE_URL"]
    role = f"wp-test-chat-{uuid.uuid4().hex[:8]}@workplace-test.iam"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        yield role
    finally:
        # What the grants left (privileges, default privileges) goes with the role.
        await admin.execute(f'DROP OWNED BY "{role}"')
        await admin.execute(f'DROP ROLE "{role}"')
        await admin.close()


async def test_a_service_runs_as_its_own_role_that_may_write_its_rows_and_change_nothing_else(service_role):
    from chat_service.app import build as build_chat
    from chat_service.repository import Session
    from chat_service.settings import ChatSettings
    from support.services import running_service
    from workplace.events.v1 import events_pb2

    migrated = _migrate("--grant-to", service_role)
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    assert f"read and write granted to {service_role}" in migrated.stdout

    role_url = _as_role(os.environ["WP_DATABASE_URL"], service_role)
    settings = ChatSettings(
        database_url=role_url,
        migrate_on_start=False,  # as in the cluster: it only checks that nothing is pending
        outbox_relay=False,
        ai_provider="gemini",
        gemini_api_keys=["unused"],  # never called: no offline engine to load for this test
    )
    async with running_service(build_chat, settings) as chat:
        repository = chat.app.state.service.repository
        session = Session(uuid.uuid4(), "role-test-learner", "colleague", "small-talk", "ja")
        event = events_pb2.ConversationTurn(event_id=uuid.uuid4().hex, session_id=str(session.session_id))
        await repository.store_exchange(
            session,
            is_new=True,
            expected_index=0,
            user_turn_id=uuid.uuid4(),
            user_text="おはようございます",
            reply_turn_id=uuid.uuid4(),
            reply_text="おはようございます。",
            engine_id="test",
            event=event,
        )
        assert [m.text for m in await repository.history(session.session_id)] == [
            "おはようございます",
            "おはようございます。",
        ]

    # Another service's schema, made here so the test does not depend on which services ran.
    other = f"other_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(os.environ["WP_DATABASE_URL"])
    await admin.execute(f"CREATE SCHEMA {other}; CREATE TABLE {other}.private (id int)")
    # A table a later migration adds (as the same migrations role) is the service's to write too.
    later = f"chat.later_{uuid.uuid4().hex[:8]}"
    await admin.execute(f"CREATE TABLE {later} (id serial PRIMARY KEY, note text)")
    connection = await asyncpg.connect(role_url, server_settings={"search_path": "chat,public"})
    try:
        assert await connection.fetchval("SELECT count(*) FROM outbox WHERE payload IS NOT NULL") >= 1
        assert await connection.fetchval(f"INSERT INTO {later} (note) VALUES ('x') RETURNING id") >= 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("CREATE TABLE chat.sneaky (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("ALTER TABLE chat.outbox ADD COLUMN sneaky int")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute("DELETE FROM chat._yoyo_migration")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.fetch(f"SELECT * FROM {other}.private")
    finally:
        await connection.close()
        await admin.execute(f"DROP SCHEMA {other} CASCADE; DROP TABLE {later}")
        await admin.close()


async def test_granting_to_a_role_that_does_not_exist_fails_naming_it():
    missing = f"nobody-{uuid.uuid4().hex[:8]}@workplace-test.iam"
    migrated = _migrate("--grant-to", missing)
    assert migrated.returncode != 0
    assert missing in migrated.stderr and "Traceback" not in migrated.stderr
