"""The watch service's domain on its own, with an in-memory fake of its repository (our own
code) and the real scenario scripts (e5): the order of a model dialogue produced request by
request, pause and resume by generation, interventions answered by both speakers, the
no-viewer end, the turn limit, Gemini's lines with the script as fallback, audio readiness.
The same flows against PostgreSQL, Redis and the Pub/Sub emulator: tests/integration/test_watch.py."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.message import Message
from watch_service.conversation import TurnView, load_closings
from watch_service.domain import WatchService, clean_generated
from watch_service.live import LiveChannel
from watch_service.repository import NewTurn, StoredTurn, WatchRow
from watch_service.settings import VECTOR_CACHE, WatchSettings
from workplace.events.v1 import events_pb2
from workplace_content import content
from workplace_content.dialogue import scenario_script
from workplace_kit.ai import offline_dialogue as od
from workplace_kit.ai.embeddings import get_embedder
from workplace_kit.ai.types import AIUnavailableError, DialogueRequest, EngineInfo, ReplyChunk
from workplace_kit.bus import Envelope, Handled
from workplace_kit.errors import Conflict, InvalidInput, NotFound

CATALOGUE = content()
OVERTIME = CATALOGUE.scenario("decline-overtime")


@dataclass
class FakeRepository:
    watches: dict[uuid.UUID, WatchRow] = field(default_factory=dict)
    stored: dict[uuid.UUID, list[StoredTurn]] = field(default_factory=dict)
    outbox: list[Message] = field(default_factory=list)
    handled: set[str] = field(default_factory=set)

    async def get(self, watch_id):
        return self.watches.get(watch_id)

    async def turns(self, watch_id, *, after=-1):
        return [t for t in self.stored.get(watch_id, []) if t.turn_index > after]

    async def turn_count(self, watch_id):
        return len(self.stored.get(watch_id, []))

    async def audio_ready_among(self, watch_id, indexes):
        return [
            (t.turn_index, t.turn_id)
            for t in self.stored.get(watch_id, [])
            if t.turn_index in indexes and t.audio_ready
        ]

    async def create(self, watch, first_request):
        self.watches[watch.watch_id] = watch
        self.stored[watch.watch_id] = []
        self.outbox.append(first_request)

    async def touch(self, watch_id):
        self.watches[watch_id] = replace(self.watches[watch_id], last_viewed_at=datetime.now(UTC))

    def _add(self, watch_id, index, turn: NewTurn) -> None:
        self.stored[watch_id].append(
            StoredTurn(
                turn.turn_id,
                index,
                turn.speaker_id,
                turn.text,
                turn.intervention,
                turn.move,
                turn.addressed_to,
                turn.engine_id,
                False,
                datetime.now(UTC),
            )
        )

    def _shapes(self, watch_id):
        return [TurnView(t.speaker_id, "", t.intervention, t.move, t.addressed_to) for t in self.stored[watch_id]]

    async def store_turn(
        self, watch_id, *, turn_index, generation, turn, events, end_reason, next_request, learner_move=None
    ):
        watch = self.watches.get(watch_id)
        if watch is None or watch.ended or watch.paused or watch.generation != generation:
            return False
        if len(self.stored[watch_id]) != turn_index:
            return False
        if learner_move is not None:
            index, move = learner_move
            turns = self.stored[watch_id]
            turns[index] = replace(turns[index], move=turns[index].move or move)
        self._add(watch_id, turn_index, turn)
        self.outbox.extend(events)
        if end_reason is not None:
            self.watches[watch_id] = replace(watch, status="ended", ended_reason=end_reason, ended_at=datetime.now(UTC))
        elif next_request is not None:
            request = next_request(watch, self._shapes(watch_id))
            if request is not None:
                self.outbox.append(request)
        return True

    async def intervene(self, watch_id, turn, make_request):
        watch = self.watches[watch_id]
        if watch.ended:
            return None
        index = len(self.stored[watch_id])
        self._add(watch_id, index, turn)
        watch = self.watches[watch_id] = replace(watch, generation=watch.generation + 1, paused=False)
        self.outbox.append(make_request(watch, index + 1, watch.generation))
        return index

    async def control(self, watch_id, *, paused, pace_seconds, make_request):
        watch = self.watches[watch_id]
        if watch.ended:
            return watch, False
        pausing = paused is not None and paused != watch.paused
        pacing = pace_seconds is not None and pace_seconds != watch.pace_seconds
        if not pausing and not pacing:
            return watch, False
        watch = self.watches[watch_id] = replace(
            watch,
            paused=paused if pausing else watch.paused,
            pace_seconds=pace_seconds if pacing else watch.pace_seconds,
            generation=watch.generation + (1 if pausing else 0),
        )
        if pausing and not watch.paused:
            self.outbox.append(make_request(watch, self._shapes(watch_id)))
        return watch, True

    async def end(self, watch_id, reason, *, generation=None):
        watch = self.watches[watch_id]
        if watch.ended or (generation is not None and watch.generation != generation):
            return False
        self.watches[watch_id] = replace(watch, status="ended", ended_reason=reason, ended_at=datetime.now(UTC))
        return True

    async def already_handled(self, consumer, event_id):
        return event_id in self.handled

    async def mark_audio_ready(self, turn_id, *, watch_id, consumer, event_id):
        for position, turn in enumerate(self.stored.get(watch_id, [])):
            if turn.turn_id == turn_id and not turn.audio_ready:
                self.stored[watch_id][position] = replace(turn, audio_ready=True)
                self.handled.add(event_id)
                return watch_id, turn.turn_index
        return None

    def requests(self) -> list[events_pb2.WatchTurnRequest]:
        return [m for m in self.outbox if isinstance(m, events_pb2.WatchTurnRequest)]

    def speech(self) -> list[events_pb2.TtsRequest]:
        return [m for m in self.outbox if isinstance(m, events_pb2.TtsRequest)]


class FakeFinder:
    def __init__(self, found: list[str]) -> None:
        self.found = found
        self.asked: list[tuple[str, str, str]] = []

    async def find(self, topic, *, language, token=""):
        self.asked.append((topic, language, token))
        return self.found


class ScriptedGemini:
    """Answers each request with the next line, or fails when told to."""

    info = EngineInfo("gemini", "Gemini (scripted)", "gemini-2.5-flash")

    def __init__(self, lines: list[str], fail: bool = False) -> None:
        self.lines = list(lines)
        self.fail = fail
        self.requests: list[DialogueRequest] = []

    async def stream_reply(self, request: DialogueRequest) -> AsyncIterator[ReplyChunk]:
        self.requests.append(request)
        if self.fail:
            raise AIUnavailableError("overloaded")
        yield ReplyChunk(self.lines.pop(0))
        yield ReplyChunk("", final=True, finish_reason="STOP")


def service_with(repository: FakeRepository, generative=None, **settings) -> WatchService:
    options = {"watch_max_wait_s": 0.0, "rate_limits_enabled": False, **settings}
    return WatchService(
        WatchSettings(**options),
        CATALOGUE,
        repository,  # type: ignore[arg-type]
        get_embedder(),
        generative,
        FakeFinder(["decline-overtime"]),
        LiveChannel(None),
        lambda: None,
    )


async def run_worker(service: WatchService, repository: FakeRepository, *, limit: int = 40) -> list[Handled]:
    """Hand every queued turn request to the worker, as the subscription would, until none is left."""
    outcomes = []
    taken = 0
    while taken < len(repository.requests()) and len(outcomes) < limit:
        request = repository.requests()[taken]
        taken += 1
        outcomes.append(await service.handle_turn_request(request))
    return outcomes


def texts(repository: FakeRepository, watch: WatchRow) -> list[tuple[str, str]]:
    return [(t.speaker_id, t.text) for t in repository.stored[watch.watch_id]]


async def test_a_model_dialogue_plays_the_scenario_to_its_natural_end() -> None:
    repository = FakeRepository()
    service = service_with(repository)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime", pace_seconds=1)
    first = repository.requests()[0]
    assert (first.turn_index, first.speaker_id, first.generation, first.watch_id) == (0, "a", 0, str(watch.watch_id))
    assert await run_worker(service, repository) == [Handled.OK] * 8
    said = texts(repository, watch)
    assert [s for s, _ in said] == ["a", "b", "a", "b", "a", "b", "a", "b"]
    assert said[0][1] == OVERTIME.opening.ja and said[-2][1] == OVERTIME.moves["offer_alternative"].replies.ja[0]
    assert said[-1][1] in load_closings().lines["polite"]["ja"]  # the model learner closes, warmly
    ended = repository.watches[watch.watch_id]
    assert ended.status == "ended" and ended.ended_reason == "finished"
    # Each request waits for the pace after the turn before it.
    requests = repository.requests()
    assert [r.turn_index for r in requests] == list(range(8))
    waits = [r.not_before.ToDatetime(tzinfo=UTC) - r.occurred_at.ToDatetime(tzinfo=UTC) for r in requests[1:]]
    assert all(timedelta(seconds=0.9) < wait <= timedelta(seconds=1) for wait in waits), waits
    # Speech for every turn, in the speaker's own voice.
    speech = repository.speech()
    assert [s.text for s in speech] == [t for _, t in said]
    assert {s.character_id for s in speech} == {"section_manager", "colleague"}
    assert all(s.session_id == str(watch.watch_id) and s.turn_id and s.language == "ja" for s in speech)


async def test_a_redelivered_or_stale_request_stores_nothing() -> None:
    repository = FakeRepository()
    service = service_with(repository)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime")
    first = repository.requests()[0]
    assert await service.handle_turn_request(first) == Handled.OK
    assert await service.handle_turn_request(first) == Handled.DUPLICATE  # redelivered: the turn exists
    stale = events_pb2.WatchTurnRequest()
    stale.CopyFrom(repository.requests()[1])
    stale.generation = 7
    assert await service.handle_turn_request(stale) == Handled.DUPLICATE
    assert len(repository.stored[watch.watch_id]) == 1


async def test_pause_drops_what_was_requested_and_resume_carries_on() -> None:
    repository = FakeRepository()
    service = service_with(repository)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime")
    await service.handle_turn_request(repository.requests()[0])
    outstanding = repository.requests()[1]
    paused = await service.control(watch_id=str(watch.watch_id), user_id="u1", paused=True)
    assert paused.paused and not paused.ended
    assert await service.handle_turn_request(outstanding) == Handled.DUPLICATE
    assert len(repository.stored[watch.watch_id]) == 1
    # Pausing again changes nothing; a pace change alone starts no new generation.
    again = await service.control(watch_id=str(watch.watch_id), user_id="u1", paused=True, pace_seconds=2.5)
    assert again.pace_seconds == 2.5 and repository.watches[watch.watch_id].generation == 1
    resumed = await service.control(watch_id=str(watch.watch_id), user_id="u1", paused=False)
    assert not resumed.paused
    request = repository.requests()[-1]
    assert (request.turn_index, request.speaker_id, request.generation) == (1, "b", 2)
    assert await service.handle_turn_request(request) == Handled.OK
    assert [s for s, _ in texts(repository, watch)] == ["a", "b"]
    with pytest.raises(InvalidInput):
        await service.control(watch_id=str(watch.watch_id), user_id="u1", pace_seconds=20)


async def test_an_intervention_is_taken_up_by_both_speakers() -> None:
    repository = FakeRepository()
    service = service_with(repository)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime")
    await service.handle_turn_request(repository.requests()[0])
    outstanding = repository.requests()[1]
    turn_id, index = await service.intervene(
        watch_id=str(watch.watch_id), user_id="u1", message="すみません、今日は子どもの迎えがあって残れないんです"
    )
    assert index == 1 and uuid.UUID(turn_id)
    answer = repository.requests()[-1]
    assert (answer.turn_index, answer.speaker_id, answer.generation) == (2, "a", 1)
    assert answer.intervention_text.startswith("すみません")
    assert answer.not_before.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)  # at once, not after the pace
    assert await service.handle_turn_request(outstanding) == Handled.DUPLICATE  # the older generation
    await service.handle_turn_request(answer)
    await service.handle_turn_request(repository.requests()[-1])
    turns = repository.stored[watch.watch_id]
    assert [(t.speaker_id, t.intervention) for t in turns] == [("a", False), ("", True), ("a", False), ("b", False)]
    # The character answers the learner's move as the scenario's script reads it.
    assert turns[1].move == "decline_with_reason" and turns[2].move == "decline_with_reason"
    assert turns[2].text in OVERTIME.moves["decline_with_reason"].replies.ja
    # The model learner quotes the learner, then goes on with the next step of the model answer.
    assert "「すみません、今日は子どもの迎えがあって残れないんです」" in turns[3].text
    assert turns[3].text.endswith("どのくらいの量の修正でしょうか。") and turns[3].move == "ask_details"
    # No speech for the learner's own words.
    assert len(repository.speech()) == 3


async def test_an_intervention_addressed_to_the_model_learner_is_bridged_first() -> None:
    repository = FakeRepository()
    service = service_with(repository)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime", language="en")
    await service.handle_turn_request(repository.requests()[0])
    await service.intervene(watch_id=str(watch.watch_id), user_id="u1", message="No way.", target="b")
    await service.handle_turn_request(repository.requests()[-1])
    turns = repository.stored[watch.watch_id]
    assert turns[-1].speaker_id == "b" and '"No way"' in turns[-1].text
    assert turns[1].move == "refuse_flatly"  # read by the script, for the bridge and the notes
    assert turns[-1].text.endswith("I'm sorry, but I have a family commitment tonight and need to leave by seven.")


async def test_nobody_watching_ends_the_dialogue_instead_of_producing_more() -> None:
    repository = FakeRepository()
    service = service_with(repository, watch_no_viewer_s=10, watch_heartbeat_s=1)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime")
    repository.watches[watch.watch_id] = replace(
        repository.watches[watch.watch_id], last_viewed_at=datetime.now(UTC) - timedelta(seconds=11)
    )
    assert await service.handle_turn_request(repository.requests()[0]) == Handled.OK
    assert repository.stored[watch.watch_id] == []
    assert repository.watches[watch.watch_id].ended_reason == "no_viewer"
    with pytest.raises(Conflict):
        await service.intervene(watch_id=str(watch.watch_id), user_id="u1", message="まだ見ています")


async def test_the_turn_limit_ends_with_the_characters_closing_line() -> None:
    repository = FakeRepository()
    service = service_with(repository)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime", max_turns=3)
    await run_worker(service, repository)
    said = texts(repository, watch)
    assert len(said) == 3 and repository.watches[watch.watch_id].ended_reason == "max_turns"
    assert said[-1][0] == "a" and said[-1][1].endswith(OVERTIME.closing.ja)


async def test_stop_ends_once_and_the_stream_reports_it() -> None:
    repository = FakeRepository()
    service = service_with(repository)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime")
    await service.handle_turn_request(repository.requests()[0])
    stopped = await service.stop(watch_id=str(watch.watch_id), user_id="u1")
    assert stopped.turn_count == 1 and not stopped.already_stopped
    assert (await service.stop(watch_id=str(watch.watch_id), user_id="u1")).already_stopped
    events = [e async for e in await service.open_events(str(watch.watch_id), "u1")]
    assert [type(e).__name__ for e in events] == ["TurnEvent", "StateEvent", "EndedEvent"]
    assert events[-1].reason == "stopped" and events[-1].turn_count == 1
    after = [e async for e in await service.open_events(str(watch.watch_id), "u1", after=0)]
    assert [type(e).__name__ for e in after] == ["StateEvent", "EndedEvent"]


async def test_only_the_owner_sees_a_dialogue_and_input_is_checked() -> None:
    repository = FakeRepository()
    service = service_with(repository)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime")
    for call in (
        service.get(str(watch.watch_id), "u2"),
        service.stop(watch_id=str(watch.watch_id), user_id="u2"),
        service.notes(watch_id=str(watch.watch_id), user_id="u2"),
        service.intervene(watch_id=str(watch.watch_id), user_id="u2", message="hi"),
    ):
        with pytest.raises(NotFound):
            await call
    for bad in (
        {"scenario_id": "no-such-scenario"},
        {"scenario_id": "decline-overtime", "pace_seconds": 0.5},
        {"scenario_id": "decline-overtime", "max_turns": 31},
        {"scenario_id": "decline-overtime", "language": "fr"},
        {},
    ):
        with pytest.raises((InvalidInput, NotFound)):
            await service.start(user_id="u1", **bad)
    harassment = next(s for s in CATALOGUE.scenarios if s.consent is not None)
    with pytest.raises(Conflict):
        await service.start(user_id="u1", scenario_id=harassment.id)


async def test_a_topic_plays_the_nearest_scenario_without_a_consent_notice() -> None:
    repository = FakeRepository()
    service = service_with(repository)
    harassment = next(s for s in CATALOGUE.scenarios if s.consent is not None)
    service.finder = FakeFinder([harassment.id, "decline-drinking-party"])
    watch = await service.start(user_id="u1", topic="飲み会を断りたい", token="tok")
    assert watch.scenario_id == "decline-drinking-party" and watch.title == "先輩からの飲み会の誘いを断る"
    assert service.finder.asked == [("飲み会を断りたい", "ja", "tok")]
    service.finder = FakeFinder([harassment.id])
    with pytest.raises(NotFound):
        await service.start(user_id="u1", topic="ハラスメント")


async def test_with_gemini_each_speaker_is_played_from_its_persona_and_the_script_stands_in() -> None:
    repository = FakeRepository()
    gemini = ScriptedGemini(["「申し訳ありません、今夜は家族の用事があって残れないんです。」"])
    service = service_with(repository, gemini)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime")
    await service.handle_turn_request(repository.requests()[0])  # the authored opening: no Gemini call
    assert gemini.requests == []
    await service.handle_turn_request(repository.requests()[-1])
    b = repository.stored[watch.watch_id][-1]
    assert b.text == "申し訳ありません、今夜は家族の用事があって残れないんです。" and b.engine_id == "gemini"
    assert b.move == "decline_with_reason"  # the script reads what Gemini said
    instruction = gemini.requests[0].system_instruction
    assert "佐藤 美咲" in instruction and "入社3年目の担当者" in instruction and "鈴木 課長" in instruction
    assert gemini.requests[0].message == OVERTIME.opening.ja
    gemini.fail = True  # Gemini is down: the scenario's own reply is said
    await service.handle_turn_request(repository.requests()[-1])
    a = repository.stored[watch.watch_id][-1]
    assert a.text == OVERTIME.moves["decline_with_reason"].replies.ja[0] and a.engine_id == "offline-retrieval"


async def test_audio_readiness_is_recorded_once_and_streamed() -> None:
    repository = FakeRepository()
    service = service_with(repository)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime")
    await service.handle_turn_request(repository.requests()[0])
    turn = repository.stored[watch.watch_id][0]
    ready = events_pb2.TtsReady(
        event_id="e1", session_id=str(watch.watch_id), turn_id=str(turn.turn_id), audio_key="k", mime_type="audio/ogg"
    )
    envelope = Envelope("m1", "e1", {}, 1, datetime.now(UTC), "")
    assert await service.handle_tts_ready(ready, envelope) == Handled.OK
    assert await service.handle_tts_ready(ready, envelope) == Handled.DUPLICATE
    assert repository.stored[watch.watch_id][0].audio_ready
    foreign = events_pb2.TtsReady(event_id="e2", session_id="chat-session", turn_id="t", audio_key="k")
    assert await service.handle_tts_ready(foreign) == Handled.OK
    failed = events_pb2.TtsReady(event_id="e3", session_id=str(watch.watch_id), turn_id=str(turn.turn_id), error="x")
    assert await service.handle_tts_ready(failed) == Handled.OK


def test_generated_lines_lose_their_speaker_label_and_quotes() -> None:
    assert clean_generated("佐藤：申し訳ありません。", ("佐藤", "佐藤 美咲")) == "申し訳ありません。"
    assert clean_generated("「わかりました」", ()) == "わかりました"
    assert clean_generated("結論: 遅れます", ("佐藤",)) == "結論: 遅れます"


def test_the_vector_cache_holds_every_scenario_text() -> None:
    cached, _ = od._read_cache(VECTOR_CACHE, get_embedder().model_version)
    missing = {t for s in CATALOGUE.scenarios for t in scenario_script(s, CATALOGUE).all_texts()} - set(cached)
    assert not missing, (
        f"{len(missing)} texts missing from {VECTOR_CACHE.name}; run `python -m watch_service build-index`"
    )


async def test_a_learner_who_ends_the_scenario_is_answered_by_both_and_the_dialogue_finishes() -> None:
    repository = FakeRepository()
    service = service_with(repository)
    watch = await service.start(user_id="u1", scenario_id="decline-overtime")
    await service.handle_turn_request(repository.requests()[0])
    await service.intervene(
        watch_id=str(watch.watch_id), user_id="u1", message="明日の朝8時に来て、会議までに仕上げるのはいかがでしょうか"
    )
    await run_worker(service, repository)
    turns = repository.stored[watch.watch_id]
    assert [(t.speaker_id, t.move) for t in turns] == [
        ("a", ""),
        ("", "offer_alternative"),
        ("a", "offer_alternative"),
        ("b", ""),
    ]
    assert turns[2].text == OVERTIME.moves["offer_alternative"].replies.ja[0]
    assert "「明日の朝8時に来て…」" in turns[3].text  # the bridge, then a warm close
    assert any(turns[3].text.endswith(line) for line in load_closings().lines["polite"]["ja"])
    assert repository.watches[watch.watch_id].ended_reason == "finished"
