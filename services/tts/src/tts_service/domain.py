"""Speech: which voice speaks a text, the audio (from the cache or synthesised sentence by
sentence), the voices listing, voice input, and the tts.requests consumer. No transport here:
http_api and grpc_api adapt these functions.

Synthesis runs in a thread pool (the engines are blocking and CPU-bound, Gemini network-bound).
A text's audio is keyed by everything that shapes it (audio.cache_key); the same text in the
same voice is synthesised once and then served from the cache, and two requests for it at the
same moment share one synthesis.

Gemini speech is paid: the engine reserves each sentence's characters against the day's budget
(budget.DailyBudget) before it speaks. When it cannot speak (budget spent, outage) a character
or the default voice falls back to its offline voice (unless WP_TTS_FALLBACK_OFFLINE=false); a
voice asked for by name has no stand-in, so the request fails with Unavailable (503, Retry-After).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from prometheus_client import Counter, Histogram
from workplace.events.v1 import events_pb2
from workplace_content import ContentCatalogue
from workplace_kit.ai.language import detect_language
from workplace_kit.bus import Envelope, Handled, PermanentFailure
from workplace_kit.errors import Conflict, InvalidInput, NotFound, Unavailable
from workplace_kit.ratelimit import Limiter, Rule

from .audio import FORMATS, MP3, Encoder, cache_key, encoder_for, normalise, silence, split_sentences
from .cache import AudioCache, CachedAudio
from .engines.base import Pcm, SpeechEngine, SpeechUnavailable, VoiceSpec
from .repository import RequestLedger
from .settings import TtsSettings
from .transcription import TranscriptionUnavailable
from .voices import GEMINI_ENGINE, VoiceTable

log = logging.getLogger(__name__)
# Set while a tts.requests event is handled: its synthesis runs on the background threads.
_AHEAD_OF_TIME: contextvars.ContextVar[bool] = contextvars.ContextVar("tts_ahead_of_time", default=False)

SYNTHESIS = Counter(
    "tts_synthesis_total", "Texts spoken, by engine and whether the audio came from the cache", ["engine", "cached"]
)
SENTENCES = Counter("tts_sentences_synthesised_total", "Sentences synthesised (not from the cache)", ["engine"])
SENTENCE_SECONDS = Histogram(
    "tts_sentence_synthesis_seconds",
    "Time to synthesise one sentence",
    ["engine"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, float("inf")),
)
FALLBACKS = Counter("tts_offline_fallback_total", "Texts spoken offline because Gemini could not speak", ["reason"])
REQUESTS = Counter("tts_requests_total", "tts.requests events answered, by outcome", ["outcome"])

SPEED_MIN, SPEED_MAX = 0.5, 2.0
CHUNK_BYTES = 32 * 1024  # a cached file is streamed in pieces of this size
_FAILED = {
    "ja": "音声を作成できませんでした。しばらくしてから、もう一度お試しください。",
    "en": "The audio could not be made right now. Please try again in a little while.",
}


class Transcriber(Protocol):
    """Speech to text (transcription.Transcriber)."""

    available: bool

    async def transcribe(self, audio: bytes, mime_type: str, language: str) -> str: ...


@dataclass(frozen=True)
class SpeechRequest:
    text: str
    language: str = ""  # "ja" | "en" | "": from the voice, else detected from the text
    voice: str = ""  # a voice id; wins over character_id
    character_id: str = ""  # a catalogue character: its fixed voice
    speed: float = 0.0  # 0: 1.0
    mime_type: str = ""  # "audio/mpeg" | "audio/wav" (or "mp3", "wav"); "": the default


@dataclass(frozen=True)
class Plan:
    """A request resolved: what to say, with which voice, in which encoding."""

    text: str  # normalised
    sentences: tuple[str, ...]
    language: str
    voice: VoiceSpec
    fallback: VoiceSpec | None  # the offline stand-in for a Gemini voice
    speed: float
    mime_type: str
    key: str


@dataclass(frozen=True)
class Speech:
    audio: bytes
    mime_type: str
    sample_rate: int
    duration_ms: int
    voice: str
    engine: str
    cached: bool
    key: str


@dataclass
class SpeechStream:
    """Audio that arrives sentence by sentence; the totals are final once `chunks` is exhausted."""

    mime_type: str
    sample_rate: int
    voice: str
    engine: str
    cached: bool
    key: str
    chunks: AsyncIterator[bytes]
    duration_ms: int = 0
    total_bytes: int = 0
    chunk_count: int = 0


@dataclass(frozen=True)
class Transcript:
    text: str
    engine: str


@dataclass(frozen=True)
class CharacterVoice:
    character_id: str
    language: str
    voice: str


@dataclass(frozen=True)
class VoiceListing:
    voices: tuple[VoiceSpec, ...]
    characters: tuple[CharacterVoice, ...]
    transcription: bool


@dataclass
class _Progress:
    samples: int = 0
    sample_rate: int = 0

    @property
    def duration_ms(self) -> int:
        return int(1000 * self.samples / self.sample_rate) if self.sample_rate else 0


def _speakable(sentence: str) -> bool:
    return any(ch.isalnum() for ch in sentence)


class TtsService:
    def __init__(
        self,
        settings: TtsSettings,
        content: ContentCatalogue,
        table: VoiceTable,
        engines: Mapping[str, SpeechEngine],
        cache: AudioCache,
        executor: Executor,
        *,
        background_executor: Executor | None = None,
        limiter: Limiter | None = None,
        transcriber: Transcriber | None = None,
        ledger: RequestLedger | None = None,
        events_written: Callable[[], None] = lambda: None,
        consumer: str = "tts.requests",
    ) -> None:
        self.settings = settings
        self.content = content
        self.table = table
        self.engines = dict(engines)
        self.cache = cache
        self.executor = executor
        self.background_executor = background_executor or executor
        self.limiter = limiter
        self.transcriber = transcriber
        self.ledger = ledger
        self.events_written = events_written
        self.consumer = consumer
        self.speech_rate = Rule(
            "tts-speech",
            settings.tts_speech_rate,
            f"Too many speech requests in a short time (at most {settings.tts_speech_rate}); wait a moment",
        )
        self.transcribe_rate = Rule(
            "tts-transcribe",
            settings.tts_transcribe_rate,
            f"Too many voice inputs in a short time (at most {settings.tts_transcribe_rate}); wait a moment",
        )
        # Texts synthesised in this process (not served from the cache), and their sentences.
        self.synthesis_runs = 0
        self.sentence_runs = 0
        self._inflight: dict[str, asyncio.Future[Speech]] = {}

    # --- resolving a request -------------------------------------------------------------

    def plan(self, request: SpeechRequest, *, max_chars: int | None = None) -> Plan:
        """Check a request and pick its voice; InvalidInput or NotFound otherwise."""
        limit = max_chars or self.settings.tts_max_text_chars
        if len(request.text) > limit:
            raise InvalidInput(f"text is longer than {limit} characters", field="text")
        text = normalise(request.text)
        if not text:
            raise InvalidInput(f"text is empty: give 1 to {limit} characters to speak", field="text")
        if request.language not in ("", "ja", "en"):
            raise InvalidInput("language must be 'ja', 'en' or empty", field="language")
        mime_type: str
        if not request.mime_type:
            mime_type = self.settings.tts_default_format
        elif request.mime_type.lower() in FORMATS:
            mime_type = FORMATS[request.mime_type.lower()]
        else:
            raise InvalidInput("the audio format must be audio/mpeg (mp3) or audio/wav", field="mime_type")
        speed = float(request.speed or 1.0)
        if not math.isfinite(speed) or not SPEED_MIN <= speed <= SPEED_MAX:
            raise InvalidInput(f"speed must be between {SPEED_MIN} and {SPEED_MAX} (or 0 for normal)", field="speed")
        voice, fallback, language = self._voice_for(request, text)
        return self._plan(text, language, voice, fallback, speed, mime_type)

    def _plan(
        self, text: str, language: str, voice: VoiceSpec, fallback: VoiceSpec | None, speed: float, mime_type: str
    ) -> Plan:
        options: dict[str, object] = {"pause_ms": self.settings.tts_sentence_pause_ms}
        if mime_type == MP3:
            options["kbps"] = self.settings.tts_mp3_bitrate_kbps
        key = cache_key(engine=voice.engine, voice=voice, speed=speed, mime_type=mime_type, text=text, options=options)
        return Plan(text, tuple(split_sentences(text)), language, voice, fallback, speed, mime_type, key)

    def _voice_for(self, request: SpeechRequest, text: str) -> tuple[VoiceSpec, VoiceSpec | None, str]:
        if request.voice:
            voice = self.table.voice(request.voice)
            if voice is None:
                raise NotFound(f"no voice {request.voice!r} (GET /api/v2/tts/voices lists them)", field="voice")
            if request.language and request.language != voice.language:
                # Each field is valid alone; together they conflict (as the schema cannot say): 409.
                message = f"the voice {voice.id} speaks {voice.language}, not {request.language}"
                raise Conflict(message, field="language")
            return voice, None, voice.language
        language = request.language or detect_language(text)
        if request.character_id:
            character = self.content.characters.get(request.character_id)
            if character is None:
                raise NotFound(f"no character {request.character_id!r}", field="character_id")
            voice = self.table.for_character(character, language)
            fallback = self.table.offline_for(character, language) if voice.engine == GEMINI_ENGINE else None
            return voice, fallback, language
        voice = self.table.default(language)
        fallback = self.table.offline_default(language) if voice.engine == GEMINI_ENGINE else None
        return voice, fallback, language

    # --- speaking --------------------------------------------------------------------------

    async def synthesize(
        self, request: SpeechRequest, *, user_id: str | None = None, max_chars: int | None = None, strict: bool = False
    ) -> Speech:
        """The whole audio of a text. `strict`: the audio must be stored (tts.requests)."""
        if user_id is not None and self.limiter is not None:
            await self.limiter.hit(self.speech_rate, user_id)
        plan = self.plan(request, max_chars=max_chars)
        return await self._speech(plan, strict=strict)

    async def _speech(self, plan: Plan, *, strict: bool) -> Speech:
        found = await self.cache.get(plan.key)
        if found is not None:
            SYNTHESIS.labels(found.engine, "true").inc()
            return _from_cache(found)
        pending = self._inflight.get(plan.key)
        if pending is not None:  # the same audio is being made right now: wait for it
            return replace(await asyncio.shield(pending), cached=True)
        future: asyncio.Future[Speech] = asyncio.get_running_loop().create_future()
        self._inflight[plan.key] = future
        try:
            speech = await self._make(plan, strict=strict)
            future.set_result(speech)
            return speech
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        finally:
            self._inflight.pop(plan.key, None)

    async def _make(self, plan: Plan, *, strict: bool) -> Speech:
        try:
            return await self._collect(plan, strict=strict)
        except SpeechUnavailable as exc:
            stand_in = self._stand_in(plan, exc)
            found = await self.cache.get(stand_in.key)
            if found is not None:
                SYNTHESIS.labels(found.engine, "true").inc()
                return _from_cache(found)
            return await self._collect(stand_in, strict=strict)

    def _stand_in(self, plan: Plan, exc: SpeechUnavailable) -> Plan:
        """The plan with the offline voice, or Unavailable when there is none (or no fallback)."""
        if plan.fallback is None or not self.settings.tts_fallback_offline:
            raise Unavailable(f"speech is not available right now ({exc}); try again shortly") from exc
        reason = "budget" if "budget" in str(exc).lower() else "unavailable"
        FALLBACKS.labels(reason).inc()
        log.warning(
            "Gemini could not speak; the offline voice speaks",
            extra={"voice": plan.voice.id, "stand_in": plan.fallback.id, "reason": str(exc)[:200]},
        )
        return self._plan(plan.text, plan.language, plan.fallback, None, plan.speed, plan.mime_type)

    async def _collect(self, plan: Plan, *, strict: bool) -> Speech:
        progress = _Progress()
        encoder = encoder_for(plan.mime_type, bitrate_kbps=self.settings.tts_mp3_bitrate_kbps)
        parts = [chunk async for chunk in self._render(plan, encoder, progress)]
        audio = encoder.finalise(b"".join(parts))
        speech = Speech(
            audio=audio,
            mime_type=plan.mime_type,
            sample_rate=progress.sample_rate,
            duration_ms=progress.duration_ms,
            voice=plan.voice.id,
            engine=plan.voice.engine,
            cached=False,
            key=plan.key,
        )
        await self._store(speech, strict=strict)
        return speech

    async def _store(self, speech: Speech, *, strict: bool) -> None:
        await self.cache.put(
            CachedAudio(
                key=speech.key,
                data=speech.audio,
                mime_type=speech.mime_type,
                sample_rate=speech.sample_rate,
                duration_ms=speech.duration_ms,
                voice=speech.voice,
                engine=speech.engine,
            ),
            strict=strict,
        )

    async def _render(self, plan: Plan, encoder: Encoder, progress: _Progress) -> AsyncGenerator[bytes, None]:
        """Encoded audio, one piece per sentence as soon as it is synthesised (the encoder may
        hold a few milliseconds back until the next)."""
        engine = self.engines.get(plan.voice.engine)
        if engine is None:
            raise SpeechUnavailable(f"the engine {plan.voice.engine} is not configured")
        self.synthesis_runs += 1
        SYNTHESIS.labels(plan.voice.engine, "false").inc()
        feed = encoder.feed
        pending_ms = 0  # pauses for sentences of punctuation only, said before the next one
        for sentence in plan.sentences:
            if not _speakable(sentence):
                pending_ms += self.settings.tts_sentence_pause_ms
                continue
            started = time.perf_counter()
            pcm = await self._synthesize(engine, sentence, plan.voice, plan.speed)
            self.sentence_runs += 1
            SENTENCES.labels(plan.voice.engine).inc()
            SENTENCE_SECONDS.labels(plan.voice.engine).observe(time.perf_counter() - started)
            progress.sample_rate = progress.sample_rate or pcm.sample_rate
            gap_ms = pending_ms + (self.settings.tts_sentence_pause_ms if progress.samples else 0)
            pending_ms = 0
            data = b""
            if gap_ms:
                gap = silence(pcm.sample_rate, gap_ms)
                progress.samples += len(gap.samples)
                data += feed(gap)
            progress.samples += len(pcm.samples)
            data += feed(pcm)
            if data:
                yield data
        if not progress.sample_rate:  # nothing to say at all: a moment of silence, a valid file
            gap = silence(24000, max(pending_ms, 200))
            progress.sample_rate, progress.samples = gap.sample_rate, len(gap.samples)
            yield feed(gap)
        tail = encoder.finish()
        if tail:
            yield tail

    async def _synthesize(self, engine: SpeechEngine, sentence: str, voice: VoiceSpec, speed: float) -> Pcm:
        """One sentence: a network engine (Gemini) on the loop, a CPU-bound one in the pool."""
        native = getattr(engine, "synthesize_async", None)
        if native is not None:
            pcm: Pcm = await native(sentence, voice, speed)
            return pcm
        executor = self.background_executor if _AHEAD_OF_TIME.get() else self.executor
        return await asyncio.get_running_loop().run_in_executor(executor, engine.synthesize, sentence, voice, speed)

    async def open_stream(
        self, request: SpeechRequest, *, user_id: str | None = None, max_chars: int | None = None
    ) -> SpeechStream:
        """Audio sentence by sentence. Returns once the first piece is ready (or found in the
        cache), so a failure before any audio is an error of the request, not of a stream."""
        if user_id is not None and self.limiter is not None:
            await self.limiter.hit(self.speech_rate, user_id)
        plan = self.plan(request, max_chars=max_chars or self.settings.tts_max_long_text_chars)
        found = await self.cache.get(plan.key)
        if found is None and plan.fallback is not None:
            try:
                return await self._stream(plan)
            except SpeechUnavailable as exc:
                plan = self._stand_in(plan, exc)
                found = await self.cache.get(plan.key)
        if found is not None:
            SYNTHESIS.labels(found.engine, "true").inc()
            return self._cached_stream(found)
        try:
            return await self._stream(plan)
        except SpeechUnavailable as exc:
            raise Unavailable(f"speech is not available right now ({exc}); try again shortly") from exc

    def _cached_stream(self, found: CachedAudio) -> SpeechStream:
        stream = SpeechStream(
            mime_type=found.mime_type,
            sample_rate=found.sample_rate,
            voice=found.voice,
            engine=found.engine,
            cached=True,
            key=found.key,
            chunks=_empty(),
            duration_ms=found.duration_ms,
        )

        async def pieces() -> AsyncIterator[bytes]:
            for start in range(0, len(found.data), CHUNK_BYTES):
                piece = found.data[start : start + CHUNK_BYTES]
                stream.total_bytes += len(piece)
                stream.chunk_count += 1
                yield piece

        stream.chunks = pieces()
        return stream

    async def _stream(self, plan: Plan) -> SpeechStream:
        progress = _Progress()
        encoder = encoder_for(plan.mime_type, bitrate_kbps=self.settings.tts_mp3_bitrate_kbps)
        rendered = self._render(plan, encoder, progress)
        try:
            first = await anext(rendered)
        except StopAsyncIteration:
            first = b""
        except BaseException:
            await rendered.aclose()
            raise
        stream = SpeechStream(
            mime_type=plan.mime_type,
            sample_rate=progress.sample_rate,
            voice=plan.voice.id,
            engine=plan.voice.engine,
            cached=False,
            key=plan.key,
            chunks=_empty(),
        )

        async def pieces() -> AsyncIterator[bytes]:
            parts = [first]
            try:
                if first:
                    stream.chunk_count += 1
                    stream.total_bytes += len(first)
                    stream.duration_ms = progress.duration_ms
                    yield first
                async for piece in rendered:
                    parts.append(piece)
                    stream.chunk_count += 1
                    stream.total_bytes += len(piece)
                    stream.duration_ms = progress.duration_ms
                    yield piece
            except SpeechUnavailable as exc:  # the provider failed after the first sentence
                raise Unavailable(f"speech stopped ({exc}); try again shortly") from exc
            finally:
                await rendered.aclose()
            stream.duration_ms = progress.duration_ms
            # Complete: keep it (a stream cut short is not stored).
            await self._store(
                Speech(
                    audio=encoder.finalise(b"".join(parts)),
                    mime_type=plan.mime_type,
                    sample_rate=progress.sample_rate,
                    duration_ms=progress.duration_ms,
                    voice=plan.voice.id,
                    engine=plan.voice.engine,
                    cached=False,
                    key=plan.key,
                ),
                strict=False,
            )

        stream.chunks = pieces()
        return stream

    async def audio(self, key: str) -> Speech:
        """Audio stored under its key (the audio_key of a tts.ready event)."""
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise InvalidInput("an audio key is 64 hexadecimal characters", field="key")
        found = await self.cache.get(key)
        if found is None:
            raise NotFound("no such audio (it may have expired)", field="key")
        return _from_cache(found)

    # --- voices and voice input --------------------------------------------------------------

    def voices(self, language: str = "") -> VoiceListing:
        if language not in ("", "ja", "en"):
            raise InvalidInput("language must be 'ja', 'en' or empty", field="language")
        languages = (language,) if language else ("ja", "en")
        return VoiceListing(
            voices=tuple(v for v in self.table.voices if v.language in languages),
            characters=tuple(
                CharacterVoice(c.id, lang, self.table.for_character(c, lang).id)
                for c in sorted(self.content.characters.values(), key=lambda c: c.id)
                for lang in languages
            ),
            transcription=self.transcription_available,
        )

    @property
    def transcription_available(self) -> bool:
        return self.transcriber is not None and bool(self.transcriber.available)

    def require_transcription(self) -> Transcriber:
        """The recogniser, or TranscriptionUnavailable (HTTP 409, gRPC FAILED_PRECONDITION)."""
        if self.transcriber is None or not self.transcriber.available:
            raise TranscriptionUnavailable(
                "Voice input is not available on the server: it needs a Gemini key. "
                "In the browser, voice input works through the browser's own speech recognition."
            )
        return self.transcriber

    async def transcribe(
        self, audio: bytes, mime_type: str, language: str = "", *, user_id: str | None = None
    ) -> Transcript:
        transcriber = self.require_transcription()
        if language not in ("", "ja", "en"):
            raise InvalidInput("language must be 'ja', 'en' or empty", field="language")
        mime_type = mime_type.split(";")[0].strip().lower()
        if not mime_type.startswith("audio/"):
            raise InvalidInput("send the recording as audio (Content-Type audio/...)", field="mime_type")
        if not audio:
            raise InvalidInput("the recording is empty", field="audio")
        if user_id is not None and self.limiter is not None:
            await self.limiter.hit(self.transcribe_rate, user_id)
        try:
            text = await transcriber.transcribe(audio, mime_type, language or "ja")
        except SpeechUnavailable as exc:
            raise Unavailable(f"voice input is not available right now ({exc}); try again shortly") from exc
        engine = str(getattr(transcriber, "engine", "") or getattr(transcriber, "name", "") or "google:gemini")
        return Transcript(text=text, engine=engine)

    # --- tts.requests ------------------------------------------------------------------------

    async def handle_request(self, event: events_pb2.TtsRequest, envelope: Envelope | None = None) -> Handled:
        """Synthesise a requested text into the cache and answer on tts.ready, once per event id.
        A request that can never be spoken (bad text, unknown voice) is answered with an error
        at once; a passing failure is retried (redelivered) a few times first."""
        if self.ledger is None:
            raise RuntimeError("the tts.requests consumer needs the database (a RequestLedger)")
        event_id = envelope.event_id if envelope is not None else event.event_id
        if not event_id:
            raise PermanentFailure("the tts.requests event has no event_id")
        if await self.ledger.already_handled(self.consumer, event_id):
            REQUESTS.labels("duplicate").inc()
            return Handled.DUPLICATE
        request = SpeechRequest(
            text=event.text,
            language=event.language,
            voice=event.voice,
            character_id=event.character_id,
            speed=event.speed,
            # A container this service does not make (audio/ogg): the default rather than no audio.
            mime_type=event.mime_type if event.mime_type.lower() in FORMATS else "",
        )
        ready = events_pb2.TtsReady(
            event_id=str(uuid.uuid4()),
            request_id=event.request_id,
            session_id=event.session_id,
            turn_id=event.turn_id,
            user_id=event.user_id,
        )
        language = "en" if event.language == "en" else "ja"
        attempt = envelope.delivery_attempt if envelope is not None else 1
        ahead_of_time = _AHEAD_OF_TIME.set(True)
        try:
            speech = await self.synthesize(request, max_chars=self.settings.tts_max_long_text_chars, strict=True)
        except (InvalidInput, NotFound) as exc:
            REQUESTS.labels("refused").inc()
            ready.error = exc.message
        except Exception as exc:  # noqa: BLE001 - retried, then answered with an error
            if attempt < self.settings.tts_request_max_attempts:
                log.warning(
                    "tts request failed; it will be retried",
                    extra={"event_id": event_id, "attempt": attempt, "error": repr(exc)[:300]},
                )
                raise
            log.error("tts request failed for good", extra={"event_id": event_id, "attempt": attempt}, exc_info=exc)
            REQUESTS.labels("failed").inc()
            ready.error = _FAILED[language]
        else:
            REQUESTS.labels("ok").inc()
            ready.audio_key = speech.key
            ready.mime_type = speech.mime_type
            ready.sample_rate_hz = speech.sample_rate
            ready.duration_ms = speech.duration_ms
            ready.voice = speech.voice
            ready.engine = speech.engine
        finally:
            _AHEAD_OF_TIME.reset(ahead_of_time)
        ready.occurred_at.FromDatetime(datetime.now(UTC))
        if not await self.ledger.answer(
            consumer=self.consumer, event_id=event_id, event=ready, ordering_key=event.session_id or event.request_id
        ):
            return Handled.DUPLICATE
        self.events_written()
        return Handled.OK


def _from_cache(found: CachedAudio) -> Speech:
    return Speech(
        audio=found.data,
        mime_type=found.mime_type,
        sample_rate=found.sample_rate,
        duration_ms=found.duration_ms,
        voice=found.voice,
        engine=found.engine,
        cached=True,
        key=found.key,
    )


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing
