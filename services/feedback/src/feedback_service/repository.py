"""Turn analyses in PostgreSQL (schema "feedback")."""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from google.protobuf.message import Message
from workplace_kit import inbox, outbox
from workplace_kit.crypto import Cipher, SealedColumn
from workplace_kit.topology import DEFAULT, Topology

from .coaching.card import FeedbackCard
from .emotion.types import EmotionResult

# What this service stores encrypted; `python -m feedback_service reencrypt` rewrites it.
LEARNER_TEXT = SealedColumn(
    table="turn_analyses", column="learner_text", key="turn_id", sealed="learner_text_sealed", plain="learner_text"
)
SUMMARY = SealedColumn(table="turn_analyses", column="summary", key="turn_id", sealed="summary_sealed", plain="summary")
# The feedback card as JSON (it quotes the learner's words in its better phrasing).
CARD = SealedColumn(table="turn_analyses", column="card", key="turn_id", sealed="card_sealed")
# The coaching report as JSON (it quotes the learner's turns as evidence).
REPORT = SealedColumn(table="session_reports", column="report", key="session_id", sealed="report_sealed")
SEALED_COLUMNS = (LEARNER_TEXT, SUMMARY, CARD, REPORT)


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
    move: str = ""  # the scenario move the turn made ("" outside scenarios)
    situation: str = ""  # the chat situation or the scenario id


@dataclass(frozen=True)
class StoredReport:
    session_id: uuid.UUID
    user_id: str
    source_service: str
    scenario_id: str
    language: str
    overall: float
    scores: dict[str, dict[str, int]]
    report: dict[str, Any]
    turn_count: int
    end_reason: str
    started_at: datetime | None
    ended_at: datetime
    generated_at: datetime


def _report_from_row(row: asyncpg.Record, report: dict[str, Any]) -> StoredReport:
    scores = row["scores"]
    return StoredReport(
        session_id=row["session_id"],
        user_id=row["user_id"],
        source_service=row["source_service"],
        scenario_id=row["scenario_id"],
        language=row["language"],
        overall=float(row["overall"]),
        scores=json.loads(scores) if isinstance(scores, str) else dict(scores),
        report=report,
        turn_count=row["turn_count"],
        end_reason=row["end_reason"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        generated_at=row["generated_at"],
    )


_COLUMNS = (
    "turn_id, session_id, user_id, source_service, turn_index, learner_text_sealed, language, "
    "dominant_emotion, scores, polarity, engine, summary_sealed, analysed_at, card_sealed, move, situation"
)
# What is read: the plaintext columns too, for rows not re-encrypted yet.
_READ_COLUMNS = _COLUMNS + ", learner_text, summary"


class FeedbackRepository:
    """The learner's words and the summaries are sealed here, on the way in and out."""

    def __init__(self, pool: asyncpg.Pool, cipher: Cipher, *, topology: Topology = DEFAULT):
        # Events are written for this topology (its name suffix is the outbox namespace).
        self.topology = topology
        self.pool = pool
        self.cipher = cipher

    async def _from_rows(self, rows: list[asyncpg.Record]) -> list[TurnAnalysis]:
        items = []
        for row in rows:
            items.append((row["learner_text_sealed"], row["learner_text"], LEARNER_TEXT.field(row["turn_id"])))
            items.append((row["summary_sealed"], row["summary"], SUMMARY.field(row["turn_id"])))
            items.append((row["card_sealed"], None, CARD.field(row["turn_id"])))
        texts = await self.cipher.open_texts(items)
        analyses = []
        for i, row in enumerate(rows):
            scores = row["scores"]
            card_json = texts[3 * i + 2]
            card = FeedbackCard.from_dict(json.loads(card_json)) if card_json else None
            analyses.append(
                TurnAnalysis(
                    turn_id=row["turn_id"],
                    session_id=row["session_id"],
                    user_id=row["user_id"],
                    source_service=row["source_service"],
                    turn_index=row["turn_index"],
                    learner_text=texts[3 * i] or "",
                    result=EmotionResult(
                        language=row["language"],
                        dominant=row["dominant_emotion"],
                        scores=json.loads(scores) if isinstance(scores, str) else dict(scores),
                        polarity=row["polarity"],
                        engine=row["engine"],
                        summary=texts[3 * i + 1] or "",
                        card=card,
                    ),
                    analysed_at=row["analysed_at"],
                    move=row["move"],
                    situation=row["situation"],
                )
            )
        return analyses

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
            analysed_at = await conn.fetchval(
                f"INSERT INTO turn_analyses ({_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, now(), $13, $14, $15) "
                "ON CONFLICT (turn_id) DO NOTHING RETURNING analysed_at",
                analysis.turn_id,
                analysis.session_id,
                analysis.user_id,
                analysis.source_service,
                analysis.turn_index,
                self.cipher.seal(analysis.learner_text, LEARNER_TEXT.field(analysis.turn_id)),
                r.language,
                r.dominant,
                json.dumps(r.scores),
                r.polarity,
                r.engine,
                self.cipher.seal(r.summary, SUMMARY.field(analysis.turn_id)),
                None
                if r.card is None
                else self.cipher.seal(json.dumps(r.card.to_dict(), ensure_ascii=False), CARD.field(analysis.turn_id)),
                analysis.move,
                analysis.situation,
            )
            if analysed_at is None:
                return None
            await outbox.enqueue(conn, event, ordering_key=ordering_key, cipher=self.cipher, topology=self.topology)
            return dataclasses.replace(analysis, analysed_at=analysed_at)

    async def get(self, turn_id: uuid.UUID) -> TurnAnalysis | None:
        row = await self.pool.fetchrow(f"SELECT {_READ_COLUMNS} FROM turn_analyses WHERE turn_id = $1", turn_id)
        return (await self._from_rows([row]))[0] if row else None

    async def list_for_session(self, session_id: uuid.UUID) -> list[TurnAnalysis]:
        rows = await self.pool.fetch(
            f"SELECT {_READ_COLUMNS} FROM turn_analyses WHERE session_id = $1 ORDER BY turn_index, analysed_at",
            session_id,
        )
        return await self._from_rows(rows)

    async def store_report(self, report: StoredReport, *, consumer: str, event_id: str) -> bool:
        """Record the session.ended event as handled and store its report, in one transaction;
        False if either was stored before."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await inbox.record(conn, consumer, event_id):
                return False
            stored = await conn.fetchval(
                "INSERT INTO session_reports (session_id, user_id, source_service, scenario_id, language, overall, "
                "scores, report_sealed, turn_count, end_reason, started_at, ended_at) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12) "
                "ON CONFLICT (session_id) DO NOTHING RETURNING true",
                report.session_id,
                report.user_id,
                report.source_service,
                report.scenario_id,
                report.language,
                report.overall,
                json.dumps(report.scores),
                self.cipher.seal(json.dumps(report.report, ensure_ascii=False), REPORT.field(report.session_id)),
                report.turn_count,
                report.end_reason,
                report.started_at,
                report.ended_at,
            )
            return bool(stored)

    async def get_report(self, session_id: uuid.UUID) -> StoredReport | None:
        row = await self.pool.fetchrow("SELECT * FROM session_reports WHERE session_id = $1", session_id)
        if row is None:
            return None
        (opened,) = await self.cipher.open_texts([(row["report_sealed"], None, REPORT.field(session_id))])
        return _report_from_row(row, json.loads(opened or "{}"))

    async def list_reports(
        self, user_id: str, *, limit: int, offset: int = 0, scenario_id: str = ""
    ) -> tuple[list[StoredReport], int]:
        """The learner's reports newest first (their bodies left sealed: the journal needs the
        scores), and how many there are in all."""
        rows = await self.pool.fetch(
            "SELECT session_id, user_id, source_service, scenario_id, language, overall, scores, turn_count, "
            "end_reason, started_at, ended_at, generated_at, count(*) OVER () AS total FROM session_reports "
            "WHERE user_id = $1 AND ($2 = '' OR scenario_id = $2) ORDER BY ended_at DESC, session_id "
            "OFFSET $3 LIMIT $4",
            user_id,
            scenario_id,
            offset,
            limit,
        )
        reports = [_report_from_row(r, {}) for r in rows]
        total = rows[0]["total"] if rows else 0
        return reports, int(total)
