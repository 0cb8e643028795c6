"""Roleplay sessions and their turns in PostgreSQL (schema "scenario"). Turn texts are sealed
(workplace_kit.crypto) on the way in and opened on the way out, the outbox events too."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg
from google.protobuf.message import Message
from workplace_kit import outbox
from workplace_kit.crypto import Cipher, SealedColumn
from workplace_kit.topology import DEFAULT, Topology

# What this service stores encrypted.
TURN_TEXT = SealedColumn(table="turns", column="text", key="turn_id", sealed="text_sealed")
SEALED_COLUMNS = (TURN_TEXT,)


@dataclass(frozen=True)
class SessionRow:
    session_id: uuid.UUID
    user_id: str
    scenario_id: str
    language: str
    started_at: datetime
    ended_at: datetime | None
    end_reason: str | None


@dataclass(frozen=True)
class StoredTurn:
    turn_id: uuid.UUID
    turn_index: int
    role: str
    text: str
    move: str
    created_at: datetime


class ConcurrentTurnError(Exception):
    """Another message of the same session was stored first."""


class SessionRepository:
    def __init__(self, pool: asyncpg.Pool, cipher: Cipher, *, topology: Topology = DEFAULT) -> None:
        # Events are written for this topology (its name suffix is the outbox namespace).
        self.topology = topology
        self.pool = pool
        self.cipher = cipher

    async def create(self, session: SessionRow, opening: str, opening_turn_id: uuid.UUID | None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO sessions (session_id, user_id, scenario_id, language, started_at) "
                "VALUES ($1, $2, $3, $4, $5)",
                session.session_id,
                session.user_id,
                session.scenario_id,
                session.language,
                session.started_at,
            )
            if opening and opening_turn_id is not None:
                await conn.execute(
                    "INSERT INTO turns (turn_id, session_id, turn_index, role, text_sealed) "
                    "VALUES ($1, $2, 0, 'model', $3)",
                    opening_turn_id,
                    session.session_id,
                    self.cipher.seal(opening, TURN_TEXT.field(opening_turn_id)),
                )

    async def get(self, session_id: uuid.UUID) -> SessionRow | None:
        row = await self.pool.fetchrow(
            "SELECT session_id, user_id, scenario_id, language, started_at, ended_at, end_reason "
            "FROM sessions WHERE session_id = $1",
            session_id,
        )
        return SessionRow(**dict(row)) if row else None

    async def turns(self, session_id: uuid.UUID) -> list[StoredTurn]:
        rows = await self.pool.fetch(
            "SELECT turn_id, turn_index, role, text_sealed, move, created_at FROM turns "
            "WHERE session_id = $1 ORDER BY turn_index",
            session_id,
        )
        texts = await self.cipher.open_texts([(r["text_sealed"], None, TURN_TEXT.field(r["turn_id"])) for r in rows])
        return [
            StoredTurn(r["turn_id"], r["turn_index"], r["role"], text or "", r["move"], r["created_at"])
            for r, text in zip(rows, texts, strict=True)
        ]

    async def learner_turns(self, session_id: uuid.UUID) -> int:
        return int(
            await self.pool.fetchval("SELECT count(*) FROM turns WHERE session_id = $1 AND role = 'user'", session_id)
        )

    async def store_exchange(
        self,
        session: SessionRow,
        *,
        expected_index: int,
        user_turn_id: uuid.UUID,
        user_text: str,
        move: str,
        reply_turn_id: uuid.UUID,
        reply_text: str,
        engine_id: str,
        events: Sequence[Message],
        end_reason: str | None,
    ) -> None:
        """The learner's turn, the reply, the events and (at the scenario's end) the session's
        end, all or nothing. The session row is locked first, so two messages of one session
        are stored one after the other and the second sees the first."""
        async with self.pool.acquire() as conn, conn.transaction():
            ended = await conn.fetchval(
                "SELECT ended_at IS NOT NULL FROM sessions WHERE session_id = $1 FOR UPDATE", session.session_id
            )
            count = await conn.fetchval("SELECT count(*) FROM turns WHERE session_id = $1", session.session_id)
            if ended or count != expected_index:
                raise ConcurrentTurnError(str(session.session_id))
            seal = self.cipher.seal
            await conn.executemany(
                "INSERT INTO turns (turn_id, session_id, turn_index, role, text_sealed, move, engine_id) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [
                    (
                        user_turn_id,
                        session.session_id,
                        count,
                        "user",
                        seal(user_text, TURN_TEXT.field(user_turn_id)),
                        move,
                        "",
                    ),
                    (
                        reply_turn_id,
                        session.session_id,
                        count + 1,
                        "model",
                        seal(reply_text, TURN_TEXT.field(reply_turn_id)),
                        "",
                        engine_id,
                    ),
                ],
            )
            await conn.execute(
                "UPDATE sessions SET updated_at = now(), "
                "ended_at = CASE WHEN $2::text IS NULL THEN NULL ELSE now() END, end_reason = $2 WHERE session_id = $1",
                session.session_id,
                end_reason,
            )
            for event in events:
                await outbox.enqueue(
                    conn, event, ordering_key=str(session.session_id), cipher=self.cipher, topology=self.topology
                )

    async def end(self, session: SessionRow, reason: str, event: Message) -> tuple[SessionRow, bool]:
        """End a running session with its event; (the session, False) if it had ended already."""
        async with self.pool.acquire() as conn, conn.transaction():
            ended_at = await conn.fetchval(
                "UPDATE sessions SET ended_at = now(), end_reason = $2, updated_at = now() "
                "WHERE session_id = $1 AND ended_at IS NULL RETURNING ended_at",
                session.session_id,
                reason,
            )
            if ended_at is None:
                current = await self.get(session.session_id)
                return (current or session), False
            await outbox.enqueue(
                conn, event, ordering_key=str(session.session_id), cipher=self.cipher, topology=self.topology
            )
        return replace(session, ended_at=ended_at, end_reason=reason), True
