"""The emotion vocabulary shared by the feedback service (which produces analyses) and the
pages (which show them)."""

from __future__ import annotations

# Canonical labels shared by every engine (ML-Ask's ten emotions mapped onto them, plus neutral).
EMOTIONS: tuple[str, ...] = (
    "joy",  # 喜 yorokobi
    "anger",  # 怒 ikari
    "sadness",  # 哀 aware
    "fear",  # 怖 kowa
    "shame",  # 恥 haji
    "liking",  # 好 suki
    "dislike",  # 厭 iya
    "excitement",  # 昂 takaburi
    "relief",  # 安 yasu
    "surprise",  # 驚 odoroki
    "neutral",
)

EMOTION_LABELS_JA: dict[str, str] = {
    "joy": "喜び",
    "anger": "怒り",
    "sadness": "悲しみ",
    "fear": "不安",
    "shame": "恥ずかしさ",
    "liking": "好意",
    "dislike": "嫌悪",
    "excitement": "高揚",
    "relief": "安心",
    "surprise": "驚き",
    "neutral": "平静",
}

EMOTION_LABELS_EN: dict[str, str] = {
    "joy": "Joy",
    "anger": "Anger",
    "sadness": "Sadness",
    "fear": "Worry",
    "shame": "Embarrassment",
    "liking": "Warmth",
    "dislike": "Displeasure",
    "excitement": "Excitement",
    "relief": "Relief",
    "surprise": "Surprise",
    "neutral": "Calm",
}


def emotion_label(emotion: str, language: str = "ja") -> str:
    labels = EMOTION_LABELS_EN if language == "en" else EMOTION_LABELS_JA
    return labels.get(emotion, emotion)
