"""Scenario practice: the catalogue (list, filter, search by meaning) and roleplay sessions.

A session plays one scenario. Each learner message is read by the scenario's own script (the
offline engine over the scenario's moves: workplace_content.dialogue.scenario_script), which
says which move the learner made; that move decides whether the scenario has reached its
natural end, and travels with the turn to feedback for the coaching report. The reply comes
from the script too when no generative engine is configured, else from Gemini playing the
character from the same file. HTTP and gRPC both call this class.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential_jitter
from workplace.events.v1 import events_pb2
from workplace_content import ContentCatalogue, Scenario
from workplace_content.dialogue import scenario_script
from workplace_kit.ai.embeddings import Embedder
from workplace_kit.ai.metrics import AI_REPLIES
from workplace_kit.ai.offline_dialogue import OfflineDialogueEngine, split_into_chunks
from workplace_kit.ai.types import (
    AIUnavailableError,
    DialogueEngine,
    DialogueRequest,
    ReplyDelta,
    ReplyStarted,
    Turn,
    fit_history,
)
from workplace_kit.business_metrics import session_ended, session_started
from workplace_kit.errors import Conflict, InvalidInput, NotFound, Unavailable, is_dependency_outage
from workplace_kit.ratelimit import Limiter, Rule
from workplace_kit.validation import unstorable

from . import prompts
from .catalogue_store import CatalogueStore, Filters
from .repository import ConcurrentTurnError, SessionRepository, SessionRow, StoredTurn
from .settings import ScenarioSettings

log = logging.getLogger(__name__)
LANGUAGES = ("ja", "en")
DIFFICULTIES = ("beginner", "intermediate", "advanced")


@dataclass(frozen=True)
class Page:
    scenarios: list[Scenario]
    next_offset: int | None
    total: int
    category_counts: dict[str, int]


@dataclass(frozen=True)
class Match:
    scenario: Scenario
    score: float


@dataclass(frozen=True)
class StartedSession:
    session: SessionRow
    scenario: Scenario
    opening: str
    opening_turn_id: str


@dataclass(frozen=True)
class ReplyDone:
    session_id: str
    user_turn_id: str
    reply_turn_id: str
    text: str
    turn_index: int
    move: str
    session_ended: bool
    end_reason: str


ReplyEvent = ReplyStarted | ReplyDelta | ReplyDone


@dataclass(frozen=True)
class Ended:
    session: SessionRow
    turn_count: int
    already_ended: bool


def language_of(value: str) -> str:
    """A request's language: "ja" (the default) or "en"."""
    if value and value not in LANGUAGES:
        raise InvalidInput("language must be 'ja', 'en' or empty", field="language")
    return value or "ja"


def offset_of(page_token: str) -> int:
    """Where a page starts: the next_page_token of the page before (an offset), empty for the first."""
    if page_token and not page_token.isdigit():
        raise InvalidInput("page_token is not valid", field="page_token")
    return int(page_token or 0)


def _session_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise InvalidInput("session_id is not a valid id", field="session_id") from None


class ScenarioService:
    def __init__(
        self,
        settings: ScenarioSettings,
        content: ContentCatalogue,
        store: CatalogueStore,
        sessions: SessionRepository,
        embedder: Embedder,
        generative: DialogueEngine | None,
        events_written: Callable[[], None],
        limiter: Limiter | None = None,
    ) -> None:
        self.settings = settings
        self.content = content
        self.store = store
        self.sessions = sessions
        self.embedder = embedder
        # None: the scenario scripts answer (offline); else Gemini (or a local model) plays the character.
        self.generative = generative
        self.events_written = events_written
        self.limiter = limiter
        self.message_rate = Rule(
            "scenario-messages",
            settings.scenario_messages_rate,
            f"Too many messages in a short time (at most {settings.scenario_messages_rate}); wait a moment",
        )
        self._scenarios = {s.id: s for s in content.scenarios}
        self._scripts: dict[str, OfflineDialogueEngine] = {}
        self._tags = sorted({t.lower() for s in content.scenarios for t in (*s.tags.ja, *s.tags.en)}, key=len)

    # ------------------------------------------------------------------ the catalogue

    def scenario(self, scenario_id: str) -> Scenario:
        try:
            return self._scenarios[scenario_id]
        except KeyError:
            raise NotFound(f"no scenario {scenario_id!r}") from None

    def script(self, scenario: Scenario) -> OfflineDialogueEngine:
        """The scenario's own engine (built on first use: a few hundred ms from the shared cache)."""
        engine = self._scripts.get(scenario.id)
        if engine is None:
            catalogue = scenario_script(scenario, self.content, cache_file=self.settings.scenario_vector_cache)
            engine = self._scripts[scenario.id] = OfflineDialogueEngine(catalogue, self.embedder)
        return engine

    def _filters(self, category: str, difficulty: str, tag: str) -> Filters:
        if category and category not in {c.id for c in self.content.categories}:
            known = ", ".join(c.id for c in self.content.categories)
            raise InvalidInput(f"unknown category {category!r} (known: {known})", field="category_id")
        if difficulty and difficulty not in DIFFICULTIES:
            raise InvalidInput(f"difficulty must be one of {', '.join(DIFFICULTIES)}", field="difficulty")
        return Filters(category=category, difficulty=difficulty, tag=tag.strip())

    async def list_scenarios(
        self, *, category: str = "", difficulty: str = "", tag: str = "", page_size: int = 0, page_token: str = ""
    ) -> Page:
        if page_size < 0 or page_size > 100:
            raise InvalidInput("page_size must be between 0 and 100", field="page_size")
        offset = offset_of(page_token)
        filters = self._filters(category, difficulty, tag)
        limit = page_size or self.settings.scenario_page_size
        ids, total = await self.store.list_ids(filters, offset, limit)
        counts = await self.store.category_counts(filters)
        scenarios = [self._scenarios[i] for i in ids if i in self._scenarios]
        next_offset = offset + limit if offset + limit < total else None
        return Page(scenarios, next_offset, total, counts)

    async def search(self, query: str, *, limit: int = 0, category: str = "", difficulty: str = "") -> list[Match]:
        query = query.strip()
        if not query:
            raise InvalidInput("query must not be empty", field="query")
        if len(query) > 500:
            raise InvalidInput("query is too long (at most 500 characters)", field="query")
        if limit < 0 or limit > 50:
            raise InvalidInput("limit must be between 0 and 50", field="limit")
        filters = self._filters(category, difficulty, "")
        vector = await self.embedder.aembed_query(query)
        lowered = query.lower()
        named = [tag for tag in self._tags if tag in lowered]
        found = await self.store.search(vector, named, filters, limit or self.settings.scenario_search_limit)
        return [Match(self._scenarios[i], score) for i, score in found if i in self._scenarios]

    # ------------------------------------------------------------------ roleplay sessions

    async def start_session(
        self, *, user_id: str, scenario_id: str, language: str = "", consent_given: bool = False
    ) -> StartedSession:
        scenario = self.scenario(scenario_id)
        language = language_of(language)
        if scenario.consent is not None and not consent_given:
            raise Conflict(
                "this scenario asks for your consent before it starts: read its notice and agree to it",
                field="consent_given",
            )
        opening = scenario.opening.get(language) if scenario.opening else ""
        session = SessionRow(uuid.uuid4(), user_id, scenario.id, language, datetime.now(UTC), None, None)
        opening_turn_id = uuid.uuid4() if opening else None
        await self.sessions.create(session, opening, opening_turn_id)
        session_started("scenario")
        return StartedSession(session, scenario, opening, str(opening_turn_id or ""))

    async def _own_session(self, raw_id: str, user_id: str) -> SessionRow:
        session = await self.sessions.get(_session_id(raw_id))
        if session is None or session.user_id != user_id:
            raise NotFound("no such roleplay session")
        return session

    async def get_session(self, raw_id: str, user_id: str) -> tuple[SessionRow, Scenario, list[StoredTurn]]:
        session = await self._own_session(raw_id, user_id)
        return session, self.scenario(session.scenario_id), await self.sessions.turns(session.session_id)

    async def open_reply(self, *, user_id: str, session_id: str, message: str) -> AsyncIterator[ReplyEvent]:
        """Check everything first (errors raise here, before a byte streams), then return the stream."""
        message = message.strip()
        if not message:
            raise InvalidInput("message must not be empty", field="message")
        if unstorable(message):
            raise InvalidInput("message contains characters that cannot be stored (NUL)", field="message")
        if len(message) > self.settings.scenario_max_message_chars:
            raise InvalidInput(
                f"message is too long ({len(message)} characters; at most {self.settings.scenario_max_message_chars})",
                field="message",
            )
        session = await self._own_session(session_id, user_id)
        if session.ended_at is not None:
            raise Conflict("this roleplay has ended; start the scenario again to practise more", field="session_id")
        if self.limiter is not None:
            await self.limiter.hit(self.message_rate, user_id)
        scenario = self.scenario(session.scenario_id)
        turns = await self.sessions.turns(session.session_id)
        return self._stream(session, scenario, turns, message)

    async def _stream(
        self, session: SessionRow, scenario: Scenario, turns: list[StoredTurn], message: str
    ) -> AsyncIterator[ReplyEvent]:
        language = session.language
        character = self.content.character(scenario.character)
        history = tuple(Turn("user" if t.role == "user" else "model", t.text) for t in turns)
        # A generative engine gets the latest exchanges as they were and the older ones condensed
        # into its instruction; the scenario's script reads the whole conversation.
        recent, earlier = fit_history(history, self.settings.scenario_history_turns)
        learner_turns = sum(1 for t in turns if t.role == "user")
        request = DialogueRequest(
            system_instruction=prompts.system_instruction(scenario, character, language, earlier),
            message=message,
            history=recent,
            partner=character.id,
            situation=scenario.id,
            language=language,  # type: ignore[arg-type]
            temperature=0.0,
            persona_name=character.persona(language).name,
            time_of_day=scenario.time_of_day,
        )
        script = self.script(scenario)
        user_turn_id, reply_turn_id = uuid.uuid4(), uuid.uuid4()
        engine = self.generative.info if self.generative is not None else script.info
        yield ReplyStarted(str(session.session_id), str(user_turn_id), engine)
        # The script reads the move in either case (a worker thread: it embeds the message).
        chosen = await asyncio.to_thread(script.choose_reply, dataclasses.replace(request, history=history))
        move = chosen.intent
        parts: list[str] = []
        if self.generative is None:
            for piece in split_into_chunks(chosen.text):
                parts.append(piece)
                yield ReplyDelta(piece)
        else:
            try:
                async for chunk in self.generative.stream_reply(request):
                    if chunk.text:
                        parts.append(chunk.text)
                        yield ReplyDelta(chunk.text)
            except AIUnavailableError as exc:
                AI_REPLIES.labels(engine.id, "unavailable").inc()
                raise Unavailable(str(exc)) from exc
        text = "".join(parts).strip()
        if not text:
            raise Unavailable("the AI returned an empty reply; please try again")
        AI_REPLIES.labels(engine.id, "ok").inc()
        end_reason = ""
        if move in scenario.moves and scenario.moves[move].ends:
            end_reason = "completed"
        elif learner_turns + 1 >= scenario.max_turns:
            end_reason = "timeout"
            closing = scenario.closing.get(language)
            text = f"{text}{'' if language == 'ja' else ' '}{closing}"
            yield ReplyDelta(("" if language == "ja" else " ") + closing)
        now = datetime.now(UTC)
        turn_event = events_pb2.ConversationTurn(
            event_id=str(uuid.uuid4()),
            session_id=str(session.session_id),
            user_id=session.user_id,
            source_service="scenario",
            user_turn_id=str(user_turn_id),
            reply_turn_id=str(reply_turn_id),
            turn_index=learner_turns,
            learner_text=message,
            reply_text=text,
            language=language,
            partner=character.id,
            situation=scenario.id,
            engine_id=engine.id,
            move=move,
        )
        turn_event.occurred_at.FromDatetime(now)
        ended_event = None
        if end_reason:
            ended_event = self._ended_event(session, learner_turns + 1, end_reason, now)
        try:
            await self._store(
                session,
                expected_index=len(turns),
                user_turn_id=user_turn_id,
                user_text=message,
                move=move,
                reply_turn_id=reply_turn_id,
                reply_text=text,
                engine_id=engine.id,
                events=[turn_event] + ([ended_event] if ended_event else []),
                end_reason=end_reason or None,
            )
        except ConcurrentTurnError:
            raise Conflict("another message of this roleplay was answered at the same time; reload it") from None
        self.events_written()
        if end_reason:
            session_ended("scenario", end_reason)
        yield ReplyDone(
            str(session.session_id),
            str(user_turn_id),
            str(reply_turn_id),
            text,
            learner_turns,
            move,
            bool(end_reason),
            end_reason,
        )

    async def _store(self, session: SessionRow, **exchange: Any) -> None:
        """Store a finished exchange, retrying a database hiccup for a few seconds; if it stays
        down the learner is told the turn did not count (nothing half-stored)."""
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_delay(self.settings.scenario_store_retry_s),
                wait=wait_exponential_jitter(initial=0.2, max=2.0),
                retry=retry_if_exception(is_dependency_outage),
                reraise=True,
            ):
                with attempt:
                    await self.sessions.store_exchange(session, **exchange)
        except Exception as exc:
            if not is_dependency_outage(exc):
                raise
            log.warning(
                "roleplay turn could not be stored", extra={"session_id": str(session.session_id)}, exc_info=True
            )
            raise Unavailable(
                "the reply could not be saved (the database is unavailable); this turn does not count: send it again"
            ) from exc

    def _ended_event(self, session: SessionRow, turn_count: int, reason: str, now: datetime) -> events_pb2.SessionEnded:
        event = events_pb2.SessionEnded(
            event_id=str(uuid.uuid4()),
            session_id=str(session.session_id),
            user_id=session.user_id,
            source_service="scenario",
            scenario_id=session.scenario_id,
            turn_count=turn_count,
            reason=reason,
            language=session.language,
        )
        event.started_at.FromDatetime(session.started_at)
        event.occurred_at.FromDatetime(now)
        return event

    async def end_session(self, *, user_id: str, session_id: str, reason: str = "") -> Ended:
        reason = reason or "user"
        if reason not in ("user", "completed", "timeout"):
            raise InvalidInput("reason must be 'user', 'completed' or 'timeout'", field="reason")
        session = await self._own_session(session_id, user_id)
        if session.ended_at is not None:
            return Ended(session, await self.sessions.learner_turns(session.session_id), True)
        turn_count = await self.sessions.learner_turns(session.session_id)
        event = self._ended_event(session, turn_count, reason, datetime.now(UTC))
        ended, changed = await self.sessions.end(session, reason, event)
        if changed:
            self.events_written()
            session_ended("scenario", reason)
        return Ended(ended, turn_count, not changed)
