"""The business counters (workplace_kit.business_metrics) move where the domain says they should:
a session counted once when it starts and once when it ends (with its outcome), feedback counted
when it is stored for the learner, never for a duplicate. The services' domains run on the
in-memory fakes of tests/unit/test_domains.py and test_watch_domain.py."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest
from chat_service.domain import ReplyCommand
from feedback_service.domain import FeedbackService
from feedback_service.settings import FeedbackSettings
from prometheus_client import REGISTRY
from scenario_service.domain import ScenarioService
from scenario_service.repository import SessionRow
from scenario_service.settings import ScenarioSettings
from test_domains import (
    FakeChatRepository,
    FakeFeedbackRepository,
    FixedAnalyser,
    ScriptedEngine,
    chat_service,
    collect,
    envelope,
    turn_event,
)
from test_watch_domain import FakeRepository as FakeWatchRepository
from test_watch_domain import run_worker, service_with
from workplace.events.v1 import events_pb2
from workplace_content import content
from workplace_kit import business_metrics
from workplace_kit.bus import Envelope, Handled


def started(mode: str) -> float:
    return REGISTRY.get_sample_value("workplace_sessions_started_total", {"mode": mode}) or 0.0


def ended(mode: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("workplace_sessions_ended_total", {"mode": mode, "outcome": outcome}) or 0.0


def delivered(kind: str) -> float:
    return REGISTRY.get_sample_value("workplace_feedback_delivered_total", {"kind": kind}) or 0.0


class Counts:
    """The business counters' values now, to compare with after an action."""

    def __init__(self) -> None:
        self.before = self.read()

    @staticmethod
    def read() -> dict[tuple[str, ...], float]:
        values: dict[tuple[str, ...], float] = {}
        for mode in business_metrics.MODES:
            values[("started", mode)] = started(mode)
            for outcome in business_metrics.OUTCOMES:
                values[("ended", mode, outcome)] = ended(mode, outcome)
        for kind in business_metrics.FEEDBACK_KINDS:
            values[("delivered", kind)] = delivered(kind)
        return values

    def changed(self) -> dict[tuple[str, ...], float]:
        """What moved since, and by how much."""
        now = self.read()
        return {key: now[key] - self.before[key] for key in now if now[key] != self.before[key]}


def test_every_series_exists_from_the_start_so_increase_sees_the_first_session() -> None:
    exposition = {m.name: m for m in REGISTRY.collect()}
    assert {
        s.labels["mode"] for s in exposition["workplace_sessions_started"].samples if s.name.endswith("_total")
    } == {
        "chat",
        "scenario",
        "watch",
    }
    ended_series = {
        (s.labels["mode"], s.labels["outcome"])
        for s in exposition["workplace_sessions_ended"].samples
        if s.name.endswith("_total")
    }
    assert len(ended_series) == len(business_metrics.MODES) * len(business_metrics.OUTCOMES)


@pytest.mark.parametrize(
    ("mode", "reason", "outcome"),
    [
        ("chat", "user", "completed"),
        ("scenario", "completed", "completed"),
        ("scenario", "timeout", "timeout"),
        ("scenario", "user", "abandoned"),
        ("watch", "finished", "completed"),
        ("watch", "max_turns", "completed"),
        ("watch", "stopped", "abandoned"),
        ("watch", "no_viewer", "abandoned"),
        ("watch", "error", "error"),
        ("scenario", "something-new", "abandoned"),
    ],
)
def test_end_reasons_map_to_outcomes(mode, reason: str, outcome: str) -> None:
    assert business_metrics.outcome_of(mode, reason) == outcome


# --------------------------------------------------------------------------- chat


@dataclass
class EndingChatRepository(FakeChatRepository):
    ended: dict[uuid.UUID, datetime] = field(default_factory=dict)
    end_events: list = field(default_factory=list)

    async def end(self, session, event_of):
        turns = sum(1 for m in self.messages.get(session.session_id, []) if m.role == "user")
        if session.session_id in self.ended:
            return turns, self.ended[session.session_id], False
        self.ended[session.session_id] = datetime.now(UTC)
        self.end_events.append(event_of(turns, self.ended[session.session_id]))
        return turns, self.ended[session.session_id], True


async def test_a_chat_counts_as_started_once_and_completed_once() -> None:
    repository = EndingChatRepository()
    service, _ = chat_service(ScriptedEngine(["はい。"]), repository)
    counts = Counts()
    first = await collect(service, ReplyCommand(user_id="u1", message="こんにちは"))
    session_id = first[0].session_id
    await collect(service, ReplyCommand(user_id="u1", message="週末は何を？", session_id=session_id))
    assert counts.changed() == {("started", "chat"): 1}
    await service.end_session(session_id, "u1")
    await service.end_session(session_id, "u1")  # again: nothing changes
    assert counts.changed() == {("started", "chat"): 1, ("ended", "chat", "completed"): 1}


async def test_a_chat_reply_that_fails_starts_no_session() -> None:
    service, _ = chat_service(ScriptedEngine(["a", "b"], fail_after=1), EndingChatRepository())
    counts = Counts()
    with pytest.raises(Exception):  # noqa: B017 - the AI's failure, whatever the domain makes of it
        await collect(service, ReplyCommand(user_id="u1", message="こんにちは"))
    assert counts.changed() == {}


# --------------------------------------------------------------------------- scenario


@dataclass
class FakeSessions:
    rows: dict[uuid.UUID, SessionRow] = field(default_factory=dict)
    events: list = field(default_factory=list)

    async def create(self, session: SessionRow, opening: str, opening_turn_id) -> None:
        self.rows[session.session_id] = session

    async def get(self, session_id: uuid.UUID) -> SessionRow | None:
        return self.rows.get(session_id)

    async def learner_turns(self, session_id: uuid.UUID) -> int:
        return 0

    async def end(self, session: SessionRow, reason: str, event) -> tuple[SessionRow, bool]:
        current = self.rows[session.session_id]
        if current.ended_at is not None:
            return current, False
        self.rows[session.session_id] = replace(current, ended_at=datetime.now(UTC), end_reason=reason)
        self.events.append(event)
        return self.rows[session.session_id], True


def scenario_service(sessions: FakeSessions) -> ScenarioService:
    # The catalogue store, embedder and engine play no part in starting and ending a session.
    return ScenarioService(ScenarioSettings(), content(), None, sessions, None, None, lambda: None)  # type: ignore[arg-type]


async def test_a_roleplay_counts_as_started_and_ends_with_its_reason() -> None:
    sessions = FakeSessions()
    service = scenario_service(sessions)
    scenario_id = next(s.id for s in content().scenarios if s.consent is None)
    counts = Counts()
    left = await service.start_session(user_id="u1", scenario_id=scenario_id)
    done = await service.start_session(user_id="u1", scenario_id=scenario_id)
    assert counts.changed() == {("started", "scenario"): 2}
    await service.end_session(user_id="u1", session_id=str(left.session.session_id))
    await service.end_session(user_id="u1", session_id=str(done.session.session_id), reason="completed")
    await service.end_session(user_id="u1", session_id=str(done.session.session_id), reason="completed")
    assert counts.changed() == {
        ("started", "scenario"): 2,
        ("ended", "scenario", "abandoned"): 1,
        ("ended", "scenario", "completed"): 1,
    }


# --------------------------------------------------------------------------- watch


async def test_a_watched_dialogue_counts_its_natural_end_as_completed() -> None:
    repository = FakeWatchRepository()
    service = service_with(repository)
    counts = Counts()
    await service.start(user_id="u1", scenario_id="decline-overtime", pace_seconds=1)
    await run_worker(service, repository)
    assert counts.changed() == {("started", "watch"): 1, ("ended", "watch", "completed"): 1}


async def test_a_stopped_dialogue_counts_once_as_abandoned() -> None:
    repository = FakeWatchRepository()
    service = service_with(repository)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime")
    counts = Counts()
    await service.stop(watch_id=str(watch.watch_id), user_id="u1")
    await service.stop(watch_id=str(watch.watch_id), user_id="u1")
    assert counts.changed() == {("ended", "watch", "abandoned"): 1}


# --------------------------------------------------------------------------- feedback


@dataclass
class ReportingFeedbackRepository(FakeFeedbackRepository):
    reports: dict[uuid.UUID, object] = field(default_factory=dict)

    async def store_report(self, report, *, consumer: str, event_id: str) -> bool:
        if (consumer, event_id) in self.handled or report.session_id in self.reports:
            return False
        self.handled.add((consumer, event_id))
        self.reports[report.session_id] = report
        return True


def feedback(repository: ReportingFeedbackRepository) -> FeedbackService:
    return FeedbackService(FeedbackSettings(), repository, FixedAnalyser(), lambda: None, consumer="turns")  # type: ignore[arg-type]


async def test_each_analysis_counts_once_as_delivered() -> None:
    service = feedback(ReportingFeedbackRepository())
    event = turn_event()
    counts = Counts()
    assert await service.handle_turn(event, envelope(event)) is Handled.OK
    assert await service.handle_turn(event, envelope(event)) is Handled.DUPLICATE
    silent = turn_event(learner_text=" ")  # an AI-only turn: nothing for a learner
    await service.handle_turn(silent, envelope(silent))
    assert counts.changed() == {("delivered", "analysis"): 1}


async def test_each_report_counts_once_as_delivered() -> None:
    repository = ReportingFeedbackRepository()
    service = feedback(repository)
    turn = turn_event()
    await service.handle_turn(turn, envelope(turn))
    event = events_pb2.SessionEnded(
        event_id=str(uuid.uuid4()),
        session_id=turn.session_id,
        user_id="u1",
        source_service="chat",
        turn_count=1,
        reason="user",
        language="ja",
    )
    counts = Counts()
    on_the_bus = Envelope("m2", event.event_id, {}, 1, datetime.now(UTC), event.session_id)
    assert await service.handle_session_ended(event, on_the_bus) is Handled.OK
    assert await service.handle_session_ended(event, on_the_bus) is Handled.DUPLICATE
    assert counts.changed() == {("delivered", "report"): 1}
