"""Free-chat practice: one learner message in, one streamed in-character reply out.

HTTP and gRPC both call `ChatService.open_reply` and iterate the result, so the two
transports cannot drift apart. Nothing is stored until the reply is complete: a failed AI
call leaves the session exactly as it was.

The database is checked before anything streams, so an outage is a plain 503 (UNAVAILABLE)
with nothing half-done. If it fails while a reply streams, storing is retried for a few
seconds; if that fails too, the stream ends with a `not_saved` error, so the learner knows the
turn did not count and can send it again.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast
from zoneinfo import ZoneInfo

from tenacity import AsyncRetrying, retry_if_exception, stop_after_delay, wait_exponential_jitter
from workplace.events.v1 import events_pb2
from workplace_kit.ai.language import Language, detect_language
from workplace_kit.ai.metrics import AI_FIRST_TOKEN_SECONDS, AI_REPLIES
from workplace_kit.ai.offline_dialogue import Catalogue, Character, Situation, time_of_day_at
from workplace_kit.ai.types import (
    AIUnavailableError,
    DialogueEngine,
    DialogueRequest,
    ReplyDelta,
    ReplyStarted,
)
from workplace_kit.business_metrics import session_ended, session_started
from workplace_kit.cache import AIResponseCache
from workplace_kit.errors import Conflict, InvalidInput, NotFound, Unavailable, is_dependency_outage
from workplace_kit.ratelimit import Limiter, Rule
from workplace_kit.validation import unstorable

from . import prompts
from .repository import ChatRepository, ConcurrentTurnError, Session, SessionEndedError, StoredMessage
from .settings import ChatSettings

log = logging.getLogger(__name__)
LANGUAGES = ("ja", "en")


@dataclass(frozen=True)
class ReplyCommand:
    user_id: str
    message: str
    partner: str = ""  # a character id; empty: the catalogue's first
    situation: str = ""  # a situation id; empty: the catalogue's first
    session_id: str = ""
    language: str = ""
    temperature: float | None = None


@dataclass(frozen=True)
class ReplyDone:
    session_id: str
    user_turn_id: str
    reply_turn_id: str
    text: str
    finish_reason: str
    cached: bool


ReplyEvent = ReplyStarted | ReplyDelta | ReplyDone


class ReplyNotSaved(Unavailable):
    """The reply was shown but could not be stored: the turn does not count; send it again."""

    error_code = "not_saved"


SENTENCE_ENDS = ("。", "！", "？", "!", "?", ".", "\n", "」")


class DeltaGatherer:
    """Gathers streamed text into fewer deltas: the first at once (the learner sees words as
    soon as they exist), later ones when ``interval`` seconds have passed since the last delta
    sent or the text reaches a sentence end. Nothing waits on a timer: text is held at most
    until the next chunk arrives or the stream ends."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic):
        self.interval = interval
        self.clock = clock
        self.held: list[str] = []
        self.sent_at: float | None = None

    def add(self, text: str) -> str | None:
        self.held.append(text)
        now = self.clock()
        if self.sent_at is None or now - self.sent_at >= self.interval or text.rstrip(" ").endswith(SENTENCE_ENDS):
            self.sent_at = now
            return self.flush()
        return None

    def flush(self) -> str | None:
        if not self.held:
            return None
        text, self.held = "".join(self.held), []
        return text


class ChatService:
    def __init__(
        self,
        settings: ChatSettings,
        catalogue: Catalogue,
        repository: ChatRepository,
        engine: DialogueEngine,
        cache: AIResponseCache,
        events_written: Callable[[], None],
        limiter: Limiter | None = None,
    ):
        self.settings = settings
        self.catalogue = catalogue
        self.repository = repository
        self.engine = engine
        self.cache = cache
        # Called after a transaction wrote events to the outbox (the relay publishes at once).
        self.events_written = events_written
        # Abuse and AI cost: messages per minute and AI replies per day, per learner.
        self.limiter = limiter
        self.message_rate = Rule(
            "chat-messages",
            settings.chat_messages_rate,
            f"Too many messages in a short time (at most {settings.chat_messages_rate}); wait a moment and send again",
        )
        self.daily_replies = Rule(
            "chat-ai-replies",
            settings.chat_ai_replies_rate,
            f"Today's practice limit is reached ({settings.chat_ai_replies_rate} replies); please continue tomorrow",
        )
        self.situations: dict[str, Situation] = {s.id: s for s in catalogue.situations}
        self.learner_timezone = ZoneInfo(settings.chat_learner_timezone)

    def list_situations(self) -> list[Situation]:
        return list(self.situations.values())

    def list_characters(self) -> list[Character]:
        return list(self.catalogue.characters)

    @property
    def max_message_chars(self) -> int:
        return self.settings.chat_max_message_chars

    async def open_reply(self, cmd: ReplyCommand) -> AsyncIterator[ReplyEvent]:
        """Validate and load everything first (errors raise here, before any byte is streamed),
        then return the event stream."""
        message = cmd.message.strip()
        if not message:
            raise InvalidInput("message must not be empty", field="message")
        if unstorable(message):  # gRPC callers: HTTP requests are checked by their schema
            raise InvalidInput("message contains characters that cannot be stored (NUL)", field="message")
        if len(message) > self.settings.chat_max_message_chars:
            raise InvalidInput(
                f"message is too long ({len(message)} characters; at most {self.settings.chat_max_message_chars})",
                field="message",
            )
        if cmd.language and cmd.language not in LANGUAGES:
            raise InvalidInput("language must be 'ja', 'en' or empty", field="language")
        temperature = self.settings.chat_default_temperature if cmd.temperature is None else cmd.temperature
        if not 0 <= temperature <= 2:
            raise InvalidInput("temperature must be between 0 and 2", field="temperature")
        user_id = cmd.user_id.strip() or "anonymous"
        if self.limiter is not None:
            await self.limiter.hit(self.message_rate, user_id)
            await self.limiter.hit(self.daily_replies, user_id)

        if cmd.session_id:
            session = await self._load_session(cmd.session_id, user_id)
            if session.ended_at is not None:
                raise Conflict("this conversation has ended; start a new one", field="session_id")
            is_new = False
            count, history = await self.repository.recent_turns(session.session_id, self.settings.chat_history_turns)
        else:
            partners = self.catalogue.partners
            partner = cmd.partner or partners[0]
            if partner not in partners:
                raise InvalidInput(f"partner must be one of {', '.join(partners)}", field="partner")
            situation_id = cmd.situation or next(iter(self.situations))
            if situation_id not in self.situations:
                raise InvalidInput(
                    f"unknown situation {situation_id!r}; choose one of {', '.join(self.situations)}",
                    field="situation",
                )
            # Nothing is read for a new session: check the database answers before streaming.
            await self.repository.ping()
            session = Session(uuid.uuid4(), user_id, partner, situation_id, cmd.language or None)
            is_new = True
            count, history = 0, []

        # A "ja" or "en": cmd.language is checked above, a session's language when it was stored.
        language = cast(Language, cmd.language or session.language or detect_language(message))
        persona = self.catalogue.persona(session.partner, language)
        situation = self.situations.get(session.situation) or next(iter(self.situations.values()))
        # The situation's own time (a morning greeting is in the morning), else the learner's clock.
        time_of_day = situation.time_of_day or time_of_day_at(datetime.now(self.learner_timezone))
        request = DialogueRequest(
            system_instruction=prompts.system_instruction(
                self.catalogue.persona(session.partner, "ja"),
                situation,
                time_of_day,
                english=self.catalogue.persona(session.partner, "en"),
            ),
            message=message,
            history=tuple(history),
            partner=session.partner,
            situation=session.situation,
            language=language,
            temperature=temperature,
            persona_name=persona.name,
            time_of_day=time_of_day,
        )
        return self._stream(session, is_new, count, request)

    async def _load_session(self, raw_id: str, user_id: str | None) -> Session:
        """The session, if it exists and (when user_id is given) belongs to that user."""
        try:
            session_id = uuid.UUID(raw_id)
        except ValueError:
            raise InvalidInput("session_id is not a valid id", field="session_id") from None
        session = await self.repository.get_session(session_id)
        if session is None or (user_id is not None and session.user_id != user_id):
            raise NotFound("no such chat session")
        return session

    async def _stream(
        self, session: Session, is_new: bool, count: int, request: DialogueRequest
    ) -> AsyncIterator[ReplyEvent]:
        user_turn_id, reply_turn_id = uuid.uuid4(), uuid.uuid4()
        cached = await self.cache.get(self.engine.info, request)
        engine = cached.engine if cached else self.engine.info
        yield ReplyStarted(str(session.session_id), str(user_turn_id), engine, cached is not None)

        if cached is not None:
            text, finish_reason = cached.text, cached.finish_reason
            AI_REPLIES.labels(engine.id, "cached").inc()
            yield ReplyDelta(text)
        else:
            parts: list[str] = []
            finish_reason = ""
            asked = time.perf_counter()
            gather = DeltaGatherer(self.settings.chat_delta_flush_ms / 1000)
            try:
                async for chunk in self.engine.stream_reply(request):
                    if chunk.text:
                        if not parts:
                            AI_FIRST_TOKEN_SECONDS.labels(engine.id).observe(time.perf_counter() - asked)
                        parts.append(chunk.text)
                        if (ready := gather.add(chunk.text)) is not None:
                            yield ReplyDelta(ready)
                    if chunk.final:
                        finish_reason = chunk.finish_reason
                if (rest := gather.flush()) is not None:
                    yield ReplyDelta(rest)
            except AIUnavailableError as exc:
                AI_REPLIES.labels(engine.id, "unavailable").inc()
                raise Unavailable(str(exc)) from exc
            text = "".join(parts).strip()
            if not text:
                AI_REPLIES.labels(engine.id, "unavailable").inc()
                raise Unavailable("the AI returned an empty reply; please try again")
            AI_REPLIES.labels(engine.id, "ok").inc()

        event = events_pb2.ConversationTurn(
            event_id=str(uuid.uuid4()),
            session_id=str(session.session_id),
            user_id=session.user_id,
            source_service="chat",
            user_turn_id=str(user_turn_id),
            reply_turn_id=str(reply_turn_id),
            turn_index=count // 2,
            learner_text=request.message,
            reply_text=text,
            language=request.language or "",
            partner=session.partner,
            situation=session.situation,
            engine_id=engine.id,
        )
        event.occurred_at.FromDatetime(datetime.now(UTC))
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_delay(self.settings.chat_store_retry_s),
                wait=wait_exponential_jitter(initial=0.2, max=2.0),
                retry=retry_if_exception(is_dependency_outage),
                reraise=True,
            ):
                with attempt:
                    await self.repository.store_exchange(
                        session,
                        is_new=is_new,
                        expected_index=count,
                        user_turn_id=user_turn_id,
                        user_text=request.message,
                        reply_turn_id=reply_turn_id,
                        reply_text=text,
                        engine_id=engine.id,
                        event=event,
                    )
        except ConcurrentTurnError:
            raise InvalidInput(
                "another message in this session was answered at the same time; reload the conversation"
            ) from None
        except SessionEndedError:
            raise Conflict("this conversation was ended meanwhile; start a new one", field="session_id") from None
        except Exception as exc:
            if not is_dependency_outage(exc):
                raise
            log.warning("reply could not be stored", extra={"session_id": str(session.session_id)}, exc_info=True)
            raise ReplyNotSaved(
                "the reply could not be saved (the database is unavailable); this turn does not count: "
                "send your message again"
            ) from exc
        self.events_written()
        if is_new:
            session_started("chat")
        if cached is None:
            await self.cache.put(engine, request, text, finish_reason)
        yield ReplyDone(
            str(session.session_id), str(user_turn_id), str(reply_turn_id), text, finish_reason, cached is not None
        )

    async def history(self, raw_session_id: str, user_id: str | None) -> tuple[Session, list[StoredMessage]]:
        session = await self._load_session(raw_session_id, user_id)
        return session, await self.repository.history(session.session_id)

    async def end_session(self, raw_session_id: str, user_id: str) -> tuple[Session, int, datetime, bool]:
        """End one of the learner's chats: it takes no more messages, and session.ended (in the
        same transaction) brings its coaching report. Ending it again changes nothing."""
        session = await self._load_session(raw_session_id, user_id)

        def event_of(turn_count: int, ended_at: datetime) -> events_pb2.SessionEnded:
            event = events_pb2.SessionEnded(
                event_id=str(uuid.uuid4()),
                session_id=str(session.session_id),
                user_id=session.user_id,
                source_service="chat",
                turn_count=turn_count,
                reason="user",
                language=session.language or "",
            )
            if session.created_at is not None:
                event.started_at.FromDatetime(session.created_at)
            event.occurred_at.FromDatetime(ended_at)
            return event

        turns, ended_at, changed = await self.repository.end(session, event_of)
        if changed:
            self.events_written()
            session_ended("chat", "user")
        return session, turns, ended_at, not changed
