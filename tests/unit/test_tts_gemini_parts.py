"""The pure parts of Gemini speech and transcription: reading the audio Gemini sends, the
pace prompt, the checks on a transcription request, which transcriber a setting gives."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest
from google.genai import types
from tts_service.engines.base import SpeechUnavailable
from tts_service.engines.gemini_speech import audio_of, pcm_from_audio, prompt_for, rate_of
from tts_service.transcription import (
    MAX_AUDIO_BYTES,
    GeminiTranscriber,
    UnavailableTranscriber,
    build_transcriber,
    check_request,
)
from workplace_kit.config import ServiceSettings
from workplace_kit.errors import InvalidInput


@pytest.mark.parametrize(
    ("mime", "rate"),
    [
        ("audio/L16;codec=pcm;rate=24000", 24_000),
        ("audio/L16; rate=16000; codec=pcm", 16_000),
        ("audio/L16;codec=pcm", 24_000),  # none named: Gemini's rate
        ("audio/L16;rate=abc", 24_000),
    ],
)
def test_the_rate_is_read_from_the_mime_type(mime: str, rate: int) -> None:
    assert rate_of(mime) == rate


def test_raw_pcm_is_little_endian_16_bit_and_a_stray_byte_is_dropped() -> None:
    data = np.array([0, 1, -1, 32767, -32768], dtype="<i2").tobytes() + b"\x01"
    pcm = pcm_from_audio(data, "audio/L16;codec=pcm;rate=24000")
    assert pcm.samples.dtype == np.int16 and pcm.samples.tolist() == [0, 1, -1, 32767, -32768]
    assert pcm.sample_rate == 24_000


def test_wav_is_read_and_other_formats_are_refused() -> None:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(22_050)
        wav.writeframes(np.arange(100, dtype="<i2").tobytes())
    pcm = pcm_from_audio(out.getvalue(), "audio/wav")
    assert (pcm.sample_rate, len(pcm.samples), int(pcm.samples[99])) == (22_050, 100, 99)
    with pytest.raises(SpeechUnavailable):
        pcm_from_audio(b"ID3...", "audio/mpeg")
    with pytest.raises(SpeechUnavailable):
        pcm_from_audio(b"not a wav", "audio/wav")


def test_an_answer_with_only_text_has_no_audio() -> None:
    response = types.GenerateContentResponse(
        candidates=[types.Candidate(content=types.Content(role="model", parts=[types.Part(text="no")]))]
    )
    with pytest.raises(SpeechUnavailable, match="no audio"):
        audio_of(response)


def test_pace_goes_in_words_only_when_it_is_not_normal() -> None:
    assert prompt_for("はい。", 1.0) == "はい。"
    assert prompt_for("はい。", 0) == "はい。"  # 0: the default speed
    assert prompt_for("はい。", 0.7).startswith("Say slowly")
    assert prompt_for("はい。", 1.3).startswith("Say at a brisk pace")


def test_a_transcription_request_is_checked_before_anything_is_sent() -> None:
    assert check_request(b"x", "audio/webm", "") == "ja"
    assert check_request(b"x", "audio/ogg", "en") == "en"
    for audio, mime, language, field in [
        (b"", "audio/wav", "ja", "audio"),
        (b"x" * (MAX_AUDIO_BYTES + 1), "audio/wav", "ja", "audio"),
        (b"x", "video/mp4", "ja", "mime_type"),
        (b"x", "audio/wav", "zh", "language"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            check_request(audio, mime, language)
        assert caught.value.field == field


def test_the_transcriber_follows_the_gemini_setting() -> None:
    assert isinstance(build_transcriber(ServiceSettings(gemini_api_keys=[])), UnavailableTranscriber)
    assert isinstance(build_transcriber(ServiceSettings(gemini_api_keys=["k"])), GeminiTranscriber)
    assert isinstance(
        build_transcriber(ServiceSettings(gemini_api_keys=["k"], ai_provider="offline")), UnavailableTranscriber
    )
