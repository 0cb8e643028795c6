"""Feedback: analyse the emotion of each learner turn as conversation-turn events arrive, and
write a session's coaching report when its session.ended event arrives.

Exactly once in effect: each event's id is recorded in the feedback database (the inbox) in
the same transaction as the analysis and its feedback.ready event, and the analysis is keyed
on the learner's turn id, so a redelivered, replayed or re-published turn is analysed once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from workplace.events.v1 import events_pb2
from workplace.feedback.v1 import emotion_pb2
from workplace_content import content
from workplace_kit.ai.types import AIUnavailableError
from workplace_kit.bus import Envelope, Handled, PermanentFailure
from workplace_kit.business_metrics import feedback_delivered
from workplace_kit.errors import InvalidInput, NotFound

from . import progress
from .coaching.card import FeedbackCard, build_card
from .coaching.gemini_report import GeminiReportWriter
from .coaching.register import RegisterChecker
from .coaching.report import LearnerTurn, build_report
from .emotion.types import EmotionAnalyser, EmotionResult
from .repository import FeedbackRepository, StoredReport, TurnAnalysis
from .settings import FeedbackSettings

log = logging.getLogger(__name__)
# Deliveries of a session.ended event that wait for its turns' analyses (retried with backoff,
# about two minutes in all) before the report is written from the turns that arrived.
REPORT_PATIENCE = 8
# How long one delivery waits for the last turns' analyses before it is retried.
REPORT_WAIT_S = 3.0
# The strengths page looks at this many of the learner's latest reports.
STRENGTHS_REPORTS = 200


class TurnsStillArriving(Exception):  # noqa: N818 - reads as what it is
    """A session ended before all its turns were analysed: retry the report later."""


def card_to_proto(card: FeedbackCard) -> emotion_pb2.FeedbackCard:
    return emotion_pb2.FeedbackCard(**card.to_dict())


def to_proto(result: EmotionResult) -> emotion_pb2.EmotionAnalysis:
    message = emotion_pb2.EmotionAnalysis(
        language=result.language,
        dominant_emotion=result.dominant,
        scores=[emotion_pb2.EmotionScore(emotion=k, score=v) for k, v in sorted(result.scores.items())],
        polarity=result.polarity,
        engine=result.engine,
        summary=result.summary,
    )
    if result.card is not None:
        message.card.CopyFrom(card_to_proto(result.card))
    return message


def _parse_id(raw: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput(f"{field} is not a valid id", field=field) from None


class FeedbackService:
    def __init__(
        self,
        settings: FeedbackSettings,
        repository: FeedbackRepository,
        analyser: EmotionAnalyser,
        events_written: Callable[[], None],
        fallback: EmotionAnalyser | None = None,
        *,
        consumer: str = "feedback.conversation-turns",
        register: RegisterChecker | None = None,
        reports_consumer: str = "feedback.session-ended",
        report_writer: GeminiReportWriter | None = None,
    ):
        self.settings = settings
        self.consumer = consumer  # the subscription it reads: the inbox records event ids under it
        self.reports_consumer = reports_consumer  # the session.ended subscription
        # Gemini writes the reports when configured; the offline analysis stands by.
        self.report_writer = report_writer
        self.repository = repository
        self.analyser = analyser
        self.fallback = fallback
        self.register = register or RegisterChecker()
        # Called after a transaction wrote events to the outbox (the relay publishes at once).
        self.events_written = events_written

    async def handle_turn(self, event: events_pb2.ConversationTurn, envelope: Envelope | None = None) -> Handled:
        """Analyse the learner's side of one turn, once per event id and once per turn."""
        event_id = envelope.event_id if envelope is not None else event.event_id
        if not event_id:
            raise PermanentFailure("the turn event has no event_id")
        if await self.repository.already_handled(self.consumer, event_id):
            return Handled.DUPLICATE
        if not event.learner_text.strip():
            # AI-only turns (watch mode) have no learner text: nothing to analyse.
            await self.repository.record_handled(self.consumer, event_id)
            return Handled.OK
        try:
            turn_id = uuid.UUID(event.user_turn_id)
            session_id = uuid.UUID(event.session_id)
        except ValueError:
            raise PermanentFailure("the turn event's user_turn_id or session_id is not a UUID") from None
        if await self.repository.exists(turn_id):
            # The same turn under another event id (a producer that re-created the event).
            await self.repository.record_handled(self.consumer, event_id)
            return Handled.DUPLICATE
        language = event.language if event.language in ("ja", "en") else None
        try:
            result = await self._analyse(self.analyser, event, language)
        except AIUnavailableError:
            if self.fallback is None:
                raise
            log.warning("emotion analysis fell back to the offline analyser", extra={"turn_id": str(turn_id)})
            result = await self._analyse(self.fallback, event, language)
        result = await self._with_card(result, event)
        now = datetime.now(UTC)
        ready = events_pb2.FeedbackReady(
            event_id=str(uuid.uuid4()),
            session_id=event.session_id,
            user_id=event.user_id,
            turn_id=str(turn_id),
            analysis=to_proto(result),
        )
        ready.occurred_at.FromDatetime(now)
        stored = await self.repository.store(
            TurnAnalysis(
                turn_id=turn_id,
                session_id=session_id,
                user_id=event.user_id,
                source_service=event.source_service,
                turn_index=event.turn_index,
                learner_text=event.learner_text,
                result=result,
                analysed_at=now,
                move=event.move,
                situation=event.situation,
            ),
            consumer=self.consumer,
            event_id=event_id,
            event=ready,
            ordering_key=event.session_id,
        )
        if stored is None:
            return Handled.DUPLICATE
        self.events_written()
        feedback_delivered("analysis")
        return Handled.OK

    @staticmethod
    async def _analyse(
        analyser: EmotionAnalyser, event: events_pb2.ConversationTurn, language: str | None
    ) -> EmotionResult:
        """An analyser that also coaches (Gemini: analyse_turn) is told who the partner is."""
        analyse_turn = getattr(analyser, "analyse_turn", None)
        if analyse_turn is not None:
            result: EmotionResult = await analyse_turn(event.learner_text, language, event.partner)
            return result
        return await analyser.analyse(event.learner_text, language)

    async def _with_card(self, result: EmotionResult, event: events_pb2.ConversationTurn) -> EmotionResult:
        """The analysis with its feedback card: the engine's own (Gemini), else built from the
        register check of the learner's words against the partner."""
        if result.card is not None:
            return result
        check = await asyncio.to_thread(self.register.check, event.learner_text, result.language, event.partner)
        return dataclasses.replace(result, card=build_card(result, check))

    async def handle_session_ended(self, event: events_pb2.SessionEnded, envelope: Envelope | None = None) -> Handled:
        """Write the session's coaching report, once per event id and once per session. The
        turns' own events may still be on their way (another topic): until every learner turn
        the event counts is analysed, the event is retried later; after REPORT_PATIENCE
        deliveries the report is written from the turns that arrived, and says how many."""
        event_id = envelope.event_id if envelope is not None else event.event_id
        if not event_id:
            raise PermanentFailure("the session.ended event has no event_id")
        try:
            session_id = uuid.UUID(event.session_id)
        except ValueError:
            raise PermanentFailure("the session.ended event's session_id is not a UUID") from None
        if await self.repository.already_handled(self.reports_consumer, event_id):
            return Handled.DUPLICATE
        attempt = envelope.delivery_attempt if envelope is not None else 1
        # The last turn's event usually left with this one and is being analysed right now:
        # wait for it a moment here rather than a redelivery's backoff (a second or more).
        deadline = time.monotonic() + REPORT_WAIT_S
        while True:
            analyses = [a for a in await self.repository.list_for_session(session_id) if a.user_id == event.user_id]
            if len(analyses) >= event.turn_count or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.05)
        if len(analyses) < event.turn_count and attempt < REPORT_PATIENCE:
            raise TurnsStillArriving(f"{len(analyses)} of {event.turn_count} turns analysed so far")
        scenario = None
        if event.scenario_id:
            try:
                scenario = content().scenario(event.scenario_id)
            except KeyError:
                log.warning("report of an unknown scenario %r: skills only", event.scenario_id)
        language = event.language or (analyses[0].result.language if analyses else "ja")
        turns = [
            LearnerTurn(
                a.turn_index,
                a.learner_text,
                a.move,
                a.result.card.verdict if a.result.card else "",
                a.result.card.better_phrasing if a.result.card else "",
            )
            for a in analyses
        ]
        report = None
        if self.report_writer is not None:
            try:
                report = await self.report_writer.write(turns, language, scenario)
            except AIUnavailableError:
                log.warning(
                    "the coaching report fell back to the offline analysis", extra={"session_id": str(session_id)}
                )
        if report is None:
            report = await asyncio.to_thread(build_report, turns, language, scenario)
        ended_at = event.occurred_at.ToDatetime(tzinfo=UTC) if event.HasField("occurred_at") else datetime.now(UTC)
        started_at = event.started_at.ToDatetime(tzinfo=UTC) if event.HasField("started_at") else None
        stored = await self.repository.store_report(
            StoredReport(
                session_id=session_id,
                user_id=event.user_id,
                source_service=event.source_service,
                scenario_id=event.scenario_id,
                language=report.language,
                overall=report.overall,
                scores={
                    "skills": {s.id: s.score for s in report.skills},
                    "criteria": {c.id: c.score for c in report.criteria},
                },
                report=dataclasses.asdict(report),
                turn_count=report.turn_count,
                end_reason=event.reason,
                started_at=started_at,
                ended_at=ended_at,
                generated_at=datetime.now(UTC),
            ),
            consumer=self.reports_consumer,
            event_id=event_id,
        )
        if not stored:
            return Handled.DUPLICATE
        feedback_delivered("report")
        return Handled.OK

    async def report(self, raw_session_id: str, user_id: str) -> StoredReport:
        """The coaching report of one of the learner's sessions; NotFound until it is written
        (the page shows progress meanwhile) and for another learner's session."""
        stored = await self.repository.get_report(_parse_id(raw_session_id, "session_id"))
        if stored is None or stored.user_id != user_id:
            raise NotFound("no coaching report for this session (yet)")
        return stored

    async def journal(
        self, user_id: str, language: str, *, limit: int = 50, offset: int = 0, scenario_id: str = ""
    ) -> tuple[list[progress.JournalEntry], int]:
        """The learner's ended sessions with their scores, newest first (and how many in all)."""
        if not 1 <= limit <= 500 or not 0 <= offset <= 1_000_000:
            raise InvalidInput("limit must be 1-500 and offset 0-1000000", field="limit")
        reports, total = await self.repository.list_reports(
            user_id, limit=limit, offset=offset, scenario_id=scenario_id
        )
        return [progress.journal_entry(r, language) for r in reports], total

    async def strengths(self, user_id: str, language: str) -> progress.Strengths:
        reports, _ = await self.repository.list_reports(user_id, limit=STRENGTHS_REPORTS)
        return progress.strengths(reports, language)

    async def compare(
        self, user_id: str, raw_before: str, raw_after: str, language: str
    ) -> tuple[StoredReport, StoredReport, list[progress.Change], list[progress.Change]]:
        before, after = await self.report(raw_before, user_id), await self.report(raw_after, user_id)
        skills, criteria = progress.compare(before, after, language)
        return before, after, skills, criteria

    async def turn_analysis(self, raw_turn_id: str, user_id: str) -> TurnAnalysis:
        """The analysis of one of the learner's turns; another learner's is not found, exactly as
        a turn never analysed (the answer does not confirm that it exists)."""
        analysis = await self.repository.get(_parse_id(raw_turn_id, "turn_id"))
        if analysis is None or analysis.user_id != user_id:
            raise NotFound("no analysis for this turn (yet)")
        return analysis

    async def session_analyses(self, raw_session_id: str, user_id: str) -> list[TurnAnalysis]:
        """The analyses of one of the learner's sessions, in turn order.

        Ownership is known only from the analyses themselves (sessions are chat's): a session id
        with no analyses yet is answered with an empty list, whoever asks; it may be the
        learner's new session whose first turn is still being analysed, and an empty list
        tells nobody anything. As soon as the session has analyses, only their learner gets
        them; anyone else is answered NotFound, as for a session that does not exist. (The web
        service's feedback stream relies on this and, for the live analyses of a session that
        had none yet, passes on only those of the learner it streams to.)
        """
        analyses = await self.repository.list_for_session(_parse_id(raw_session_id, "session_id"))
        if any(a.user_id != user_id for a in analyses):
            raise NotFound("no such session")
        return analyses
