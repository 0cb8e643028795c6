"""Chat sessions and messages in PostgreSQL (schema "chat")."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from google.protobuf.message import Message
from workplace_kit import inbox, outbox
from workplace_kit.ai.types import Turn
from workplace_kit.crypto import Cipher, SealedColumn
from workplace_kit.topology import DEFAULT, Topology

# What this service stores encrypted; `python -m chat_service reencrypt` rewrites it.
MESSAGE_TEXT = SealedColumn(table="messages", column="text", key="turn_id", sealed="text_sealed", plain="text")
SEALED_COLUMNS = (MESSAGE_TEXT,)


@dataclass(frozen=True)
class Session:
    session_id: uuid.UUID
    user_id: str
    partner: str
    situation: str
    language: str | None
    created_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True)
class StoredMessage:
    turn_id: uuid.UUID
    turn_index: int
    role: str
    text: str
    engine_id: str
    created_at: datetime


@dataclass(frozen=True)
class ImportedMessage:
    turn_id: uuid.UUID
    role: str
    text: str
    engine_id: str
    created_at: datetime | None


class ConcurrentTurnError(Exception):
    """Another reply in the same session was stored first."""


class SessionEndedError(Exception):
    """The session was ended before this reply could be stored."""


class ChatRepository:
    """Message texts are sealed here, on the way in and out (the events in the outbox too)."""

    def __init__(self, pool: asyncpg.Pool, cipher: Cipher, *, topology: Topology = DEFAULT):
        # Events are written for this topology (its name suffix is the outbox namespace).
        self.topology = topology
        self.pool = pool
        self.cipher = cipher

    async def ping(self) -> None:
        """Raises if the database cannot serve now (checked before a reply starts streaming)."""
        await self.pool.fetchval("SELECT 1")

    async def get_session(self, session_id: uuid.UUID) -> Session | None:
        row = await self.pool.fetchrow(
            "SELECT session_id, user_id, partner, situation, language, created_at, ended_at "
            "FROM sessions WHERE session_id = $1",
            session_id,
        )
        return Session(**dict(row)) if row else None

    async def recent_turns(self, session_id: uuid.UUID, limit: int) -> tuple[int, list[Turn]]:
        """(number of messages so far, the last `limit` of them oldest first), in one query:
        the window count is taken over every message of the session, before the LIMIT."""
        rows = await self.pool.fetch(
            "SELECT turn_id, role, text, text_sealed, total FROM (SELECT turn_id, role, text, text_sealed, "
            "turn_index, count(*) OVER () AS total "
            "FROM messages WHERE session_id = $1 ORDER BY turn_index DESC LIMIT $2) t ORDER BY turn_index",
            session_id,
            max(limit, 1),
        )
        count = rows[0]["total"] if rows else 0
        texts = await self._texts(rows)
        turns = [Turn(role=r["role"], text=text) for r, text in zip(rows, texts, strict=True)]
        return count, turns[len(turns) - limit :] if limit else []

    async def history(self, session_id: uuid.UUID) -> list[StoredMessage]:
        rows = await self.pool.fetch(
            "SELECT turn_id, turn_index, role, text, text_sealed, engine_id, created_at FROM messages "
            "WHERE session_id = $1 ORDER BY turn_index",
            session_id,
        )
        texts = await self._texts(rows)
        return [
            StoredMessage(r["turn_id"], r["turn_index"], r["role"], text, r["engine_id"], r["created_at"])
            for r, text in zip(rows, texts, strict=True)
        ]

    async def _texts(self, rows: list[asyncpg.Record]) -> list[str]:
        opened = await self.cipher.open_texts(
            [(r["text_sealed"], r["text"], MESSAGE_TEXT.field(r["turn_id"])) for r in rows]
        )
        return [text or "" for text in opened]

    async def store_exchange(
        self,
        session: Session,
        *,
        is_new: bool,
        expected_index: int,
        user_turn_id: uuid.UUID,
        user_text: str,
        reply_turn_id: uuid.UUID,
        reply_text: str,
        engine_id: str,
        event: Message,
    ) -> None:
        """Store the learner's turn, the reply and the event, all or nothing. Storing the same
        exchange again (a retry after the commit's answer was lost) does nothing.

        Five statements for a new session, six for a later turn (it was eight for both): the
        session's row is created, or locked by the update of its time, which serialises two
        turns of one session; the count and the retry check are one query."""
        async with self.pool.acquire() as conn, conn.transaction():
            count = None
            if is_new:
                created = await conn.fetchval(
                    "INSERT INTO sessions (session_id, user_id, partner, situation, language) "
                    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id) DO NOTHING RETURNING true",
                    session.session_id,
                    session.user_id,
                    session.partner,
                    session.situation,
                    session.language,
                )
                if created:
                    count = 0  # a session made just now has no messages and no earlier try
            if count is None:
                # A later turn, or a retry of a first one whose commit did happen.
                ended = await conn.fetchval(
                    "UPDATE sessions SET updated_at = now() WHERE session_id = $1 RETURNING ended_at IS NOT NULL",
                    session.session_id,
                )
                if ended:
                    raise SessionEndedError(str(session.session_id))
                count, stored = await conn.fetchrow(
                    "SELECT count(*), coalesce(bool_or(turn_id = $2), false) FROM messages WHERE session_id = $1",
                    session.session_id,
                    user_turn_id,
                )
                if stored:
                    return
            if count != expected_index:
                raise ConcurrentTurnError(str(session.session_id))
            seal = self.cipher.seal
            await conn.executemany(
                "INSERT INTO messages (turn_id, session_id, turn_index, role, text_sealed, engine_id) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (
                        user_turn_id,
                        session.session_id,
                        count,
                        "user",
                        seal(user_text, MESSAGE_TEXT.field(user_turn_id)),
                        "",
                    ),
                    (
                        reply_turn_id,
                        session.session_id,
                        count + 1,
                        "model",
                        seal(reply_text, MESSAGE_TEXT.field(reply_turn_id)),
                        engine_id,
                    ),
                ],
            )
            await outbox.enqueue(
                conn, event, ordering_key=str(session.session_id), cipher=self.cipher, topology=self.topology
            )

    async def import_history(
        self,
        session: Session,
        messages: list[ImportedMessage],
        *,
        consumer: str,
        event_id: str,
        updated_at: datetime | None,
    ) -> bool:
        """A whole session from elsewhere (the legacy app) with the event that brought it, all
        or nothing; False if that event was handled before (nothing is written again)."""
        seal = self.cipher.seal
        async with self.pool.acquire() as conn, conn.transaction():
            if not await inbox.record(conn, consumer, event_id):
                return False
            await conn.execute(
                "INSERT INTO sessions (session_id, user_id, partner, situation, language, created_at, updated_at) "
                "VALUES ($1, $2, $3, $4, $5, coalesce($6, now()), coalesce($7, now())) "
                "ON CONFLICT (session_id) DO NOTHING",
                session.session_id,
                session.user_id,
                session.partner,
                session.situation,
                session.language,
                messages[0].created_at if messages else None,
                updated_at,
            )
            await conn.executemany(
                "INSERT INTO messages (turn_id, session_id, turn_index, role, text_sealed, engine_id, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now())) ON CONFLICT (turn_id) DO NOTHING",
                [
                    (
                        m.turn_id,
                        session.session_id,
                        index,
                        m.role,
                        seal(m.text, MESSAGE_TEXT.field(m.turn_id)),
                        m.engine_id,
                        m.created_at,
                    )
                    for index, m in enumerate(messages)
                ],
            )
            return True

    async def end(self, session: Session, event_of: Callable[[int, datetime], Message]) -> tuple[int, datetime, bool]:
        """End the session with its event (built from the learner-turn count and the end time),
        in one transaction: (learner turns, ended at, False) if it had ended already."""
        async with self.pool.acquire() as conn, conn.transaction():
            ended_at = await conn.fetchval(
                "UPDATE sessions SET ended_at = now(), updated_at = now() "
                "WHERE session_id = $1 AND ended_at IS NULL RETURNING ended_at",
                session.session_id,
            )
            turns = await conn.fetchval(
                "SELECT count(*) FROM messages WHERE session_id = $1 AND role = 'user'", session.session_id
            )
            if ended_at is None:
                before = await conn.fetchval("SELECT ended_at FROM sessions WHERE session_id = $1", session.session_id)
                return int(turns), before, False
            await outbox.enqueue(
                conn,
                event_of(int(turns), ended_at),
                ordering_key=str(session.session_id),
                cipher=self.cipher,
                topology=self.topology,
            )
            return int(turns), ended_at, True
