from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from workplace_kit.config import ServiceSettings
from workplace_kit.ratelimit import RATE_PATTERN


class TtsSettings(ServiceSettings):
    service_name: str = "tts"

    # Who speaks: "offline" (Open JTalk, Kokoro, Piper: nothing leaves the machine), "google"
    # (Gemini speech; every character its own prebuilt voice; needs WP_GEMINI_API_KEYS), "auto"
    # (google when the Gemini keys are set, else offline).
    tts_provider: Literal["auto", "offline", "google"] = "auto"
    # Japanese offline voices for female characters and the default voice (voices.yaml, rules):
    # "auto" mixes Kokoro (the younger characters) and Open JTalk; "openjtalk" or "kokoro" only
    # that engine. Male Japanese characters speak with Kokoro's jm_kumo whatever this says (the
    # only male Japanese voice offline). English: Piper's joe, the only offline English voice.
    tts_ja_engine: Literal["auto", "openjtalk", "kokoro"] = "auto"
    # Where Kokoro's model is assembled from its packages on first use (~90 MB).
    tts_model_dir: Path = Path(".run/tts-models")

    # The audio cache: Redis for audio up to tts_cache_redis_max_bytes, a directory for bigger
    # audio (Redis keeps where it is). Shared by the replicas when the directory is a shared volume;
    # a replica that cannot see a file synthesises the audio again.
    tts_cache_ttl_s: int = Field(30 * 24 * 3600, ge=60)
    tts_cache_redis_max_bytes: int = Field(512 * 1024, ge=1024, le=64 * 1024 * 1024)
    tts_cache_dir: Path = Path(".run/tts-cache")
    # Part of every Redis key of the cache: a new value starts an empty cache (tests use their own).
    tts_cache_namespace: str = Field("v1", pattern=r"^[A-Za-z0-9_-]{1,64}$")

    # Audio: MP3 unless a request asks for WAV.
    tts_default_format: Literal["audio/mpeg", "audio/wav"] = "audio/mpeg"
    tts_mp3_bitrate_kbps: int = Field(64, ge=32, le=160)
    # Silence between two sentences of one text.
    tts_sentence_pause_ms: int = Field(250, ge=0, le=2000)
    # Text of one GET request (a sentence or a short reply) and of one POST (a longer text: 2000
    # characters are about five minutes of speech, and one request holds a synthesis thread that long).
    tts_max_text_chars: int = Field(600, ge=1, le=10_000)
    tts_max_long_text_chars: int = Field(2000, ge=1, le=20_000)
    # Threads that run synthesis (CPU-bound; each ONNX engine uses every core itself).
    tts_synthesis_threads: int = Field(2, ge=1, le=64)
    # Synthesis asked for ahead of time (tts.requests) runs on threads of its own, one message at
    # a time by default, so a backlog of it never holds up a learner waiting for a line.
    tts_background_threads: int = Field(1, ge=1, le=64)
    tts_background_max_messages: int = Field(1, ge=1, le=1000)

    # Paid synthesis (Gemini) per day, in characters, over every learner (the budget table).
    tts_daily_budget_chars: int = Field(100_000, ge=0)
    # The Gemini speech model (engines/gemini_speech.py); transcription uses gemini_model_flash.
    tts_gemini_model: str = "gemini-2.5-flash-preview-tts"
    # When Gemini cannot speak (outage, budget spent) a character speaks with its offline voice;
    # False: the request fails with 503 and Retry-After instead.
    tts_fallback_offline: bool = True

    # Per learner.
    tts_speech_rate: str = Field("120/minute", pattern=RATE_PATTERN)
    tts_transcribe_rate: str = Field("20/minute", pattern=RATE_PATTERN)

    # tts.requests: deliveries of one event that may fail for a passing reason (provider or
    # database outage) before the event is answered with an error on tts.ready.
    tts_request_max_attempts: int = Field(3, ge=1, le=15)

    @model_validator(mode="after")
    def _google_needs_keys(self) -> TtsSettings:
        if self.tts_provider == "google" and not self.gemini_api_keys:
            raise ValueError("WP_TTS_PROVIDER=google needs WP_GEMINI_API_KEYS")
        return self

    @property
    def uses_google(self) -> bool:
        """Gemini speaks (the provider is google, or auto with the Gemini keys set)."""
        if self.tts_provider == "google":
            return True
        return self.tts_provider == "auto" and self.ai_provider in ("auto", "gemini") and bool(self.gemini_api_keys)
