"""Turn analyses in PostgreSQL (schema "feedback")."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from google.protobuf.message import Message
from workplace_kit import inbox, outbox

from .emotion.types import EmotionResult


@dataclass(frozen=True)
class TurnAnalysis:
    turn_id: uuid.UUID
    session_id: uuid.UUID
    user_id: str
    source_service: str
    turn_index: int
    learner_text: str
    result: EmotionResult
    analysed_at: datetime


_COLUMNS = (
    "turn_id, session_id, user_id, source_service, turn_index, learner_text, language, "
    "dominant_emotion, scores, polarity, engine, summary, analysed_at"
)


def _from_row(row: asyncpg.Record) -> TurnAnalysis:
    scores = row["scores"]
    return TurnAnalysis(
        turn_id=row["turn_id"],
        session_id=row["session_id"],
        user_id=row["user_id"],
        source_service=row["source_service"],
        turn_index=row["turn_index"],
        learner_text=row["learner_text"],
        result=EmotionResult(
            language=row["language"],
            dominant=row["dominant_emotion"],
            scores=json.loads(scores) if isinstance(scores, str) else dict(scores),
            polarity=row["polarity"],
            engine=row["engine"],
            summary=row["summary"],
        ),
        analysed_at=row["analysed_at"],
    )


class FeedbackRepository:
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def exists(self, turn_id: uuid.UUID) -> bool:
        return bool(await self.pool.fetchval("SELECT 1 FROM turn_analyses WHERE turn_id = $1", turn_id))

    async def already_handled(self, consumer: str, event_id: str) -> bool:
        return await inbox.already_handled(self.pool, consumer, event_id)

    async def record_handled(self, consumer: str, event_id: str) -> None:
        async with self.pool.acquire() as conn:
            await inbox.record(conn, consumer, event_id)

    async def store(
        self, analysis: TurnAnalysis, *, consumer: str, event_id: str, event: Message, ordering_key: str
    ) -> TurnAnalysis | None:
        """Record the event as handled, store the analysis and its feedback.ready event, all in
        one transaction; None if the event or the turn was handled already."""
        r = analysis.result
        async with self.pool.acquire() as conn, conn.transaction():
            if not await inbox.record(conn, consumer, event_id):
                return None
            row = await conn.fetchrow(
                f"INSERT INTO turn_analyses ({_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, now()) "
                f"ON CONFLICT (turn_id) DO NOTHING RETURNING {_COLUMNS}",
                analysis.turn_id,
                analysis.session_id,
                analysis.user_id,
                analysis.source_service,
                analysis.turn_index,
                analysis.learner_text,
                r.language,
                r.dominant,
                json.dumps(r.scores),
                r.polarity,
                r.engine,
                r.summary,
            )
            if row is None:
                return None
            await outbox.enqueue(conn, event, ordering_key=ordering_key)
            return _from_row(row)

    async def get(self, turn_id: uuid.UUID) -> TurnAnalysis | None:
        row = await self.pool.fetchrow(f"SELECT {_COLUMNS} FROM turn_analyses WHERE turn_id = $1", turn_id)
        return _from_row(row) if row else None

    async def list_for_session(self, session_id: uuid.UUID) -> list[TurnAnalysis]:
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM turn_analyses WHERE session_id = $1 ORDER BY turn_index, analysed_at",
            session_id,
        )
        return [_from_row(r) for r in rows]
