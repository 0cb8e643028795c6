"""Gemini speech and transcription end to end on the wire: the real google-genai client against
the Gemini stand-in (tests/contract/gemini_standin.py). The daily budget here is a counting one
of this test (the PostgreSQL budget is tested in tests/integration/test_tts_budget.py)."""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
from gemini_standin import AudioReply, Fail, GeminiStandIn, Reply, speech_duration_ms, tone_pcm
from tts_service.engines.base import SpeechUnavailable, VoiceSpec
from tts_service.engines.gemini_speech import GeminiSpeech
from tts_service.transcription import (
    GeminiTranscriber,
    TranscriptionUnavailable,
    UnavailableTranscriber,
    build_transcriber,
)
from workplace_kit.config import ServiceSettings
from workplace_kit.errors import InvalidInput, Unavailable

TTS_MODEL = "gemini-2.5-flash-preview-tts"
FLASH = "gemini-2.5-flash"
VOICE = VoiceSpec(
    id="ja-female-gemini",
    language="ja",
    gender="female",
    engine="google:gemini-tts",
    params={"gemini_voice": "Kore"},
)
TEXT = "お疲れさまです。資料の件でご相談があります。"


class SpeechSettings(ServiceSettings):
    tts_gemini_model: str = TTS_MODEL
    tts_daily_budget_chars: int = 10_000


class CountingBudget:
    """A daily budget in memory: what GeminiSpeech reserved and gave back."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0
        self.reserved: list[int] = []
        self.refunded: list[int] = []

    async def reserve(self, chars: int) -> None:
        if self.used + chars > self.limit:
            raise SpeechUnavailable("budget")
        self.used += chars
        self.reserved.append(chars)

    async def refund(self, chars: int) -> None:
        self.used -= chars
        self.refunded.append(chars)


def settings_for(standin: GeminiStandIn, keys: list[str] | None = None) -> SpeechSettings:
    return SpeechSettings(
        gemini_api_keys=keys or ["key-a"],
        gemini_base_url=standin.base_url,
        gemini_api_version="v1beta",
        gemini_model_flash=FLASH,
        gemini_model_pro="gemini-2.5-pro",
        gemini_retry_attempts=2,
        gemini_retry_initial_delay_s=0.01,
        gemini_retry_max_delay_s=0.02,
        gemini_timeout_s=5.0,
    )


@pytest.fixture(scope="module")
def standin() -> Iterator[GeminiStandIn]:
    with GeminiStandIn() as server:
        yield server


@pytest.fixture
def budget() -> CountingBudget:
    return CountingBudget(limit=1_000)


@pytest.fixture
async def speech(standin: GeminiStandIn, budget: CountingBudget) -> AsyncIterator[GeminiSpeech]:
    standin.reset()
    engine = GeminiSpeech(settings_for(standin), budget)
    yield engine
    await engine.aclose()


def expected_samples(text: str, rate: int = 24_000) -> int:
    return rate * speech_duration_ms(text) // 1000


async def test_speech_comes_back_as_pcm_at_the_rate_gemini_names(standin, speech, budget) -> None:
    pcm = await speech.synthesize_async(TEXT, VOICE, 1.0)

    assert pcm.sample_rate == 24_000
    assert pcm.samples.dtype == np.int16 and len(pcm.samples) == expected_samples(TEXT)
    # The stand-in's tone, sample for sample: the bytes were read as little-endian s16.
    assert np.array_equal(pcm.samples, np.frombuffer(tone_pcm(speech_duration_ms(TEXT)), dtype="<i2"))
    assert pcm.duration_ms == speech_duration_ms(TEXT)
    assert budget.reserved == [len(TEXT)] and budget.refunded == []

    [request] = standin.requests
    assert (request.action, request.model, request.api_key) == ("generateContent", TTS_MODEL, "key-a")
    assert request.user_texts == [TEXT]
    config = request.body["generationConfig"]
    assert config["responseModalities"] == ["AUDIO"]
    # google-genai 3.4 writes the inside of speechConfig in proto field names (voice_config,
    # prebuilt_voice_config, voice_name), which Gemini accepts as it does camelCase.
    assert "speechConfig" in config and request.voice_name == "Kore"


async def test_a_longer_text_gives_longer_speech_and_another_rate_is_read_from_the_mime_type(standin, speech) -> None:
    short = await speech.synthesize_async("はい。", VOICE, 1.0)
    standin.script(AudioReply(sample_rate=16_000))
    long = await speech.synthesize_async(TEXT, VOICE, 1.0)

    assert len(short.samples) == expected_samples("はい。") < len(long.samples)
    assert long.sample_rate == 16_000 and len(long.samples) == expected_samples(TEXT, 16_000)


async def test_the_blocking_call_from_a_worker_thread_runs_on_the_services_loop(standin, speech) -> None:
    pcm = await asyncio.to_thread(speech.synthesize, TEXT, VOICE, 1.0)
    assert len(pcm.samples) == expected_samples(TEXT)
    with pytest.raises(RuntimeError, match="synthesize_async"):
        speech.synthesize(TEXT, VOICE, 1.0)  # on the loop itself it would wait for itself


async def test_pace_is_asked_for_in_words(standin, speech, budget) -> None:
    await speech.synthesize_async("ゆっくり話します。", VOICE, 0.8)
    [request] = standin.requests
    assert request.user_texts == ["Say slowly and clearly: ゆっくり話します。"]
    assert budget.reserved == [len("Say slowly and clearly: ゆっくり話します。")]


@pytest.mark.parametrize("status", [503, 500])
async def test_an_overloaded_or_failing_gemini_becomes_speech_unavailable_and_the_budget_is_given_back(
    standin, speech, budget, status
) -> None:
    standin.script(Fail(status), times=None)
    with pytest.raises(SpeechUnavailable):
        await speech.synthesize_async(TEXT, VOICE, 1.0)

    assert len(standin.requests) == 2  # the client's own retry, then no more
    assert budget.used == 0 and budget.refunded == [len(TEXT)]


async def test_quota_on_one_key_moves_to_the_next_and_on_every_key_is_unavailable(standin, budget) -> None:
    standin.reset()
    engine = GeminiSpeech(settings_for(standin, ["key-a", "key-b"]), budget)
    try:
        standin.script(Fail(429, retry_delay_s=30), times=None, key="key-a")
        pcm = await engine.synthesize_async(TEXT, VOICE, 1.0)
        assert len(pcm.samples) == expected_samples(TEXT)
        assert [r.api_key for r in standin.requests if r.status == 200] == ["key-b"]

        standin.reset()
        standin.script(Fail(429), times=None)
        with pytest.raises(SpeechUnavailable, match="busy"):
            await engine.synthesize_async(TEXT, VOICE, 1.0)
        # key-a is still cooling down (its RetryInfo said 30 s): only key-b was asked.
        assert {r.api_key for r in standin.requests} == {"key-b"}
    finally:
        await engine.aclose()


async def test_a_spent_budget_refuses_before_anything_reaches_gemini(standin) -> None:
    standin.reset()
    budget = CountingBudget(limit=len(TEXT) + 5)
    engine = GeminiSpeech(settings_for(standin), budget)
    try:
        await engine.synthesize_async(TEXT, VOICE, 1.0)
        assert len(standin.requests) == 1
        with pytest.raises(SpeechUnavailable, match="budget"):
            await engine.synthesize_async(TEXT, VOICE, 1.0)
        with pytest.raises(SpeechUnavailable, match="budget"):
            await asyncio.to_thread(engine.synthesize, TEXT, VOICE, 1.0)
        assert len(standin.requests) == 1
        assert budget.used == len(TEXT)
    finally:
        await engine.aclose()


async def test_an_answer_without_audio_is_unavailable(standin, speech, budget) -> None:
    standin.script(Reply(["I cannot say that."], finish_reason="OTHER"))
    with pytest.raises(SpeechUnavailable, match="no audio"):
        await speech.synthesize_async(TEXT, VOICE, 1.0)
    assert budget.used == len(TEXT)  # Google answered: the characters stay spent


async def test_the_voice_name_may_come_as_the_voice_books_voice_name(standin, speech) -> None:
    voice = VoiceSpec(
        id="en-gemini-puck", language="en", gender="male", engine="google:gemini-tts", params={"voice_name": "Puck"}
    )
    await speech.synthesize_async("Thanks for your help today.", voice, 1.0)
    assert standin.requests[0].voice_name == "Puck"


async def test_a_voice_without_a_gemini_name_is_refused_locally(standin, speech) -> None:
    voice = VoiceSpec(id="x", language="ja", gender="female", engine="google:gemini-tts")
    with pytest.raises(SpeechUnavailable):
        await speech.synthesize_async(TEXT, voice, 1.0)
    assert standin.requests == []


# -- transcription --------------------------------------------------------------------------


def wav_bytes(duration_ms: int = 500) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(tone_pcm(duration_ms, 16_000))
    return out.getvalue()


@pytest.fixture
async def transcriber(standin: GeminiStandIn) -> AsyncIterator[GeminiTranscriber]:
    standin.reset()
    settings = settings_for(standin)
    built = build_transcriber(settings)
    assert isinstance(built, GeminiTranscriber) and built.available
    yield built
    await built.aclose()


async def test_transcription_sends_the_audio_inline_and_returns_geminis_text(standin, transcriber) -> None:
    audio = wav_bytes()
    standin.script(Reply(["  お先に失礼します。\n"]))
    text = await transcriber.transcribe(audio, "audio/wav", "ja")

    assert text == "お先に失礼します。"
    [request] = standin.requests
    assert (request.action, request.model) == ("generateContent", FLASH)
    assert request.inline_data == [("audio/wav", audio)]
    [instruction] = [t for t in request.user_texts if t]
    assert "verbatim" in instruction and "Japanese" in instruction
    assert "responseModalities" not in request.body.get("generationConfig", {})


def webm_opus_bytes() -> bytes:
    """One second of a tone as Chrome's MediaRecorder records it: Opus in WebM."""
    import io

    import av
    import numpy as np

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(48000) / 48000)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = 48000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


async def test_a_browsers_webm_recording_reaches_gemini_as_ogg_opus(standin, transcriber) -> None:
    standin.script(Reply(["お疲れさまです。"]))
    text = await transcriber.transcribe(webm_opus_bytes(), "audio/webm;codecs=opus", "ja")
    assert text == "お疲れさまです。"
    [(mime, sent)] = standin.requests[0].inline_data
    assert mime == "audio/ogg" and sent.startswith(b"OggS") and b"OpusHead" in sent[:200]
    with pytest.raises(InvalidInput):
        await transcriber.transcribe(b"not a recording", "audio/webm", "ja")


async def test_english_transcription_and_the_stand_ins_default_transcript(standin, transcriber) -> None:
    text = await transcriber.transcribe(wav_bytes(), "audio/ogg", "en")
    assert text == "Good morning. Could I ask you something about the report?"
    assert "English" in standin.requests[0].user_texts[-1]


async def test_transcription_errors_are_the_kits_domain_errors(standin, transcriber) -> None:
    with pytest.raises(InvalidInput):
        await transcriber.transcribe(b"", "audio/wav", "ja")
    with pytest.raises(InvalidInput):
        await transcriber.transcribe(wav_bytes(), "text/plain", "ja")
    with pytest.raises(InvalidInput):
        await transcriber.transcribe(wav_bytes(), "audio/wav", "fr")
    assert standin.requests == []

    standin.script(Fail(503), times=None)
    with pytest.raises(Unavailable):
        await transcriber.transcribe(wav_bytes(), "audio/wav", "ja")
    standin.reset()
    standin.script(Fail(400, "Unsupported MIME type: audio/x-foo"))
    with pytest.raises(InvalidInput):
        await transcriber.transcribe(wav_bytes(), "audio/x-foo", "ja")


async def test_without_a_key_there_is_no_recogniser(standin) -> None:
    built = build_transcriber(ServiceSettings(gemini_api_keys=[]))
    assert isinstance(built, UnavailableTranscriber) and not built.available
    with pytest.raises(TranscriptionUnavailable) as caught:
        await built.transcribe(wav_bytes(), "audio/wav", "ja")
    assert caught.value.grpc_code_name == "FAILED_PRECONDITION"
    assert "音声入力" in caught.value.message and "Voice input" in caught.value.message
    # An offline provider keeps Google out even when a key is set.
    assert not build_transcriber(ServiceSettings(gemini_api_keys=["k"], ai_provider="offline")).available
