"""Gemini speech (paid): text to PCM through google-genai, within a daily character budget.

Settings read (a ServiceSettings subclass, or any object with these attributes):

* the kit's Gemini settings: ``gemini_api_keys`` (key rotation), ``gemini_base_url`` and
  ``gemini_api_version`` (tests point them at the stand-in), ``gemini_timeout_s``,
  ``gemini_retry_attempts``, ``gemini_retry_initial_delay_s``, ``gemini_retry_max_delay_s``,
  ``gemini_max_connections``;
* ``tts_gemini_model``: the speech model, e.g. "gemini-2.5-flash-preview-tts".

The client, its retries (408/429/5xx with backoff), key rotation on quota and the safe error
messages are the kit's (workplace_kit.ai.gemini.GeminiKeyPool). Every failure becomes
SpeechUnavailable, so the service answers 503 with Retry-After or falls back to an offline
voice: ``SpeechUnavailable("budget")`` when the day's budget is spent (Google is not called),
``SpeechUnavailable("busy")`` for quota, overload and timeouts after retries, ``"failed"``
for other provider errors, ``"no audio"`` when the answer holds none. The characters of a
request Google refused go back to the budget; an answer without audio keeps them spent.

Gemini answers with raw PCM, signed 16-bit little-endian mono, at the rate its MIME type names
("audio/L16;codec=pcm;rate=24000").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import wave
from typing import Any

import numpy as np
from google.genai import types
from workplace_kit.ai.gemini import GeminiKeyPool
from workplace_kit.ai.metrics import AI_REPLIES
from workplace_kit.ai.types import AIUnavailableError

from tts_service.budget import Budget
from tts_service.engines.base import Pcm, SpeechUnavailable, VoiceSpec

logger = logging.getLogger(__name__)

ENGINE = "google:gemini-tts"
DEFAULT_SAMPLE_RATE = 24_000
_NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)

# Gemini speech has no rate parameter: pace is asked for in words, the documented way to
# steer its delivery ("Say cheerfully: ..."). At normal speed the text goes alone.
SLOW_BELOW = 0.9
FAST_ABOVE = 1.1


def prompt_for(text: str, speed: float) -> str:
    """What is sent to the model: the text, with a pace instruction when speed is not normal."""
    if 0 < speed < SLOW_BELOW:
        return f"Say slowly and clearly: {text}"
    if speed > FAST_ABOVE:
        return f"Say at a brisk pace: {text}"
    return text


def rate_of(mime_type: str) -> int:
    """The sample rate named in a MIME type such as "audio/L16;codec=pcm;rate=24000"."""
    for param in mime_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "rate":
            try:
                rate = int(value.strip())
            except ValueError:
                break
            if rate > 0:
                return rate
    return DEFAULT_SAMPLE_RATE


def pcm_from_audio(data: bytes, mime_type: str) -> Pcm:
    """Raw s16le PCM (audio/L16, audio/pcm) or 16-bit mono WAV to Pcm; anything else raises
    SpeechUnavailable."""
    kind = mime_type.split(";")[0].strip().lower()
    if kind in ("audio/l16", "audio/pcm"):
        usable = len(data) - len(data) % 2
        samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.int16)
        return Pcm(samples=samples, sample_rate=rate_of(mime_type))
    if kind in ("audio/wav", "audio/x-wav", "audio/wave"):
        try:
            with wave.open(io.BytesIO(data)) as wav:
                if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                    raise SpeechUnavailable("unexpected audio format")
                frames = wav.readframes(wav.getnframes())
                return Pcm(np.frombuffer(frames, dtype="<i2").astype(np.int16), wav.getframerate())
        except (wave.Error, EOFError) as exc:
            raise SpeechUnavailable("unexpected audio format") from exc
    raise SpeechUnavailable("unexpected audio format")


def audio_of(response: types.GenerateContentResponse) -> Pcm:
    """The audio parts of the first candidate, joined; SpeechUnavailable("no audio") if none."""
    pieces: list[Pcm] = []
    for candidate in (response.candidates or [])[:1]:
        for part in (candidate.content.parts if candidate.content else None) or []:
            blob = part.inline_data
            if blob is not None and blob.data:
                pieces.append(pcm_from_audio(blob.data, blob.mime_type or "audio/L16;codec=pcm;rate=24000"))
    if not pieces:
        reason = ""
        for candidate in response.candidates or []:
            reason = str(getattr(candidate.finish_reason, "value", candidate.finish_reason or ""))
        logger.error("gemini speech answered without audio (finish reason %r)", reason)
        raise SpeechUnavailable("no audio")
    rate = pieces[0].sample_rate
    if any(p.sample_rate != rate for p in pieces):
        raise SpeechUnavailable("unexpected audio format")
    return Pcm(samples=np.concatenate([p.samples for p in pieces]), sample_rate=rate)


def speech_config(voice_name: str) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        response_modalities=["AUDIO"],
        speech_config=types.SpeechConfig(
            voice_config=types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=voice_name))
        ),
        automatic_function_calling=_NO_AFC,
    )


class GeminiSpeech:
    """SpeechEngine "google:gemini-tts": a voice whose ``params["gemini_voice"]`` (or
    ``params["voice_name"]``, as voices.py writes it) names one of Gemini's prebuilt voices
    (e.g. "Kore", "Puck").

    ``synthesize_async`` is the call to make from async code (it is network-bound, no thread
    needed). ``synthesize`` (the SpeechEngine protocol) is for a worker thread: it runs
    ``synthesize_async`` on the service's event loop, the loop the engine was built on (or
    ``loop``), because the budget's database pool and the HTTP client belong to that loop.

    ``pool``: share one GeminiKeyPool with the transcriber (cool-downs are then shared); the
    engine closes only a pool it made itself.
    """

    name = ENGINE

    def __init__(
        self,
        settings: Any,
        budget: Budget,
        *,
        pool: GeminiKeyPool | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ):
        self.settings = settings
        self.budget = budget
        self.model: str = settings.tts_gemini_model
        self._owns_pool = pool is None
        self.pool = pool or GeminiKeyPool(settings)
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._loop = loop
        # The longest a worker thread waits: every key, every attempt timing out, plus backoff.
        attempts = settings.gemini_retry_attempts * max(1, len(self.pool.keys))
        self._wait_s = attempts * (settings.gemini_timeout_s + settings.gemini_retry_max_delay_s) + 5

    async def synthesize_async(self, text: str, voice: VoiceSpec, speed: float = 1.0) -> Pcm:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        voice_name = str(voice.params.get("gemini_voice") or voice.params.get("voice_name") or "")
        if not voice_name:
            logger.error("voice %s has no gemini_voice parameter", voice.id)
            raise SpeechUnavailable("voice not configured")
        if not text.strip():
            return Pcm(samples=np.zeros(0, dtype=np.int16), sample_rate=DEFAULT_SAMPLE_RATE)
        prompt = prompt_for(text, speed)
        chars = len(prompt)
        try:
            await self.budget.reserve(chars)
        except SpeechUnavailable:
            AI_REPLIES.labels(engine=ENGINE, outcome="budget").inc()
            raise
        config = speech_config(voice_name)

        async def attempt(key: str, model: str) -> types.GenerateContentResponse:
            return await self.pool.client(key).aio.models.generate_content(model=model, contents=prompt, config=config)

        try:
            response = await self.pool.call([self.model], attempt)
        except AIUnavailableError as exc:
            # Refused or never answered: Google bills nothing, so the characters go back.
            await self.budget.refund(chars)
            AI_REPLIES.labels(engine=ENGINE, outcome="unavailable").inc()
            busy = exc.status in (None, 429, 503) and exc.retryable
            raise SpeechUnavailable("busy" if busy else "failed") from exc
        try:
            pcm = audio_of(response)
        except SpeechUnavailable:
            # Answered (and billed) without usable audio: the characters stay spent.
            AI_REPLIES.labels(engine=ENGINE, outcome="unavailable").inc()
            raise
        AI_REPLIES.labels(engine=ENGINE, outcome="ok").inc()
        return pcm

    def synthesize(self, text: str, voice: VoiceSpec, speed: float) -> Pcm:
        """Blocking: call it from a worker thread, never on the event loop itself."""
        loop = self._loop
        if loop is None or loop.is_closed():
            raise SpeechUnavailable("not started: build GeminiSpeech inside the service's event loop")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError("GeminiSpeech.synthesize blocks: on the event loop, await synthesize_async")
        future = asyncio.run_coroutine_threadsafe(self.synthesize_async(text, voice, speed), loop)
        try:
            return future.result(timeout=self._wait_s)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise SpeechUnavailable("busy") from exc

    async def aclose(self) -> None:
        if self._owns_pool:
            await self.pool.aclose()
