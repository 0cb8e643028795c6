"""The TTS service's parts that need no infrastructure: every character's voice (voices.yaml),
sentences, the cache key, the encoders, and how a request is checked and resolved."""

from __future__ import annotations

import io
import wave
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import redis.asyncio as aioredis
from tts_service.audio import (
    MAX_SENTENCE_CHARS,
    Mp3Encoder,
    WavEncoder,
    cache_key,
    is_mp3,
    mp3_frames,
    normalise,
    split_sentences,
)
from tts_service.cache import AudioCache
from tts_service.domain import SpeechRequest, TtsService
from tts_service.engines.base import Pcm, VoiceSpec
from tts_service.engines.openjtalk import OpenJTalkEngine
from tts_service.engines.piper import PiperEngine
from tts_service.settings import TtsSettings
from tts_service.voices import GEMINI_ENGINE, VoiceBook, VoicesFile, load_voice_book
from workplace_content import content
from workplace_kit.errors import Conflict, InvalidInput, NotFound

CONFIGURATIONS = [("offline", "auto"), ("offline", "openjtalk"), ("offline", "kokoro"), ("google", "auto")]


@pytest.mark.parametrize(("provider", "ja_engine"), CONFIGURATIONS)
def test_every_character_has_a_voice_in_both_languages_and_men_sound_male_in_japanese(provider, ja_engine) -> None:
    table = load_voice_book().table(provider, ja_engine)
    for character in content().characters.values():
        for language in ("ja", "en"):
            voice = table.for_character(character, language)
            assert voice.language == language, (character.id, voice)
            assert table.voice(voice.id) == voice  # a request may name it
            if language == "ja" or provider == "google":
                assert voice.gender == character.voice.gender, (character.id, language, voice.id)
        if provider == "google":
            # Gemini: one voice per character, the same in both languages.
            assert table.for_character(character, "ja").params == table.for_character(character, "en").params
            assert table.offline_for(character, "ja").engine != GEMINI_ENGINE


def test_the_choice_is_fixed_the_same_after_reading_the_file_again() -> None:
    import yaml
    from tts_service.voices import VOICES_FILE

    first = load_voice_book()
    again = VoiceBook.from_file(VoicesFile.model_validate(yaml.safe_load(VOICES_FILE.read_text(encoding="utf-8"))))
    for provider, ja_engine in CONFIGURATIONS:
        a, b = first.table(provider, ja_engine), again.table(provider, ja_engine)
        for character in content().characters.values():
            for language in ("ja", "en"):
                assert a.for_character(character, language) == b.for_character(character, language)
                assert a.for_character(character, language) == a.for_character(character, language)


def test_with_gemini_no_two_characters_share_a_voice_and_offline_the_engines_are_as_documented() -> None:
    book = load_voice_book()
    characters = list(content().characters.values())
    gemini = book.table("google", "auto")
    names = Counter(gemini.for_character(c, "ja").params["voice_name"] for c in characters)
    assert max(names.values()) == 1, names
    offline = book.table("offline", "auto")
    for c in characters:
        ja, en = offline.for_character(c, "ja"), offline.for_character(c, "en")
        assert en.engine == "offline:piper"  # the only English voice offline (male)
        if c.voice.gender == "male":
            assert ja.engine == "offline:kokoro" and ja.params["speaker"] == "jm_kumo"
    # Open JTalk only: female characters all speak with mei; men still with Kokoro's jm_kumo.
    only_ojt = book.table("offline", "openjtalk")
    assert {only_ojt.for_character(c, "ja").engine for c in characters if c.voice.gender == "female"} == {
        "offline:pyopenjtalk"
    }
    assert offline.voice("ja-gemini-kore") is None and gemini.voice("ja-gemini-kore") is not None


def test_the_file_refuses_a_rule_list_without_a_catch_all_or_a_wrong_voice() -> None:
    import yaml
    from tts_service.voices import VOICES_FILE

    data = yaml.safe_load(VOICES_FILE.read_text(encoding="utf-8"))
    data["rules"]["ja"]["male"] = data["rules"]["ja"]["male"][:-1]
    with pytest.raises(ValueError, match="no conditions"):
        VoicesFile.model_validate(data)
    data = yaml.safe_load(VOICES_FILE.read_text(encoding="utf-8"))
    data["rules"]["ja"]["male"][-1]["voice"] = "ja-mei-calm"
    with pytest.raises(ValueError, match="not a male voice"):
        VoicesFile.model_validate(data)


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("こんにちは。今日はよろしくお願いします！", ["こんにちは。", "今日はよろしくお願いします！"]),
        ("「わかりました。」と言った。", ["「わかりました。」", "と言った。"]),
        ("本当ですか？？ はい", ["本当ですか？？", "はい"]),
        ("It costs 3.5 dollars. OK? Yes!", ["It costs 3.5 dollars.", "OK?", "Yes!"]),
        ('He said "fine." Then left', ['He said "fine."', "Then left"]),
        ("一行目\n二行目", ["一行目", "二行目"]),
        ("終わりのない文", ["終わりのない文"]),
    ],
)
def test_sentences_end_where_the_pages_split_them(text, sentences) -> None:
    assert split_sentences(normalise(text)) == sentences


def test_a_very_long_sentence_is_cut_at_a_comma() -> None:
    text = "、".join(["これはとても長い文の一部です"] * 30) + "。"
    pieces = split_sentences(text)
    assert len(pieces) > 1 and all(len(p) <= MAX_SENTENCE_CHARS for p in pieces)
    assert "".join(pieces) == text
    assert all(p.endswith("、") for p in pieces[:-1])


def test_normalising_keeps_words_and_drops_what_is_not_spoken() -> None:
    assert normalise("  こんにちは\u3000\u3000世界 \r\n\r\n\x00次の行\t ") == "こんにちは 世界\n次の行"


def test_the_cache_key_covers_what_shapes_the_audio() -> None:
    voice = VoiceSpec("ja-mei-calm", "ja", "female", "offline:pyopenjtalk", {"half_tone": -1.0, "speed": 0.97})
    base = dict(engine=voice.engine, voice=voice, speed=1.0, mime_type="audio/mpeg", text="はい。", options={})
    key = cache_key(**base)
    assert len(key) == 64 and key == cache_key(**base)
    assert key == cache_key(**{**base, "text": "  はい。 "})  # the same words
    other_voice = VoiceSpec("ja-mei-bright", "ja", "female", "offline:pyopenjtalk", {"half_tone": 1.0})
    retuned = VoiceSpec("ja-mei-calm", "ja", "female", "offline:pyopenjtalk", {"half_tone": -2.0, "speed": 0.97})
    for change in (
        {"voice": other_voice},
        {"voice": retuned},  # the same id with other parameters
        {"speed": 1.2},
        {"mime_type": "audio/wav"},
        {"text": "いいえ。"},
        {"engine": "offline:kokoro"},
        {"options": {"kbps": 96}},
    ):
        assert cache_key(**{**base, **change}) != key, change


def _tone(sample_rate: int, seconds: float) -> Pcm:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return Pcm((np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16), sample_rate)


@pytest.mark.parametrize(("sample_rate", "version"), [(48000, "1"), (24000, "2"), (22050, "2")])
def test_mp3_of_several_sentences_is_one_stream_of_frames_at_the_engines_rate(sample_rate, version) -> None:
    encoder = Mp3Encoder(64)
    pieces = [encoder.feed(_tone(sample_rate, 0.7)), encoder.feed(_tone(sample_rate, 0.5)), encoder.finish()]
    data = b"".join(pieces)
    assert is_mp3(data) and data[0] == 0xFF and data[1] & 0xE0 == 0xE0  # frame sync: 11 bits set
    frames = mp3_frames(data)
    assert {(f.version, f.sample_rate, f.bitrate_kbps) for f in frames} == {(version, sample_rate, 64)}
    samples_per_frame = 1152 if version == "1" else 576
    assert len(frames) * samples_per_frame / sample_rate == pytest.approx(1.2, abs=0.15)
    with pytest.raises(ValueError):
        encoder.feed(_tone(16000, 0.1))  # one text, one rate


def test_wav_is_streamed_with_open_sizes_and_stored_with_real_ones() -> None:
    encoder = WavEncoder()
    whole = encoder.feed(_tone(22050, 0.5)) + encoder.feed(_tone(22050, 0.25)) + encoder.finish()
    assert whole[4:8] == b"\xff\xff\xff\xff"
    stored = encoder.finalise(whole)
    with wave.open(io.BytesIO(stored)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (22050, 1, 2)
        assert w.getnframes() == int(22050 * 0.5) + int(22050 * 0.25)


def test_the_offline_engines_speak_at_their_rates() -> None:
    book = load_voice_book()
    mei = OpenJTalkEngine().synthesize("はい。", book.by_id["ja-mei-calm"], 1.0)
    joe = PiperEngine().synthesize("Yes.", book.by_id["en-joe"], 1.0)
    assert mei.sample_rate == 48000 and joe.sample_rate == 22050
    for pcm in (mei, joe):
        assert pcm.samples.dtype == np.int16 and pcm.duration_ms > 200 and np.abs(pcm.samples).max() > 1000
    faster = PiperEngine().synthesize("Yes, I will send it today.", book.by_id["en-joe-brisk"], 1.0)
    slower = PiperEngine().synthesize("Yes, I will send it today.", book.by_id["en-joe-steady"], 1.0)
    assert faster.duration_ms < slower.duration_ms


@pytest.fixture
def service(tmp_path: Path) -> TtsService:
    settings = TtsSettings(gemini_api_keys=[])
    # The client connects on first use; plan() never uses it.
    cache = AudioCache(aioredis.from_url("redis://127.0.0.1:1"), tmp_path, ttl_s=60, max_redis_bytes=1024)
    table = load_voice_book().table("offline", "auto")
    return TtsService(settings, content(), table, {}, cache, executor=None)


def test_a_request_is_checked_and_resolved(service: TtsService) -> None:
    boss = service.plan(SpeechRequest("お疲れさまです。資料を確認しました。", character_id="boss"))
    assert boss.language == "ja" and boss.voice.id == "ja-mei-calm" and boss.mime_type == "audio/mpeg"
    assert boss.sentences == ("お疲れさまです。", "資料を確認しました。") and boss.fallback is None
    english = service.plan(SpeechRequest("Thanks for the update.", character_id="senior"))
    assert english.language == "en" and english.voice.id == "en-joe"  # detected from the text
    assert service.plan(SpeechRequest("Hello.", voice="en-joe-brisk", speed=1.5, mime_type="wav")).mime_type == (
        "audio/wav"
    )
    assert service.plan(SpeechRequest("はい。")).voice.id == "ja-mei-calm"  # the language's default
    for bad, where in (
        (SpeechRequest(""), "text"),
        (SpeechRequest("  \n "), "text"),
        (SpeechRequest("あ" * 601), "text"),
        (SpeechRequest("はい。", speed=3.0), "speed"),
        (SpeechRequest("はい。", mime_type="audio/ogg"), "mime_type"),
        (SpeechRequest("はい。", language="fr"), "language"),
    ):
        with pytest.raises(InvalidInput) as refused:
            service.plan(bad)
        assert refused.value.field == where
    assert len(service.plan(SpeechRequest("あ" * 600)).text) == 600
    with pytest.raises(Conflict) as mismatch:  # each field valid alone, together they disagree
        service.plan(SpeechRequest("Hello.", voice="en-joe", language="ja"))
    assert mismatch.value.field == "language"
    for unknown in (SpeechRequest("はい。", character_id="nobody"), SpeechRequest("はい。", voice="ja-nobody")):
        with pytest.raises(NotFound):
            service.plan(unknown)
    with pytest.raises(NotFound):  # Gemini's voices exist only where Gemini speaks
        service.plan(SpeechRequest("はい。", voice="ja-gemini-kore"))


def test_with_gemini_a_character_has_its_offline_voice_as_stand_in(service: TtsService) -> None:
    service.table = load_voice_book().table("google", "auto")
    plan = service.plan(SpeechRequest("はい、承知しました。", character_id="executive"))
    assert plan.voice.engine == GEMINI_ENGINE and plan.voice.params == {"voice_name": "Charon"}
    assert plan.fallback is not None and plan.fallback.id == "ja-kumo-steady"
    named = service.plan(SpeechRequest("はい。", voice="en-gemini-puck"))
    assert named.fallback is None and named.language == "en"


def test_a_recording_arrives_raw_or_in_a_multipart_form() -> None:
    from tts_service.http_api import _recording

    assert _recording("audio/webm;codecs=opus", b"\x1a\x45") == (b"\x1a\x45", "audio/webm;codecs=opus")
    boundary = "----x"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="language"\r\n\r\nja\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.webm"\r\n'
            "Content-Type: audio/webm\r\n\r\n"
        ).encode()
        + b"\x1a\x45\xdf\xa3\x00\xff"
        + f"\r\n--{boundary}--\r\n".encode()
    )
    assert _recording(f"multipart/form-data; boundary={boundary}", body) == (b"\x1a\x45\xdf\xa3\x00\xff", "audio/webm")
    with pytest.raises(InvalidInput):
        _recording(f"multipart/form-data; boundary={boundary}", f"--{boundary}--\r\n".encode())
