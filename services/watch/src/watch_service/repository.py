"""Watched dialogues and their turns in PostgreSQL (schema "watch"). Turn texts are sealed
(workplace_kit.crypto) on the way in and opened on the way out, the outbox events too (a
turn request or a speech request carries dialogue text).

Every change that decides what happens next runs in one transaction that first locks the
dialogue's row: storing a produced turn (with its speech request and the next turn request),
an intervention, a pause or resume, an end. So a turn request that became stale while its
turn was being produced (a pause, an intervention, a stop) finds out before anything is
stored, and two workers can never store the same turn.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from google.protobuf.message import Message
from workplace_kit import inbox, outbox
from workplace_kit.crypto import Cipher, SealedColumn
from workplace_kit.topology import DEFAULT, Topology

from .conversation import Speaker, TurnView

# What this service stores encrypted.
TURN_TEXT = SealedColumn(table="turns", column="text", key="turn_id", sealed="text_sealed")
SEALED_COLUMNS = (TURN_TEXT,)

_WATCH_COLUMNS = (
    "watch_id, user_id, scenario_id, title, language, speakers, max_turns, pace_seconds, paused, generation, "
    "status, ended_reason, started_at, ended_at, last_viewed_at"
)


@dataclass(frozen=True)
class WatchRow:
    watch_id: uuid.UUID
    user_id: str
    scenario_id: str
    title: str
    language: str
    speakers: tuple[Speaker, ...]
    max_turns: int
    pace_seconds: float
    paused: bool
    generation: int
    status: str  # running, ended
    ended_reason: str | None
    started_at: datetime
    ended_at: datetime | None
    last_viewed_at: datetime

    @property
    def ended(self) -> bool:
        return self.status == "ended"

    def speaker(self, speaker_id: str) -> Speaker:
        return next(s for s in self.speakers if s.id == speaker_id)


@dataclass(frozen=True)
class StoredTurn:
    turn_id: uuid.UUID
    turn_index: int
    speaker_id: str
    text: str
    intervention: bool
    move: str
    addressed_to: str
    engine_id: str
    audio_ready: bool
    created_at: datetime

    def view(self) -> TurnView:
        return TurnView(self.speaker_id, self.text, self.intervention, self.move, self.addressed_to)


@dataclass(frozen=True)
class NewTurn:
    turn_id: uuid.UUID
    speaker_id: str
    text: str
    move: str = ""
    engine_id: str = ""
    intervention: bool = False
    addressed_to: str = ""


# Builds the next turn request from the locked dialogue and its turns (texts left out), or None.
NextRequest = Callable[[WatchRow, list[TurnView]], Message | None]


def _row(record: asyncpg.Record) -> WatchRow:
    values = dict(record)
    raw = values["speakers"]
    speakers = json.loads(raw) if isinstance(raw, str) else raw
    values["speakers"] = tuple(Speaker(**s) for s in speakers)
    values["pace_seconds"] = round(float(values["pace_seconds"]), 3)
    return WatchRow(**values)


class WatchRepository:
    def __init__(self, pool: asyncpg.Pool, cipher: Cipher, *, topology: Topology = DEFAULT) -> None:
        # Events are written for this topology (its name suffix is the outbox namespace).
        self.topology = topology
        self.pool = pool
        self.cipher = cipher

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    # ------------------------------------------------------------------ reading

    async def get(self, watch_id: uuid.UUID) -> WatchRow | None:
        record = await self.pool.fetchrow(f"SELECT {_WATCH_COLUMNS} FROM watches WHERE watch_id = $1", watch_id)
        return _row(record) if record else None

    async def turns(self, watch_id: uuid.UUID, *, after: int = -1) -> list[StoredTurn]:
        rows = await self.pool.fetch(
            "SELECT turn_id, turn_index, speaker_id, text_sealed, intervention, move, addressed_to, engine_id, "
            "audio_ready, created_at FROM turns WHERE watch_id = $1 AND turn_index > $2 ORDER BY turn_index",
            watch_id,
            after,
        )
        texts = await self.cipher.open_texts([(r["text_sealed"], None, TURN_TEXT.field(r["turn_id"])) for r in rows])
        return [
            StoredTurn(
                r["turn_id"],
                r["turn_index"],
                r["speaker_id"],
                text or "",
                r["intervention"],
                r["move"],
                r["addressed_to"],
                r["engine_id"],
                r["audio_ready"],
                r["created_at"],
            )
            for r, text in zip(rows, texts, strict=True)
        ]

    async def turn_count(self, watch_id: uuid.UUID) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM turns WHERE watch_id = $1", watch_id))

    async def audio_ready_among(self, watch_id: uuid.UUID, turn_indexes: Sequence[int]) -> list[tuple[int, uuid.UUID]]:
        """Of these turns, the ones whose audio is ready: (turn index, turn id)."""
        if not turn_indexes:
            return []
        rows = await self.pool.fetch(
            "SELECT turn_index, turn_id FROM turns WHERE watch_id = $1 AND turn_index = ANY($2::int[]) "
            "AND audio_ready ORDER BY turn_index",
            watch_id,
            list(turn_indexes),
        )
        return [(r["turn_index"], r["turn_id"]) for r in rows]

    # ------------------------------------------------------------------ writing

    async def create(self, watch: WatchRow, first_request: Message) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO watches (watch_id, user_id, scenario_id, title, language, speakers, max_turns, "
                "pace_seconds, started_at, last_viewed_at) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $9)",
                watch.watch_id,
                watch.user_id,
                watch.scenario_id,
                watch.title,
                watch.language,
                json.dumps([s.__dict__ for s in watch.speakers], ensure_ascii=False),
                watch.max_turns,
                watch.pace_seconds,
                watch.started_at,
            )
            await self._enqueue(conn, first_request, watch.watch_id)

    async def touch(self, watch_id: uuid.UUID) -> None:
        """Someone is watching: the worker keeps producing turns."""
        await self.pool.execute(
            "UPDATE watches SET last_viewed_at = now() WHERE watch_id = $1 AND status = 'running'", watch_id
        )

    async def _enqueue(self, conn: asyncpg.Connection, event: Message, watch_id: uuid.UUID) -> None:
        await outbox.enqueue(conn, event, ordering_key=str(watch_id), cipher=self.cipher, topology=self.topology)

    async def _locked(self, conn: asyncpg.Connection, watch_id: uuid.UUID) -> WatchRow | None:
        record = await conn.fetchrow(f"SELECT {_WATCH_COLUMNS} FROM watches WHERE watch_id = $1 FOR UPDATE", watch_id)
        return _row(record) if record else None

    @staticmethod
    async def _shapes(conn: asyncpg.Connection, watch_id: uuid.UUID) -> list[TurnView]:
        rows = await conn.fetch(
            "SELECT speaker_id, intervention, move, addressed_to FROM turns WHERE watch_id = $1 ORDER BY turn_index",
            watch_id,
        )
        return [TurnView(r["speaker_id"], "", r["intervention"], r["move"], r["addressed_to"]) for r in rows]

    async def _insert_turn(self, conn: asyncpg.Connection, watch_id: uuid.UUID, index: int, turn: NewTurn) -> None:
        await conn.execute(
            "INSERT INTO turns (turn_id, watch_id, turn_index, speaker_id, text_sealed, intervention, move, "
            "addressed_to, engine_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            turn.turn_id,
            watch_id,
            index,
            turn.speaker_id,
            self.cipher.seal(turn.text, TURN_TEXT.field(turn.turn_id)),
            turn.intervention,
            turn.move,
            turn.addressed_to,
            turn.engine_id,
        )

    async def store_turn(
        self,
        watch_id: uuid.UUID,
        *,
        turn_index: int,
        generation: int,
        turn: NewTurn,
        events: Sequence[Message],
        end_reason: str | None,
        next_request: NextRequest | None,
        learner_move: tuple[int, str] | None = None,
    ) -> bool:
        """Store a produced turn, its events, and either the dialogue's end or the next turn
        request, all or nothing. False (nothing stored): the request is stale (the dialogue
        ended, was paused, started a new generation, or has this turn already)."""
        async with self.pool.acquire() as conn, conn.transaction():
            watch = await self._locked(conn, watch_id)
            if watch is None or watch.ended or watch.paused or watch.generation != generation:
                return False
            shapes = await self._shapes(conn, watch_id)
            if len(shapes) != turn_index:
                return False
            if learner_move is not None:
                index, move = learner_move
                await conn.execute(
                    "UPDATE turns SET move = $3 WHERE watch_id = $1 AND turn_index = $2 AND intervention AND move = ''",
                    watch_id,
                    index,
                    move,
                )
            await self._insert_turn(conn, watch_id, turn_index, turn)
            for event in events:
                await self._enqueue(conn, event, watch_id)
            if end_reason is not None:
                await conn.execute(
                    "UPDATE watches SET status = 'ended', ended_reason = $2, ended_at = now() WHERE watch_id = $1",
                    watch_id,
                    end_reason,
                )
            elif next_request is not None:
                shape = TurnView(turn.speaker_id, "", turn.intervention, turn.move, turn.addressed_to)
                request = next_request(watch, [*shapes, shape])
                if request is not None:
                    await self._enqueue(conn, request, watch_id)
        return True

    async def intervene(
        self, watch_id: uuid.UUID, turn: NewTurn, make_request: Callable[[WatchRow, int, int], Message]
    ) -> int | None:
        """Store the learner's turn, start a new generation (outstanding requests are dropped),
        resume a paused dialogue and request the answer at once (make_request(watch, turn index
        to answer at, new generation)). The learner's turn index; None if the dialogue ended."""
        async with self.pool.acquire() as conn, conn.transaction():
            watch = await self._locked(conn, watch_id)
            if watch is None or watch.ended:
                return None
            index = int(await conn.fetchval("SELECT count(*) FROM turns WHERE watch_id = $1", watch_id))
            await self._insert_turn(conn, watch_id, index, turn)
            generation = await conn.fetchval(
                "UPDATE watches SET generation = generation + 1, paused = false, last_viewed_at = now() "
                "WHERE watch_id = $1 "
                "RETURNING generation",
                watch_id,
            )
            await self._enqueue(conn, make_request(watch, index + 1, generation), watch_id)
        return index

    async def control(
        self,
        watch_id: uuid.UUID,
        *,
        paused: bool | None,
        pace_seconds: float | None,
        make_request: Callable[[WatchRow, list[TurnView]], Message],
    ) -> tuple[WatchRow | None, bool]:
        """Pause (new generation: outstanding requests are dropped), resume (new generation and
        a request for the next turn) or change the pace (from the next request on). (the
        dialogue after it, whether anything changed); an ended dialogue is left as it is."""
        async with self.pool.acquire() as conn, conn.transaction():
            watch = await self._locked(conn, watch_id)
            if watch is None or watch.ended:
                return watch, False
            pausing = paused is not None and paused != watch.paused
            pacing = pace_seconds is not None and abs(pace_seconds - watch.pace_seconds) > 1e-6
            if not pausing and not pacing:
                return watch, False
            record = await conn.fetchrow(
                "UPDATE watches SET paused = $2, pace_seconds = $3, last_viewed_at = now(), "
                "generation = generation + CASE WHEN $4 THEN 1 ELSE 0 END "
                f"WHERE watch_id = $1 RETURNING {_WATCH_COLUMNS}",
                watch_id,
                paused if pausing else watch.paused,
                pace_seconds if pacing else watch.pace_seconds,
                pausing,
            )
            updated = _row(record)
            if pausing and not updated.paused:
                await self._enqueue(conn, make_request(updated, await self._shapes(conn, watch_id)), watch_id)
        return updated, True

    async def end(self, watch_id: uuid.UUID, reason: str, *, generation: int | None = None) -> bool:
        """End a running dialogue (only in that generation, when given); False if it had ended
        (or moved on to another generation)."""
        result = await self.pool.execute(
            "UPDATE watches SET status = 'ended', ended_reason = $2, ended_at = now() "
            "WHERE watch_id = $1 AND status = 'running' AND ($3::int IS NULL OR generation = $3)",
            watch_id,
            reason,
            generation,
        )
        return result.split()[-1] == "1"

    async def mark_audio_ready(
        self, turn_id: uuid.UUID, *, watch_id: uuid.UUID, consumer: str, event_id: str
    ) -> tuple[uuid.UUID, int] | None:
        """Record that a turn's audio is ready, with the event in the inbox: (watch id, turn
        index) when this changed the turn; None when it was known already, or is no turn of
        ours (then nothing is recorded: another service's speech)."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE turns SET audio_ready = true WHERE turn_id = $1 AND watch_id = $2 AND NOT audio_ready "
                "RETURNING watch_id, turn_index",
                turn_id,
                watch_id,
            )
            if row is None or not await inbox.record(conn, consumer, event_id):
                return None
        return row["watch_id"], row["turn_index"]

    async def already_handled(self, consumer: str, event_id: str) -> bool:
        return await inbox.already_handled(self.pool, consumer, event_id)
