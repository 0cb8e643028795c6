"""One short sentence for the learner describing the tone of their message, in their language."""

from __future__ import annotations

from typing import Literal

Tone = Literal["positive", "negative", "neutral"]

# Beyond this much polarity the sentence mentions the overall tone (positive or negative).
TONE_THRESHOLD = 0.25

# dominant emotion -> tone -> sentence; the "neutral" entry is the default for every tone not listed.
_JA: dict[str, dict[Tone, str]] = {
    "joy": {
        "neutral": "前向きで、喜びが伝わる発言です。",
        "negative": "喜びと気がかりが入り混じった発言です。",
    },
    "anger": {"neutral": "苛立ちや怒りが伝わる言い方になっています。"},
    "sadness": {"neutral": "残念な気持ちや落ち込みがにじむ発言です。"},
    "fear": {
        "neutral": "不安や心配が伝わる発言です。",
        "positive": "少し不安はありつつも、前向きさも感じられる発言です。",
    },
    "shame": {"neutral": "恥ずかしさや遠慮が感じられる発言です。"},
    "liking": {"neutral": "相手への好意や感謝が伝わる、温かい発言です。"},
    "dislike": {"neutral": "不満や抵抗感が伝わる発言です。"},
    "excitement": {
        "neutral": "気持ちの高ぶりが伝わる発言です。",
        "positive": "意欲や高揚感が伝わる、勢いのある発言です。",
        "negative": "焦りや緊張が感じられる発言です。",
    },
    "relief": {"neutral": "ほっとした安心感が伝わる発言です。"},
    "surprise": {
        "neutral": "驚きが素直に表れた発言です。",
        "positive": "うれしい驚きが伝わる発言です。",
        "negative": "驚きと戸惑いが感じられる発言です。",
    },
    "neutral": {
        "neutral": "落ち着いた、感情を抑えた発言です。",
        "positive": "全体に前向きな印象の発言です。",
        "negative": "やや否定的な印象を与える発言です。",
    },
}

_EN: dict[str, dict[Tone, str]] = {
    "joy": {
        "neutral": "Your message sounds positive and happy.",
        "negative": "Your message mixes happiness with some concern.",
    },
    "anger": {"neutral": "Your message comes across as frustrated or angry."},
    "sadness": {"neutral": "Your message sounds sad or disappointed."},
    "fear": {
        "neutral": "Your message sounds worried or anxious.",
        "positive": "Your message sounds a little anxious but still hopeful.",
    },
    "shame": {"neutral": "Your message sounds embarrassed or apologetic."},
    "liking": {"neutral": "Your message sounds warm and appreciative."},
    "dislike": {"neutral": "Your message shows some displeasure or reluctance."},
    "excitement": {
        "neutral": "Your message sounds enthusiastic and energetic.",
        "negative": "Your message sounds tense or under pressure.",
    },
    "relief": {"neutral": "Your message sounds relieved and reassured."},
    "surprise": {
        "neutral": "Your message sounds surprised.",
        "positive": "Your message sounds pleasantly surprised.",
        "negative": "Your message sounds surprised and a little unsettled.",
    },
    "neutral": {
        "neutral": "Your message sounds calm and matter-of-fact.",
        "positive": "Your message sounds positive and friendly.",
        "negative": "Your message comes across as somewhat negative.",
    },
}

_SENTENCES = {"ja": _JA, "en": _EN}


def tone_of(polarity: float) -> Tone:
    if polarity >= TONE_THRESHOLD:
        return "positive"
    if polarity <= -TONE_THRESHOLD:
        return "negative"
    return "neutral"


def describe_tone(language: str, dominant: str, polarity: float) -> str:
    """A natural sentence, e.g. 「前向きで、喜びが伝わる発言です。」 or "Your message sounds positive and friendly."""
    try:
        by_emotion = _SENTENCES[language]
    except KeyError:
        raise ValueError(f"No tone sentences for language {language!r}; expected one of {sorted(_SENTENCES)}") from None
    try:
        by_tone = by_emotion[dominant]
    except KeyError:
        raise ValueError(f"Unknown emotion {dominant!r}; expected one of {sorted(by_emotion)}") from None
    return by_tone.get(tone_of(polarity), by_tone["neutral"])
