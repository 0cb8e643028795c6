"""The feedback card of one learner turn: what they did well, what to change, and a better phrasing
in their own words, from the emotion analysis and the register check together."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .register import VERDICTS, RegisterCheck

if TYPE_CHECKING:  # types only: emotion.types names FeedbackCard the same way
    from ..emotion.types import EmotionResult

DID_WELL_MAX_CHARS = 200
BETTER_MAX_CHARS = 400


@dataclass(frozen=True)
class FeedbackCard:
    verdict: str  # ok | too_casual | rude | too_formal | too_direct
    did_well: str  # one sentence
    to_change: str  # one sentence, or "" when the register was right
    better_phrasing: str  # the learner's message said better, or ""
    register_expected: str  # e.g. 「丁寧語・尊敬語・謙譲語」

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeedbackCard | None:
        """A card read back (stored JSON or a model's answer); None when it is not one."""
        if not isinstance(data, dict) or data.get("verdict") not in VERDICTS:
            return None
        text = {k: " ".join(str(data.get(k) or "").split()) for k in ("did_well", "to_change", "better_phrasing")}
        return cls(
            verdict=str(data["verdict"]),
            did_well=text["did_well"][:DID_WELL_MAX_CHARS],
            to_change=text["to_change"][:DID_WELL_MAX_CHARS] if data["verdict"] != "ok" else "",
            better_phrasing=text["better_phrasing"][:BETTER_MAX_CHARS] if data["verdict"] != "ok" else "",
            register_expected=" ".join(str(data.get("register_expected") or "").split())[:100],
        )


# When the register check found nothing to praise: what the message's feeling does well.
_FEELING_JA = {
    "joy": "前向きな気持ちが、はっきり伝わっています。",
    "liking": "相手への感謝や好意が伝わっています。",
    "relief": "ほっとした気持ちが素直に伝わっています。",
    "excitement": "意欲や勢いが伝わっています。",
    "surprise": "驚いた気持ちが素直に表れています。",
    "fear": "不安や心配を、正直に言葉にできています。",
    "sadness": "残念な気持ちを、正直に言葉にできています。",
    "shame": "自分の非を認める気持ちが伝わっています。",
    "anger": "何に困っているのかは伝わっています。",
    "dislike": "何が気になっているのかは伝わっています。",
    "neutral": "用件が短く、はっきり伝わります。",
}
_FEELING_EN = {
    "joy": "Your positive feeling comes through clearly.",
    "liking": "Your appreciation for the other person comes through.",
    "relief": "Your relief comes through naturally.",
    "excitement": "Your enthusiasm comes through.",
    "surprise": "Your surprise comes across naturally.",
    "fear": "You are honest about what worries you.",
    "sadness": "You are honest about your disappointment.",
    "shame": "You own the mistake, which people respect.",
    "anger": "It is clear what is bothering you.",
    "dislike": "It is clear what is bothering you.",
    "neutral": "Your point is short and clear.",
}


def build_card(emotion: EmotionResult, check: RegisterCheck) -> FeedbackCard:
    """One card: praise from the register check (keigo used, courtesy markers) or else from the
    message's feeling; what to change and the better phrasing from the register check."""
    feelings = _FEELING_EN if check.language == "en" else _FEELING_JA
    did_well = check.strengths[0] if check.strengths else feelings.get(emotion.dominant, feelings["neutral"])
    if check.verdict == "ok":
        return FeedbackCard("ok", did_well, "", "", check.register_expected)
    return FeedbackCard(
        verdict=check.verdict,
        did_well=did_well,
        to_change=check.reasons[0] if check.reasons else "",
        better_phrasing=check.better_phrasing,
        register_expected=check.register_expected,
    )
