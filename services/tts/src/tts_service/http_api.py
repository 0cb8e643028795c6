"""HTTP adapter under /api/v2/tts: speech (GET for a sentence, what an <audio src> asks for; POST
for a longer text, streamed sentence by sentence), stored audio by key, the voices, voice input."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' real annotations.

import email.parser
import email.policy
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from workplace_kit.auth import Principal
from workplace_kit.errors import InvalidInput
from workplace_kit.service import error_responses
from workplace_kit.validation import LearnerText

from .audio import MAX_SENTENCE_CHARS, normalise
from .domain import Speech, SpeechRequest, SpeechStream, TtsService

Format = Literal["", "mp3", "wav", "audio/mpeg", "audio/wav"]
Language = Literal["", "ja", "en"]
CHARACTER_PATTERN = r"^([a-z][a-z0-9_-]{1,62})?$"
VOICE_PATTERN = r"^([a-z][a-z0-9-]{1,62})?$"
# The browser keeps a sentence's audio for a day (the service keeps it far longer).
CACHE_CONTROL = "private, max-age=86400"
AUDIO_CONTENT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"audio/mpeg": {}, "audio/wav": {}}, "description": "The audio (MP3 unless wav was asked for)"}
}


class VoiceOut(BaseModel):
    id: str
    language: str
    gender: str
    engine: str
    description: str


class CharacterVoiceOut(BaseModel):
    character_id: str
    language: str
    voice: str


class VoicesOut(BaseModel):
    voices: list[VoiceOut]
    characters: list[CharacterVoiceOut]
    transcription: bool = Field(description="Whether POST /transcribe works here (a Gemini key is set)")


# Text to speak: not only spaces, no NUL (the published pattern is one property-based clients
# can generate from, as the kit's learner_message_field).
TEXT_PATTERN = r"\S"
TEXT_SCHEMA: dict[str, Any] = {"pattern": r"^[^\u0000]*[^\s\u0000][^\u0000]*$"}


class SpeechOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    character_id: str = Field("", pattern=CHARACTER_PATTERN, description="A catalogue character: its own voice")
    language: Language = Field("", description="ja or en; empty: the voice's, else detected from the text")
    voice: str = Field("", pattern=VOICE_PATTERN, description="A voice id (GET /voices); wins over character_id")
    speed: float = Field(1.0, ge=0.5, le=2.0, description="1.0 is normal")
    format: Format = Field("", description="mp3 (default) or wav")


class TranscriptOut(BaseModel):
    text: str
    engine: str


def _headers(voice: str, engine: str, cached: bool, key: str) -> dict[str, str]:
    return {"X-TTS-Voice": voice, "X-TTS-Engine": engine, "X-TTS-Cached": "1" if cached else "0", "X-TTS-Key": key}


def _audio_response(speech: Speech) -> Response:
    headers = _headers(speech.voice, speech.engine, speech.cached, speech.key)
    headers.update({"Cache-Control": CACHE_CONTROL, "X-TTS-Duration-Ms": str(speech.duration_ms)})
    return Response(content=speech.audio, media_type=speech.mime_type, headers=headers)


def _stream_response(stream: SpeechStream) -> StreamingResponse:
    headers = _headers(stream.voice, stream.engine, stream.cached, stream.key)
    headers["Cache-Control"] = "no-store"
    return StreamingResponse(stream.chunks, media_type=stream.mime_type, headers=headers)


def _recording(content_type: str, body: bytes) -> tuple[bytes, str]:
    """The audio of a transcription request: the raw body, or the audio part of a multipart form."""
    if not content_type.lower().startswith("multipart/form-data"):
        return body, content_type
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        raise InvalidInput("the multipart form could not be read", field="audio")
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name == "audio" or part.get_content_type().startswith("audio/"):
            payload = part.get_payload(decode=True)
            return (payload if isinstance(payload, bytes) else b""), part.get_content_type()
    raise InvalidInput("the form has no audio part (send it as the field 'audio')", field="audio")


def build_router(service: TtsService, current_principal: Callable[..., Awaitable[Principal]]) -> APIRouter:
    router = APIRouter(prefix="/api/v2/tts", tags=["tts"])
    Signed = Annotated[Principal, Depends(current_principal)]  # noqa: N806 - a type alias
    most = service.settings.tts_max_long_text_chars

    class SpeechIn(SpeechOptions):
        text: LearnerText = Field(
            min_length=1,
            max_length=most,
            pattern=TEXT_PATTERN,
            json_schema_extra=TEXT_SCHEMA,
            description=f"What to say: up to {most} characters",
        )

    @router.get(
        "/speech",
        response_class=Response,
        responses={**AUDIO_CONTENT, **error_responses(400, 401, 404, 409, 422, 429, 503)},
    )
    async def speech(
        principal: Signed,
        text: Annotated[
            LearnerText,
            Query(
                min_length=1,
                max_length=service.settings.tts_max_text_chars,
                pattern=TEXT_PATTERN,
                json_schema_extra=TEXT_SCHEMA,
                description=f"What to say: a sentence, up to {service.settings.tts_max_text_chars} characters",
            ),
        ],
        character_id: Annotated[str, Query(pattern=CHARACTER_PATTERN)] = "",
        language: Language = "",
        voice: Annotated[str, Query(pattern=VOICE_PATTERN)] = "",
        speed: Annotated[float, Query(ge=0.5, le=2.0, description="1.0 is normal")] = 1.0,
        format: Format = "",
    ) -> Response:
        """The audio of a text in the character's voice: what a page's <audio src> asks for, one
        request per sentence; headers X-TTS-Voice, X-TTS-Engine, X-TTS-Cached (1|0). A sentence
        comes whole; a text longer than one piece of speech (160 characters) streams as the POST
        form does, so its first audio does not wait for the last."""
        request = SpeechRequest(
            text=text, language=language, voice=voice, character_id=character_id, speed=speed, mime_type=format
        )
        if len(normalise(text)) > MAX_SENTENCE_CHARS:
            most = service.settings.tts_max_text_chars
            return _stream_response(await service.open_stream(request, user_id=principal.user_id, max_chars=most))
        return _audio_response(await service.synthesize(request, user_id=principal.user_id))

    @router.post(
        "/speech",
        response_class=StreamingResponse,
        responses={**AUDIO_CONTENT, **error_responses(400, 401, 404, 409, 422, 429, 503)},
    )
    async def speech_stream(body: SpeechIn, principal: Signed) -> StreamingResponse:
        """The audio of a longer text, streamed: each sentence's audio is sent as soon as it is
        synthesised; the pieces together are one file."""
        stream: SpeechStream = await service.open_stream(
            SpeechRequest(
                text=body.text,
                language=body.language,
                voice=body.voice,
                character_id=body.character_id,
                speed=body.speed,
                mime_type=body.format,
            ),
            user_id=principal.user_id,
        )
        return _stream_response(stream)

    @router.get(
        "/audio/{key}",
        response_class=Response,
        responses={**AUDIO_CONTENT, **error_responses(401, 404, 422)},
    )
    async def stored(principal: Signed, key: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")]) -> Response:
        """Audio made for a tts.requests event (the audio_key of its tts.ready answer)."""
        return _audio_response(await service.audio(key))

    @router.get("/voices", response_model=VoicesOut, responses=error_responses(422))
    async def voices(language: Language = "") -> VoicesOut:
        """The voices requests may name, each catalogue character's voice per language, and
        whether server-side voice input is available."""
        listing = service.voices(language)
        return VoicesOut(
            voices=[
                VoiceOut(id=v.id, language=v.language, gender=v.gender, engine=v.engine, description=v.description)
                for v in listing.voices
            ],
            characters=[
                CharacterVoiceOut(character_id=c.character_id, language=c.language, voice=c.voice)
                for c in listing.characters
            ],
            transcription=listing.transcription,
        )

    @router.post(
        "/transcribe",
        response_model=TranscriptOut,
        responses={
            413: {"description": "The recording is over the body limit (64 KB)"},
            409: {"description": "No recogniser here (no Gemini key): use the browser's speech recognition"},
            **error_responses(400, 401, 429, 503),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    kind: {"schema": {"type": "string", "format": "binary"}}
                    for kind in ("audio/webm", "audio/ogg", "audio/wav", "audio/mpeg", "audio/mp4")
                },
                "description": "The recording (webm, ogg, wav...), or a multipart form with the field 'audio'",
            }
        },
    )
    async def transcribe(request: Request, principal: Signed, language: Language = "") -> TranscriptOut:
        """The text of a short recording (up to the 64 KB body limit)."""
        # Refused before the body is read when the server has no recogniser.
        service.require_transcription()
        audio, mime_type = _recording(request.headers.get("content-type", ""), await request.body())
        transcript = await service.transcribe(audio, mime_type, language, user_id=principal.user_id)
        return TranscriptOut(text=transcript.text, engine=transcript.engine)

    return router
