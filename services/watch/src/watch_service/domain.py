"""Watched dialogues: a model conversation between two AI characters that the learner watches,
pauses, paces, stops and steps into. HTTP and gRPC both call this class; it knows nothing of
either.

How a dialogue is produced: every turn is one WatchTurnRequest on Pub/Sub (topic
watch.turn-requests), written to the outbox in the transaction that stored the turn before
it (or started, resumed or joined the dialogue), so no request is lost between a commit and
a publish. A worker (this service's subscription watch.turn-requests) takes a request, drops
it when it no longer applies (the dialogue ended or is paused, the request is of an older
generation, or the turn exists), waits until its not_before (the pace), ends the dialogue if
nobody watches it, produces the line (the scenario's authored content offline, Gemini when
configured) and stores the turn, its speech request (tts.requests) and the next turn
request in one transaction. A pause, a resume or an intervention starts a new generation:
requests of older generations are dropped, so nothing that was under way keeps going.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from workplace.events.v1 import events_pb2
from workplace_content import ContentCatalogue, Scenario
from workplace_content.dialogue import scenario_script
from workplace_kit.ai.embeddings import Embedder
from workplace_kit.ai.metrics import AI_REPLIES
from workplace_kit.ai.offline_dialogue import OfflineDialogueEngine, OfflineReply
from workplace_kit.ai.types import AIUnavailableError, DialogueEngine, DialogueRequest, EngineInfo, Turn, fit_history
from workplace_kit.bus import Envelope, Handled, PermanentFailure
from workplace_kit.business_metrics import session_ended, session_started
from workplace_kit.errors import Conflict, InvalidInput, NotFound
from workplace_kit.ratelimit import Limiter, Rule
from workplace_kit.validation import unstorable

from . import prompts
from .conversation import (
    CHARACTER,
    LEARNER,
    MODEL_LEARNER,
    SPEAKERS,
    ModelConversation,
    TurnView,
    first_speaker,
    joined,
    next_speaker,
    pending_intervention,
    seeded,
    speakers_for,
)
from .live import LiveChannel
from .notes import WatchNotes, build_notes
from .repository import NewTurn, StoredTurn, WatchRepository, WatchRow
from .scenario_search import ScenarioFinder
from .settings import WatchSettings

log = logging.getLogger(__name__)
LANGUAGES = ("ja", "en")
PACE_RANGE = (1.0, 15.0)
MAX_TURNS_RANGE = (2, 30)
END_REASONS = ("finished", "max_turns", "stopped", "no_viewer", "error")
TURNS_SUBSCRIPTION = "watch.turn-requests"
AUDIO_SUBSCRIPTION = "watch.tts-ready"


# ------------------------------------------------------------------ what the transports see


@dataclass(frozen=True)
class TurnEvent:
    turn: StoredTurn


@dataclass(frozen=True)
class StateEvent:
    paused: bool
    pace_seconds: float


@dataclass(frozen=True)
class AudioEvent:
    turn_id: str
    turn_index: int


@dataclass(frozen=True)
class EndedEvent:
    reason: str
    turn_count: int


WatchEvent = TurnEvent | StateEvent | AudioEvent | EndedEvent


@dataclass(frozen=True)
class Controlled:
    paused: bool
    pace_seconds: float
    ended: bool


@dataclass(frozen=True)
class Stopped:
    watch_id: str
    turn_count: int
    already_stopped: bool
    stopped_at: datetime | None


@dataclass(frozen=True)
class Produced:
    """A produced line: what to store and whether it ends the scenario."""

    text: str
    move: str
    ends: bool
    engine_id: str
    learner_move: tuple[int, str] | None = None  # an intervention's move, as the script read it


def status_of(watch: WatchRow) -> str:
    if watch.ended:
        return "ended"
    return "paused" if watch.paused else "running"


def language_of(value: str) -> str:
    if value and value not in LANGUAGES:
        raise InvalidInput("language must be 'ja', 'en' or empty", field="language")
    return value or "ja"


def _watch_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput("watch_id is not a valid id", field="watch_id") from None


def _check_pace(pace_seconds: float) -> float:
    low, high = PACE_RANGE
    if not low <= pace_seconds <= high:
        raise InvalidInput(f"pace_seconds must be between {low:g} and {high:g}", field="pace_seconds")
    return round(float(pace_seconds), 3)


_NAME_PREFIX = re.compile(r"^\s*([^\s:：「」]{1,16})\s*[:：]\s*")


def clean_generated(text: str, names: tuple[str, ...]) -> str:
    """A generated line as said: no speaker label in front, no quotes around it all."""
    text = text.strip()
    match = _NAME_PREFIX.match(text)
    if match and any(match.group(1) in name or name in match.group(1) for name in names if name):
        text = text[match.end() :].strip()
    if len(text) > 2 and text[0] in '「"“' and text[-1] in '」"”' and text.count(text[0]) == 1:
        text = text[1:-1].strip()
    return text


class WatchService:
    def __init__(
        self,
        settings: WatchSettings,
        content: ContentCatalogue,
        repository: WatchRepository,
        embedder: Embedder,
        generative: DialogueEngine | None,
        finder: ScenarioFinder,
        live: LiveChannel,
        events_written: Callable[[], None],
        limiter: Limiter | None = None,
    ) -> None:
        self.settings = settings
        self.content = content
        self.repository = repository
        self.embedder = embedder
        # None: the scenario's authored content plays both speakers; else Gemini (the script
        # still reads the moves, and stands in when Gemini is unavailable).
        self.generative = generative
        self.finder = finder
        self.live = live
        self.events_written = events_written
        self.limiter = limiter
        self.start_rate = Rule(
            "watch-starts",
            settings.watch_starts_rate,
            f"Too many dialogues started in a short time (at most {settings.watch_starts_rate}); wait a moment",
        )
        self.message_rate = Rule(
            "watch-messages",
            settings.watch_messages_rate,
            f"Too many messages in a short time (at most {settings.watch_messages_rate}); wait a moment",
        )
        self._scenarios = {s.id: s for s in content.scenarios}
        self._scripts: dict[str, OfflineDialogueEngine] = {}
        self._conversations: dict[str, ModelConversation] = {}

    # ------------------------------------------------------------------ the catalogue

    def scenario(self, scenario_id: str) -> Scenario:
        try:
            return self._scenarios[scenario_id]
        except KeyError:
            raise NotFound(f"no scenario {scenario_id!r}", field="scenario_id") from None

    def script(self, scenario: Scenario) -> OfflineDialogueEngine:
        """The scenario's own engine, which reads a line's move (built on first use)."""
        engine = self._scripts.get(scenario.id)
        if engine is None:
            catalogue = scenario_script(scenario, self.content, cache_file=self.settings.watch_vector_cache)
            engine = self._scripts[scenario.id] = OfflineDialogueEngine(catalogue, self.embedder)
        return engine

    def conversation(self, scenario: Scenario) -> ModelConversation:
        found = self._conversations.get(scenario.id)
        if found is None:
            found = self._conversations[scenario.id] = ModelConversation.of(scenario)
        return found

    @property
    def engine_info(self) -> EngineInfo:
        return self.generative.info if self.generative is not None else OfflineDialogueEngine.info

    async def warm_up(self) -> float:
        """Load e5 (it reads the learner's interventions) before the first turn is taken."""
        await self.embedder.aembed_query("warm-up")
        return 1.0

    # ------------------------------------------------------------------ starting and reading

    async def start(
        self,
        *,
        user_id: str,
        scenario_id: str = "",
        topic: str = "",
        language: str = "",
        pace_seconds: float | None = None,
        max_turns: int | None = None,
        token: str = "",
    ) -> WatchRow:
        language = language_of(language)
        pace = _check_pace(self.settings.watch_default_pace_s if not pace_seconds else pace_seconds)
        turns = max_turns or self.settings.watch_default_max_turns
        low, high = MAX_TURNS_RANGE
        if not low <= turns <= high:
            raise InvalidInput(f"max_turns must be between {low} and {high}", field="max_turns")
        topic = topic.strip()
        if scenario_id:
            scenario = self.scenario(scenario_id)
        elif topic:
            if len(topic) > 500 or unstorable(topic):
                raise InvalidInput("topic must be at most 500 characters of text", field="topic")
            scenario = await self._scenario_for(topic, language, token)
        else:
            raise InvalidInput("give a scenario_id or a topic", field="scenario_id")
        if scenario.consent is not None:
            raise Conflict(
                "this scenario asks for the learner's consent before it is played; practise it as a roleplay",
                field="scenario_id",
            )
        if self.limiter is not None:
            await self.limiter.hit(self.start_rate, user_id)
        now = datetime.now(UTC)
        watch = WatchRow(
            watch_id=uuid.uuid4(),
            user_id=user_id,
            scenario_id=scenario.id,
            title=scenario.title.get(language),
            language=language,
            speakers=speakers_for(scenario, self.content, language),
            max_turns=turns,
            pace_seconds=pace,
            paused=False,
            generation=0,
            status="running",
            ended_reason=None,
            started_at=now,
            ended_at=None,
            last_viewed_at=now,
        )
        await self.repository.create(watch, self._turn_request(watch, 0, first_speaker(scenario), 0, now))
        self.events_written()
        session_started("watch")
        return watch

    async def _scenario_for(self, topic: str, language: str, token: str) -> Scenario:
        for found in await self.finder.find(topic, language=language, token=token):
            scenario = self._scenarios.get(found)
            if scenario is not None and scenario.consent is None:
                return scenario
        raise NotFound("no scenario fits that topic; try other words or pick a scenario", field="topic")

    async def _own(self, raw_id: str, user_id: str) -> WatchRow:
        watch = await self.repository.get(_watch_id(raw_id))
        if watch is None or watch.user_id != user_id:
            raise NotFound("no such dialogue")
        return watch

    async def get(self, watch_id: str, user_id: str) -> tuple[WatchRow, list[StoredTurn]]:
        watch = await self._own(watch_id, user_id)
        return watch, await self.repository.turns(watch.watch_id)

    # ------------------------------------------------------------------ the stream

    async def open_events(self, watch_id: str, user_id: str, *, after: int | None = None) -> AsyncIterator[WatchEvent]:
        """Check first (errors raise here, before a byte streams), then return the stream: the
        stored turns after `after`, the state, then whatever happens, until the dialogue ends."""
        watch = await self._own(watch_id, user_id)
        return self._events(watch, -1 if after is None else after)

    async def _events(self, watch: WatchRow, after: int) -> AsyncIterator[WatchEvent]:
        watch_id = watch.watch_id
        last = after
        waiting_audio: set[int] = set()
        state: tuple[bool, float] | None = None
        loop = asyncio.get_running_loop()
        next_touch = 0.0
        async with self.live.listen(str(watch_id)) as notices:
            while True:
                now = loop.time()
                if now >= next_touch and not watch.ended:
                    await self.repository.touch(watch_id)  # somebody is watching: keep going
                    next_touch = now + self.settings.watch_heartbeat_s
                current = await self.repository.get(watch_id)
                if current is None:
                    return
                watch = current
                for turn in await self.repository.turns(watch_id, after=last):
                    yield TurnEvent(turn)
                    last = turn.turn_index
                    if not turn.audio_ready and not turn.intervention:
                        waiting_audio.add(turn.turn_index)
                for index, turn_id in await self.repository.audio_ready_among(watch_id, sorted(waiting_audio)):
                    waiting_audio.discard(index)
                    yield AudioEvent(str(turn_id), index)
                if state != (watch.paused, watch.pace_seconds):
                    state = (watch.paused, watch.pace_seconds)
                    yield StateEvent(watch.paused, watch.pace_seconds)
                if watch.ended:
                    yield EndedEvent(watch.ended_reason or "stopped", await self.repository.turn_count(watch_id))
                    return
                wait = min(self.settings.watch_poll_s, max(0.05, next_touch - loop.time()))
                await notices.wait(wait)

    # ------------------------------------------------------------------ the learner acts

    async def intervene(self, *, watch_id: str, user_id: str, message: str, target: str = "") -> tuple[str, int]:
        message = message.strip()
        if not message:
            raise InvalidInput("message must not be empty", field="message")
        if unstorable(message):
            raise InvalidInput("message contains characters that cannot be stored (NUL)", field="message")
        if len(message) > self.settings.watch_max_message_chars:
            raise InvalidInput(
                f"message is too long ({len(message)} characters; at most {self.settings.watch_max_message_chars})",
                field="message",
            )
        target = target or CHARACTER
        if target not in SPEAKERS:
            raise InvalidInput("target_speaker_id must be 'a', 'b' or empty", field="target_speaker_id")
        watch = await self._own(watch_id, user_id)
        if watch.ended:
            raise Conflict("this dialogue has ended; start a new one to watch more", field="watch_id")
        if self.limiter is not None:
            await self.limiter.hit(self.message_rate, user_id)
        turn = NewTurn(uuid.uuid4(), LEARNER, message, intervention=True, addressed_to=target)
        now = datetime.now(UTC)

        def answer(row: WatchRow, index: int, generation: int) -> events_pb2.WatchTurnRequest:
            return self._turn_request(row, index, target, generation, now, intervention=message)

        index = await self.repository.intervene(watch.watch_id, turn, answer)
        if index is None:
            raise Conflict("this dialogue has ended; start a new one to watch more", field="watch_id")
        self.events_written()
        await self.live.publish(str(watch.watch_id), "turn")
        return str(turn.turn_id), index

    async def control(
        self, *, watch_id: str, user_id: str, paused: bool | None = None, pace_seconds: float | None = None
    ) -> Controlled:
        pace = _check_pace(pace_seconds) if pace_seconds is not None else None
        watch = await self._own(watch_id, user_id)
        scenario = self.scenario(watch.scenario_id)
        now = datetime.now(UTC)

        def resume(row: WatchRow, turns: list[TurnView]) -> events_pb2.WatchTurnRequest:
            speaker = next_speaker(turns, first_speaker(scenario))
            return self._turn_request(row, len(turns), speaker, row.generation, now)

        updated, changed = await self.repository.control(
            watch.watch_id, paused=paused, pace_seconds=pace, make_request=resume
        )
        current = updated or watch
        if changed:
            self.events_written()
            await self.live.publish(str(watch.watch_id), "state")
        return Controlled(current.paused, current.pace_seconds, current.ended)

    async def stop(self, *, watch_id: str, user_id: str) -> Stopped:
        watch = await self._own(watch_id, user_id)
        changed = False if watch.ended else await self.repository.end(watch.watch_id, "stopped")
        if changed:
            session_ended("watch", "stopped")
            await self.live.publish(str(watch.watch_id), "ended")
        current = await self.repository.get(watch.watch_id) or watch
        count = await self.repository.turn_count(watch.watch_id)
        return Stopped(str(watch.watch_id), count, not changed, current.ended_at)

    async def notes(self, *, watch_id: str, user_id: str) -> WatchNotes:
        watch, turns = await self.get(watch_id, user_id)
        scenario = self.scenario(watch.scenario_id)
        views = []
        for position, turn in enumerate(turns):
            view = turn.view()
            if turn.intervention and not turn.move:
                # Nobody answered it yet: the script reads it now.
                earlier = [t.view() for t in turns[:position]]
                view = dataclasses.replace(
                    view, move=(await self._read_move(scenario, earlier, turn.text, watch)).intent
                )
            views.append((turn.turn_index, str(turn.turn_id), view))
        learner = watch.speaker(MODEL_LEARNER)
        name = self.content.character(learner.character_id).persona(watch.language).name
        return build_notes(scenario, views, language=watch.language, learner_name=name)

    # ------------------------------------------------------------------ the worker

    def _turn_request(
        self,
        watch: WatchRow,
        turn_index: int,
        speaker_id: str,
        generation: int,
        not_before: datetime,
        *,
        intervention: str = "",
    ) -> events_pb2.WatchTurnRequest:
        request = events_pb2.WatchTurnRequest(
            event_id=str(uuid.uuid4()),
            watch_id=str(watch.watch_id),
            user_id=watch.user_id,
            turn_index=turn_index,
            speaker_id=speaker_id,
            language=watch.language,
            intervention_text=intervention,
            generation=generation,
        )
        request.occurred_at.FromDatetime(datetime.now(UTC))
        request.not_before.FromDatetime(not_before)
        return request

    @staticmethod
    def _applies(watch: WatchRow | None, request: events_pb2.WatchTurnRequest) -> bool:
        return (
            watch is not None
            and not watch.ended
            and not watch.paused
            and watch.generation == request.generation
            and request.speaker_id in SPEAKERS
        )

    async def handle_turn_request(
        self, request: events_pb2.WatchTurnRequest, envelope: Envelope | None = None
    ) -> Handled:
        """Produce one turn, once in effect: a request that no longer applies is dropped."""
        try:
            watch_id = uuid.UUID(request.watch_id)
        except ValueError:
            raise PermanentFailure("the turn request's watch_id is not a UUID") from None
        watch = await self.repository.get(watch_id)
        if not self._applies(watch, request) or await self.repository.turn_count(watch_id) != request.turn_index:
            return Handled.DUPLICATE
        early = request.not_before.ToDatetime(tzinfo=UTC) - datetime.now(UTC)
        if early > timedelta(0):
            # The pace: wait here (the bus extends the message's lease meanwhile), bounded.
            await asyncio.sleep(min(early.total_seconds(), self.settings.watch_max_wait_s))
            watch = await self.repository.get(watch_id)
            if not self._applies(watch, request):
                return Handled.DUPLICATE
        assert watch is not None
        unwatched = datetime.now(UTC) - watch.last_viewed_at
        if unwatched > timedelta(seconds=self.settings.watch_no_viewer_s):
            if await self.repository.end(watch_id, "no_viewer", generation=request.generation):
                session_ended("watch", "no_viewer")
                log.info("dialogue ended: nobody watches it", extra={"watch_id": str(watch_id)})
                await self.live.publish(str(watch_id), "ended")
            return Handled.OK
        turns = await self.repository.turns(watch_id)
        if len(turns) != request.turn_index:
            return Handled.DUPLICATE
        scenario = self._scenarios.get(watch.scenario_id)
        if scenario is None:  # the catalogue dropped it since (a newer release)
            if await self.repository.end(watch_id, "error", generation=request.generation):
                session_ended("watch", "error")
            await self.live.publish(str(watch_id), "ended")
            return Handled.OK
        ai_turns = sum(1 for t in turns if not t.intervention)
        if ai_turns >= watch.max_turns:
            if await self.repository.end(watch_id, "max_turns", generation=request.generation):
                session_ended("watch", "max_turns")
                await self.live.publish(str(watch_id), "ended")
            return Handled.OK
        produced = await self._produce(watch, scenario, turns, request.speaker_id)
        last_allowed = ai_turns + 1 >= watch.max_turns
        # The character's answer to the ending move reaches the scenario's natural end; the model
        # learner's closing line after it ends the dialogue (or that answer, at the turn limit).
        natural_end = produced.ends and (request.speaker_id == MODEL_LEARNER or last_allowed)
        end_reason = "finished" if natural_end else ("max_turns" if last_allowed else None)
        text = produced.text
        if end_reason == "max_turns" and request.speaker_id == CHARACTER:
            text = joined(text, scenario.closing.get(watch.language), watch.language)
        turn = NewTurn(uuid.uuid4(), request.speaker_id, text, produced.move, produced.engine_id)

        def next_request(row: WatchRow, shapes: list[TurnView]) -> events_pb2.WatchTurnRequest:
            speaker = next_speaker(shapes, first_speaker(scenario))
            not_before = datetime.now(UTC) + timedelta(seconds=row.pace_seconds)
            return self._turn_request(row, len(shapes), speaker, row.generation, not_before)

        stored = await self.repository.store_turn(
            watch_id,
            turn_index=request.turn_index,
            generation=request.generation,
            turn=turn,
            events=[self._speech_request(watch, turn)],
            end_reason=end_reason,
            next_request=next_request,
            learner_move=produced.learner_move,
        )
        if not stored:
            return Handled.DUPLICATE
        self.events_written()
        if end_reason:
            session_ended("watch", end_reason)
        await self.live.publish(str(watch_id), "turn")
        return Handled.OK

    def _speech_request(self, watch: WatchRow, turn: NewTurn) -> events_pb2.TtsRequest:
        """Synthesise the turn now, so its audio is ready before the page plays it."""
        event = events_pb2.TtsRequest(
            event_id=str(uuid.uuid4()),
            request_id=str(turn.turn_id),
            text=turn.text,
            language=watch.language,
            session_id=str(watch.watch_id),
            turn_id=str(turn.turn_id),
            user_id=watch.user_id,
            character_id=watch.speaker(turn.speaker_id).character_id,
        )
        event.occurred_at.FromDatetime(datetime.now(UTC))
        return event

    async def _read_move(
        self, scenario: Scenario, history: list[TurnView], message: str, watch: WatchRow
    ) -> OfflineReply:
        """The scenario's script reads a line as the learner's move, exactly as in a roleplay,
        and picks the character's answer (the move's reply, or an in-character line that steers
        back)."""
        character = self.content.character(scenario.character)
        request = DialogueRequest(
            system_instruction="",
            message=message,
            history=tuple(Turn("model" if t.speaker_id == CHARACTER else "user", t.text) for t in history),
            partner=character.id,
            situation=scenario.id,
            language=watch.language,  # type: ignore[arg-type]
            temperature=0.0,
            persona_name=character.persona(watch.language).name,
            time_of_day=scenario.time_of_day,
        )
        return await asyncio.to_thread(self.script(scenario).choose_reply, request)

    async def _produce(self, watch: WatchRow, scenario: Scenario, turns: list[StoredTurn], speaker: str) -> Produced:
        views = [t.view() for t in turns]
        conversation = self.conversation(scenario)
        language = watch.language
        script_id = OfflineDialogueEngine.info.id
        if speaker == CHARACTER:
            opening = conversation.opening(language) if not turns else None
            if opening is not None:
                return Produced(opening.text, "", False, script_id)
            last = turns[-1]
            learner_move = None
            if last.intervention or last.move not in scenario.moves:
                # The learner stepped in (or a generated line made no authored move): the script reads it.
                read = await self._read_move(scenario, views[:-1], last.text, watch)
                move, offline = read.intent, read.text
                if last.intervention:
                    learner_move = (last.turn_index, move)
            else:
                line = conversation.reply_to(last.move, views, language)
                move, offline = line.move, line.text
            text, engine_id = await self._generated_or(offline, watch, scenario, views, CHARACTER, last.view())
            return Produced(text, move, conversation.ends(move), engine_id, learner_move)

        rng = seeded(watch.watch_id, len(turns))
        pending = pending_intervention(views, MODEL_LEARNER)
        learner_move = None
        if pending is not None and not pending.move:
            position = max(i for i, t in enumerate(views) if t.intervention)
            read = await self._read_move(scenario, views[:position], pending.text, watch)
            pending = dataclasses.replace(pending, move=read.intent)
            learner_move = (turns[position].turn_index, read.intent)
        bridge = conversation.bridge(pending, language, rng) if pending is not None else ""
        if conversation.closed(views):
            # The character accepted the way forward: a short, warm close, and the dialogue ends.
            relation = self.content.character(scenario.character).relation
            closing = conversation.closing(relation, language, rng)
            return Produced(joined(bridge, closing.text, language), "", True, script_id, learner_move)
        line = conversation.learner_line(views, language, rng)
        offline = joined(bridge, line.text, language)
        if self.generative is None:
            return Produced(offline, line.move, False, script_id, learner_move)
        text, engine_id = await self._generated_or(
            offline, watch, scenario, views, MODEL_LEARNER, views[-1] if views else None, next_step=line.text
        )
        move = line.move
        if engine_id != script_id:
            # What Gemini said is read by the script: the move it made decides the reply.
            read = await self._read_move(scenario, views, text, watch)
            move = read.intent if read.intent in scenario.moves else ""
        return Produced(text, move, False, engine_id, learner_move)

    async def _generated_or(
        self,
        offline: str,
        watch: WatchRow,
        scenario: Scenario,
        views: list[TurnView],
        speaker: str,
        last: TurnView | None,
        *,
        next_step: str = "",
    ) -> tuple[str, str]:
        """Gemini's line for the speaker when configured, else (or when it is unavailable) the
        authored one: (text, engine id)."""
        script_id = OfflineDialogueEngine.info.id
        if self.generative is None:
            return offline, script_id
        language = watch.language
        pending = pending_intervention(views, speaker)
        character = self.content.character(scenario.character)
        me = watch.speaker(speaker)
        learner = self.content.character(watch.speaker(MODEL_LEARNER).character_id)
        if speaker == CHARACTER:
            instruction = prompts.character_instruction(
                scenario,
                character,
                learner.persona("ja").full_name,
                language,
                intervention=last.text if last is not None and last.intervention else "",
            )
        else:
            instruction = prompts.learner_instruction(
                scenario,
                learner,
                character,
                language,
                next_step=next_step,
                intervention=pending.text if pending is not None else "",
            )

        def said(turn: TurnView) -> Turn:
            if turn.speaker_id == speaker:
                return Turn("model", turn.text)
            if turn.intervention and speaker == MODEL_LEARNER:
                return Turn("user", f"（見ている学習者）{turn.text}")
            return Turn("user", turn.text)

        history = tuple(said(t) for t in views)
        if history and history[-1].role == "user":
            message, history = history[-1].text, history[:-1]
        else:
            message = "（会話を始めてください）" if language == "ja" else "(Please start the conversation.)"
        recent, earlier = fit_history(history, self.settings.watch_history_turns)
        if earlier:
            instruction += f"\nこれまでの流れ（古い順、要約。you=あなた）:\n{earlier}"
        request = DialogueRequest(
            system_instruction=instruction,
            message=message,
            history=recent,
            partner=me.character_id,
            situation=scenario.id,
            language=language,  # type: ignore[arg-type]
            temperature=0.7,
            max_output_tokens=300,
            persona_name=me.display_name,
            time_of_day=scenario.time_of_day,
        )
        engine = self.generative.info
        try:
            parts = [chunk.text async for chunk in self.generative.stream_reply(request) if chunk.text]
        except AIUnavailableError as exc:
            AI_REPLIES.labels(engine.id, "unavailable").inc()
            log.warning("gemini unavailable; the scenario's own line is said instead: %s", exc)
            return offline, script_id
        persona = self.content.character(me.character_id).persona(language)
        text = clean_generated("".join(parts), (persona.name, persona.full_name, me.display_name))
        if not text:
            AI_REPLIES.labels(engine.id, "empty").inc()
            return offline, script_id
        AI_REPLIES.labels(engine.id, "ok").inc()
        return text, engine.id

    async def handle_tts_ready(self, event: events_pb2.TtsReady, envelope: Envelope | None = None) -> Handled:
        """A turn's audio is in the TTS cache: record it (once per event) and tell the streams."""
        event_id = envelope.event_id if envelope is not None else event.event_id
        if not event_id:
            raise PermanentFailure("the tts.ready event has no event_id")
        if event.error or not event.audio_key:
            return Handled.OK  # no audio: the page falls back to synthesising on demand
        try:
            turn_id, watch_id = uuid.UUID(event.turn_id), uuid.UUID(event.session_id)
        except ValueError:
            return Handled.OK  # not a turn of a dialogue (another service's speech)
        if await self.repository.already_handled(AUDIO_SUBSCRIPTION, event_id):
            return Handled.DUPLICATE
        marked = await self.repository.mark_audio_ready(
            turn_id, watch_id=watch_id, consumer=AUDIO_SUBSCRIPTION, event_id=event_id
        )
        if marked is None:
            return Handled.DUPLICATE
        await self.live.publish(str(watch_id), "audio")
        return Handled.OK
