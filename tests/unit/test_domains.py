"""The chat and feedback domains on their own, with in-memory fakes of their repositories,
cache, engines and analysers (our own code, faked inside tests of something else). No
database, broker or Redis: these run in milliseconds. The same flows against the real
components are in tests/integration/test_chat_feedback.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from chat_service.app import chat_catalogue
from chat_service.domain import ChatService, ReplyCommand, ReplyDelta, ReplyDone, ReplyNotSaved, ReplyStarted
from chat_service.repository import Session, StoredMessage
from chat_service.settings import ChatSettings
from feedback_service.domain import FeedbackService
from feedback_service.emotion.types import EmotionResult
from feedback_service.repository import TurnAnalysis
from feedback_service.settings import FeedbackSettings
from workplace.events.v1 import events_pb2
from workplace_kit.ai.types import AIUnavailableError, DialogueRequest, EngineInfo, ReplyChunk, Turn
from workplace_kit.bus import Envelope, Handled, PermanentFailure
from workplace_kit.errors import InvalidInput, NotFound, Unavailable

# --------------------------------------------------------------------------- chat fakes


@dataclass
class FakeChatRepository:
    sessions: dict[uuid.UUID, Session] = field(default_factory=dict)
    messages: dict[uuid.UUID, list[StoredMessage]] = field(default_factory=dict)
    events: list[events_pb2.ConversationTurn] = field(default_factory=list)
    fail_store: Exception | None = None

    async def ping(self) -> None:
        return None

    async def get_session(self, session_id: uuid.UUID) -> Session | None:
        return self.sessions.get(session_id)

    async def recent_turns(self, session_id: uuid.UUID, limit: int) -> tuple[int, list[Turn]]:
        stored = self.messages.get(session_id, [])
        return len(stored), [Turn(m.role, m.text) for m in stored[-limit:]]  # type: ignore[arg-type]

    async def history(self, session_id: uuid.UUID) -> list[StoredMessage]:
        return list(self.messages.get(session_id, []))

    async def store_exchange(self, session: Session, **kw: object) -> None:
        if self.fail_store is not None:
            raise self.fail_store
        self.sessions.setdefault(session.session_id, session)
        now = datetime.now(UTC)
        stored = self.messages.setdefault(session.session_id, [])
        stored.append(StoredMessage(kw["user_turn_id"], len(stored), "user", kw["user_text"], "", now))  # type: ignore[arg-type]
        stored.append(
            StoredMessage(kw["reply_turn_id"], len(stored), "model", kw["reply_text"], kw["engine_id"], now)  # type: ignore[arg-type]
        )
        self.events.append(kw["event"])  # type: ignore[arg-type]


class FakeCache:
    def __init__(self) -> None:
        self.stored: dict[str, str] = {}

    async def get(self, engine: EngineInfo, request: DialogueRequest):
        return None

    async def put(self, engine: EngineInfo, request: DialogueRequest, text: str, finish_reason: str) -> None:
        self.stored[request.message] = text


class ScriptedEngine:
    """Answers with fixed chunks, or fails after some of them."""

    info = EngineInfo("scripted", "Scripted engine")

    def __init__(self, chunks: list[str], fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.requests: list[DialogueRequest] = []

    async def stream_reply(self, request: DialogueRequest) -> AsyncIterator[ReplyChunk]:
        self.requests.append(request)
        for i, text in enumerate(self.chunks):
            if self.fail_after is not None and i == self.fail_after:
                raise AIUnavailableError("the AI is overloaded")
            yield ReplyChunk(text=text, final=i == len(self.chunks) - 1, finish_reason="STOP")


def chat_service(engine: ScriptedEngine, repository: FakeChatRepository | None = None, **settings) -> tuple:
    written: list[int] = []
    service = ChatService(
        ChatSettings(**settings),
        chat_catalogue(),
        repository or FakeChatRepository(),  # type: ignore[arg-type]
        engine,
        FakeCache(),  # type: ignore[arg-type]
        lambda: written.append(1),
    )
    return service, written


async def collect(service: ChatService, cmd: ReplyCommand) -> list:
    return [event async for event in await service.open_reply(cmd)]


# --------------------------------------------------------------------------- chat


async def test_a_reply_streams_then_the_turn_and_its_event_are_stored_together():
    engine = ScriptedEngine(["お疲れさまです。", "今日はどうでした？"])
    service, written = chat_service(engine)
    events = await collect(service, ReplyCommand(user_id="u1", message="お疲れさまです", partner="boss"))
    started, *deltas, done = events
    assert isinstance(started, ReplyStarted) and isinstance(done, ReplyDone)
    assert [d.text for d in deltas if isinstance(d, ReplyDelta)] == ["お疲れさまです。", "今日はどうでした？"]
    assert done.text == "お疲れさまです。今日はどうでした？"
    repository = service.repository
    (event,) = repository.events
    assert event.user_turn_id == started.user_turn_id and event.partner == "boss" and event.situation == "break"
    assert event.learner_text == "お疲れさまです" and event.event_id and written == [1]
    # The character comes from the content: the boss's register reaches the AI.
    assert "上司" in engine.requests[0].system_instruction


async def test_a_session_continues_with_its_history_and_is_only_its_users():
    engine = ScriptedEngine(["はい。"])
    service, _ = chat_service(engine)
    first = await collect(service, ReplyCommand(user_id="u1", message="こんにちは"))
    session_id = first[0].session_id
    await collect(service, ReplyCommand(user_id="u1", message="週末は何を？", session_id=session_id))
    assert [t.text for t in engine.requests[-1].history] == ["こんにちは", "はい。"]
    with pytest.raises(NotFound):
        await service.open_reply(ReplyCommand(user_id="intruder", message="やあ", session_id=session_id))


@pytest.mark.parametrize(
    "command,field",
    [
        (ReplyCommand(user_id="u", message="   "), "message"),
        (ReplyCommand(user_id="u", message="あ" * 2001), "message"),
        (ReplyCommand(user_id="u", message="やあ", partner="ceo"), "partner"),
        (ReplyCommand(user_id="u", message="やあ", situation="moon-base"), "situation"),
        (ReplyCommand(user_id="u", message="やあ", language="fr"), "language"),
        (ReplyCommand(user_id="u", message="やあ", session_id="not-an-id"), "session_id"),
    ],
)
async def test_bad_input_is_refused_before_anything_happens(command, field):
    engine = ScriptedEngine(["x"])
    service, written = chat_service(engine)
    with pytest.raises(InvalidInput) as refused:
        await service.open_reply(command)
    assert refused.value.field == field
    assert not engine.requests and not service.repository.events and not written


async def test_an_ai_failure_mid_reply_stores_nothing():
    service, written = chat_service(ScriptedEngine(["途中まで", "続き"], fail_after=1))
    with pytest.raises(Unavailable):
        await collect(service, ReplyCommand(user_id="u", message="こんにちは"))
    assert not service.repository.sessions and not written


async def test_a_reply_that_cannot_be_stored_says_so_after_retrying():
    repository = FakeChatRepository(fail_store=ConnectionRefusedError("database down"))
    service, written = chat_service(ScriptedEngine(["はい。"]), repository, chat_store_retry_s=0.2)
    with pytest.raises(ReplyNotSaved) as not_saved:
        await collect(service, ReplyCommand(user_id="u", message="こんにちは"))
    assert not_saved.value.error_code == "not_saved" and not written


async def test_characters_and_situations_are_the_contents():
    service, _ = chat_service(ScriptedEngine(["x"]))
    assert [c.id for c in service.list_characters()] == ["colleague", "senior", "boss"]
    assert service.list_characters()[1].labels == {"ja": "先輩", "en": "Senior"}
    assert "lunch" in {s.id for s in service.list_situations()}
    assert service.max_message_chars == ChatSettings().chat_max_message_chars


# --------------------------------------------------------------------------- feedback fakes


@dataclass
class FakeFeedbackRepository:
    analyses: dict[uuid.UUID, TurnAnalysis] = field(default_factory=dict)
    handled: set[tuple[str, str]] = field(default_factory=set)
    events: list[events_pb2.FeedbackReady] = field(default_factory=list)

    async def already_handled(self, consumer: str, event_id: str) -> bool:
        return (consumer, event_id) in self.handled

    async def record_handled(self, consumer: str, event_id: str) -> None:
        self.handled.add((consumer, event_id))

    async def exists(self, turn_id: uuid.UUID) -> bool:
        return turn_id in self.analyses

    async def get(self, turn_id: uuid.UUID) -> TurnAnalysis | None:
        return self.analyses.get(turn_id)

    async def list_for_session(self, session_id: uuid.UUID) -> list[TurnAnalysis]:
        return sorted((a for a in self.analyses.values() if a.session_id == session_id), key=lambda a: a.turn_index)

    async def store(self, analysis: TurnAnalysis, *, consumer: str, event_id: str, event, ordering_key: str):
        if (consumer, event_id) in self.handled or analysis.turn_id in self.analyses:
            return None
        self.handled.add((consumer, event_id))
        self.analyses[analysis.turn_id] = analysis
        self.events.append(event)
        return analysis


class FixedAnalyser:
    def __init__(self, engine: str = "fake", fail: bool = False) -> None:
        self.engine = engine
        self.fail = fail
        self.calls = 0

    async def analyse(self, text: str, language: str | None = None) -> EmotionResult:
        self.calls += 1
        if self.fail:
            raise AIUnavailableError("quota")
        return EmotionResult("ja", "joy", {"joy": 1.0}, 0.8, self.engine, "前向きな発言です。")


def turn_event(**changes) -> events_pb2.ConversationTurn:
    event = events_pb2.ConversationTurn(
        event_id=str(uuid.uuid4()),
        session_id=str(uuid.uuid4()),
        user_id="u1",
        source_service="chat",
        user_turn_id=str(uuid.uuid4()),
        reply_turn_id=str(uuid.uuid4()),
        learner_text="嬉しいです！",
        language="ja",
    )
    for key, value in changes.items():
        setattr(event, key, value)
    return event


def envelope(event: events_pb2.ConversationTurn) -> Envelope:
    return Envelope("m1", event.event_id, {}, 1, datetime.now(UTC), event.session_id)


def feedback_service(analyser: FixedAnalyser, fallback: FixedAnalyser | None = None):
    written: list[int] = []
    repository = FakeFeedbackRepository()
    service = FeedbackService(
        FeedbackSettings(),
        repository,
        analyser,
        lambda: written.append(1),
        fallback,
        consumer="turns",  # type: ignore[arg-type]
    )
    return service, repository, written


# --------------------------------------------------------------------------- feedback


async def test_a_turn_is_analysed_once_and_announced():
    analyser = FixedAnalyser()
    service, repository, written = feedback_service(analyser)
    event = turn_event()
    assert await service.handle_turn(event, envelope(event)) is Handled.OK
    assert await service.handle_turn(event, envelope(event)) is Handled.DUPLICATE  # redelivered
    renamed = turn_event(user_turn_id=event.user_turn_id, session_id=event.session_id)
    assert await service.handle_turn(renamed, envelope(renamed)) is Handled.DUPLICATE  # same turn, new event id
    assert analyser.calls == 1 and written == [1]
    (ready,) = repository.events
    assert ready.turn_id == event.user_turn_id and ready.analysis.dominant_emotion == "joy"
    assert ("turns", event.event_id) in repository.handled and ("turns", renamed.event_id) in repository.handled


async def test_a_turn_without_learner_text_is_recorded_not_analysed():
    analyser = FixedAnalyser()
    service, repository, written = feedback_service(analyser)
    event = turn_event(learner_text="  ")
    assert await service.handle_turn(event, envelope(event)) is Handled.OK
    assert analyser.calls == 0 and not repository.analyses and not written
    assert await service.handle_turn(event, envelope(event)) is Handled.DUPLICATE


async def test_a_turn_that_can_never_be_analysed_is_a_permanent_failure():
    service, repository, _ = feedback_service(FixedAnalyser())
    for bad in (turn_event(user_turn_id="not-a-uuid"), turn_event(event_id="")):
        with pytest.raises(PermanentFailure):
            await service.handle_turn(bad, envelope(bad) if bad.event_id else None)
    assert not repository.analyses


async def test_the_offline_analyser_steps_in_when_the_ai_is_unavailable():
    fallback = FixedAnalyser(engine="offline")
    service, repository, _ = feedback_service(FixedAnalyser(engine="gemini", fail=True), fallback)
    event = turn_event()
    await service.handle_turn(event, envelope(event))
    assert fallback.calls == 1
    assert next(iter(repository.analyses.values())).result.engine == "offline"
    # Without a fallback the outage reaches the bus, which retries the event later.
    alone, _, _ = feedback_service(FixedAnalyser(fail=True))
    with pytest.raises(AIUnavailableError):
        await alone.handle_turn(event, envelope(event))


async def test_analyses_are_read_by_their_learner_only():
    """Another learner's turn or session is not found, as one never analysed; a session id with
    no analyses yet is an empty list for anyone (its owner cannot be told from nothing)."""
    service, _, _ = feedback_service(FixedAnalyser())
    event = turn_event(user_id="owner")
    await service.handle_turn(event, envelope(event))
    assert (await service.turn_analysis(event.user_turn_id, "owner")).learner_text == "嬉しいです！"
    assert [a.turn_id for a in await service.session_analyses(event.session_id, "owner")] == [
        uuid.UUID(event.user_turn_id)
    ]
    for call in (
        service.turn_analysis(event.user_turn_id, "intruder"),
        service.session_analyses(event.session_id, "intruder"),
        service.turn_analysis(str(uuid.uuid4()), "owner"),
    ):
        with pytest.raises(NotFound):
            await call
    assert await service.session_analyses(str(uuid.uuid4()), "intruder") == []


def test_the_learners_time_zone_must_be_a_real_one() -> None:
    import pydantic
    from chat_service.settings import ChatSettings

    assert ChatSettings(chat_learner_timezone="Europe/London").chat_learner_timezone == "Europe/London"
    with pytest.raises(pydantic.ValidationError, match="unknown time zone 'Mars/Olympus'"):
        ChatSettings(chat_learner_timezone="Mars/Olympus")
