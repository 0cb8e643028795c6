"""GeminiEmotionAnalyser end to end: the real google-genai client against the Gemini stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from feedback_service.emotion.gemini import GeminiEmotionAnalyser
from feedback_service.emotion.types import EMOTIONS
from gemini_standin import Fail, GeminiStandIn, Reply
from workplace_kit.ai.gemini import MALFORMED_MESSAGE
from workplace_kit.ai.types import AIUnavailableError
from workplace_kit.config import ServiceSettings

FLASH = "gemini-2.5-flash"


@pytest.fixture(scope="module")
def standin() -> Iterator[GeminiStandIn]:
    with GeminiStandIn() as server:
        yield server


@pytest.fixture
async def analyser(standin: GeminiStandIn) -> AsyncIterator[GeminiEmotionAnalyser]:
    standin.reset()
    settings = ServiceSettings(
        gemini_api_keys=["key-a"],
        gemini_base_url=standin.base_url,
        gemini_api_version="v1beta",
        gemini_model_flash=FLASH,
        gemini_model_pro="gemini-2.5-pro",
        gemini_retry_attempts=2,
        gemini_retry_initial_delay_s=0.01,
        gemini_retry_max_delay_s=0.02,
        gemini_timeout_s=5.0,
    )
    analyser = GeminiEmotionAnalyser(settings)
    yield analyser
    await analyser.aclose()


async def test_scripted_answer_becomes_emotion_result(standin, analyser):
    standin.script(
        Reply.json(
            {
                "dominant": "relief",
                "scores": [{"label": "relief", "score": 0.8}, {"label": "joy", "score": 0.35}],
                "polarity": 0.6,
                "summary": "ほっとした気持ちが伝わってきます。",
            }
        )
    )

    result = await analyser.analyse("締め切りに間に合って安心しました。")

    assert analyser.engine == f"gemini:{FLASH}"
    assert result.engine == f"gemini:{FLASH}"
    assert result.language == "ja"
    assert result.dominant == "relief"
    assert result.scores == {"relief": 0.8, "joy": 0.35}
    assert result.polarity == 0.6
    assert result.summary == "ほっとした気持ちが伝わってきます。"

    [sent] = standin.requests
    assert sent.path == f"/v1beta/models/{FLASH}:generateContent"
    assert "締め切りに間に合って安心しました。" in sent.body["contents"][0]["parts"][0]["text"]
    config = sent.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseSchema"]
    assert tuple(schema["properties"]["dominant"]["enum"]) == EMOTIONS
    assert schema["properties"]["polarity"]["minimum"] == -1
    assert schema["properties"]["polarity"]["maximum"] == 1
    item = schema["properties"]["scores"]["items"]
    assert tuple(item["properties"]["label"]["enum"]) == EMOTIONS
    system = sent.body["systemInstruction"]["parts"][0]["text"]
    assert "Japanese" in system


async def test_out_of_range_and_unknown_values_are_repaired(standin, analyser):
    standin.script(
        Reply.json(
            {
                "dominant": "Happiness",
                "scores": [
                    {"label": "喜び", "score": 1.7},
                    {"label": "boredom", "score": 0.5},
                    {"label": "FEAR", "score": -0.2},
                    {"label": "joy", "score": "very"},
                    "not an object",
                ],
                "polarity": -3.5,
                "summary": "  Two lines\n  of   summary. ",
            }
        )
    )

    result = await analyser.analyse("I got the promotion!!", language="en")

    assert result.language == "en"
    assert result.dominant == "joy"
    assert result.scores == {"joy": 1.0, "fear": 0.0}
    assert result.polarity == -1.0
    assert result.summary == "Two lines of summary."
    assert "English" in standin.requests[0].body["systemInstruction"]["parts"][0]["text"]


async def test_unknown_dominant_falls_back_to_strongest_score_or_neutral(standin, analyser):
    standin.script(
        Reply.json(
            {
                "dominant": "confusion",
                "scores": [{"label": "surprise", "score": 0.9}, {"label": "fear", "score": 0.3}],
                "polarity": "n/a",
                "summary": "x",
            }
        ),
        Reply.json({"dominant": "???", "polarity": 0.1, "summary": "y"}),
    )

    first = await analyser.analyse("えっ、本当ですか？")
    second = await analyser.analyse("はい。")

    assert (first.dominant, first.polarity) == ("surprise", 0.0)
    assert (second.dominant, second.scores) == ("neutral", {})


async def test_language_is_detected_when_not_given(standin, analyser):
    standin.script(Reply.json({"dominant": "neutral", "scores": [], "polarity": 0, "summary": "Calm."}))
    result = await analyser.analyse("Could you check the slides before the meeting?")
    assert result.language == "en"
    assert "English" in standin.requests[0].body["systemInstruction"]["parts"][0]["text"]


async def test_answer_missing_a_field_is_an_ai_error(standin, analyser):
    standin.script(Reply.json({"dominant": "joy", "polarity": 0.5}))
    with pytest.raises(AIUnavailableError) as caught:
        await analyser.analyse("やった！")
    assert str(caught.value) == MALFORMED_MESSAGE


async def test_outage_surfaces_as_ai_unavailable_for_the_offline_fallback(standin, analyser):
    standin.script(Fail(503), times=None)
    with pytest.raises(AIUnavailableError):
        await analyser.analyse("少し不安です。")
    assert {r.status for r in standin.requests} == {503}


async def test_unscripted_stand_in_gives_a_valid_result(standin, analyser):
    result = await analyser.analyse("今日の面談、緊張しました。")
    assert result.dominant in EMOTIONS
    assert -1.0 <= result.polarity <= 1.0
    assert all(label in EMOTIONS and 0 <= score <= 1 for label, score in result.scores.items())
    assert result.summary


async def test_blank_text_needs_no_call(standin, analyser):
    result = await analyser.analyse("   ", language="ja")
    assert (result.dominant, result.polarity, result.language) == ("neutral", 0.0, "ja")
    assert standin.requests == []


async def test_a_turn_to_the_boss_asks_for_the_card_with_the_register_due(standin, analyser):
    """analyse_turn: the request names the partner and the register due, the schema asks for the
    card's fields with the verdicts as an enum; the answer becomes the card. A verdict the model
    invents costs only the card (the feedback service then writes it from its rules), not the
    emotion analysis."""
    standin.script(
        Reply.json(
            {
                "dominant": "neutral",
                "scores": [],
                "polarity": 0.0,
                "summary": "落ち着いた発言です。",
                "verdict": "too_casual",
                "did_well": "用件ははっきりしています。",
                "to_change": "上司には依頼の形で頼みましょう。",
                "better_phrasing": "資料をお送りいただけますか。",
            }
        ),
        Reply.json({"dominant": "joy", "polarity": 0.5, "summary": "x", "verdict": "casual-ish", "did_well": "y"}),
    )

    result = await analyser.analyse_turn("資料送って", "ja", "boss")

    assert result.card is not None
    assert result.card.verdict == "too_casual"
    assert result.card.better_phrasing == "資料をお送りいただけますか。"
    assert result.card.register_expected == "丁寧語・尊敬語・謙譲語"  # ours, not the model's
    [sent] = standin.requests
    system = sent.body["systemInstruction"]["parts"][0]["text"]
    assert "boss" in system and "丁寧語・尊敬語・謙譲語" in system
    schema = sent.body["generationConfig"]["responseSchema"]
    assert set(schema["properties"]["verdict"]["enum"]) == {"ok", "too_casual", "rude", "too_formal", "too_direct"}
    assert {"did_well", "to_change", "better_phrasing"} <= schema["properties"].keys()

    invented = await analyser.analyse_turn("Send me the file", "en", "colleague")
    assert invented.card is None and invented.dominant == "joy"
    assert "casual and friendly" in standin.requests[1].body["systemInstruction"]["parts"][0]["text"]
