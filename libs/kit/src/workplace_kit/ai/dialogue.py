"""Pick the dialogue engine from settings: Gemini when keys are set, else the offline engine.

WP_AI_PROVIDER=auto (default) | gemini | offline | local. "local" is the opt-in generative
model behind an OpenAI-compatible server (WP_LOCAL_LLM_BASE_URL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import ServiceSettings
from .types import DialogueEngine

if TYPE_CHECKING:
    from .offline_dialogue import Catalogue


def build_dialogue_engine(settings: ServiceSettings, catalogue: Catalogue | None) -> DialogueEngine:
    """`catalogue`: the serving service's characters, situations and lines (the offline engine
    answers from them; the generative engines get them through the system instruction). A
    service whose offline answers come from elsewhere (the scenario scripts) passes None and
    asks only when a generative engine is configured."""
    provider = settings.ai_provider
    if provider == "local":
        if not settings.local_llm_base_url:
            raise ValueError("WP_AI_PROVIDER=local needs WP_LOCAL_LLM_BASE_URL (an OpenAI-compatible server)")
        from .local_llm import LocalLLMDialogueEngine

        return LocalLLMDialogueEngine(base_url=settings.local_llm_base_url, model=settings.local_llm_model)
    if settings.gemini_enabled:
        if not settings.gemini_api_keys:
            raise ValueError("WP_AI_PROVIDER=gemini needs WP_GEMINI_API_KEYS")
        from .gemini import GeminiDialogueEngine

        return GeminiDialogueEngine(settings)
    from .offline_dialogue import OfflineDialogueEngine

    if catalogue is None:
        raise ValueError("no generative engine is configured and no offline catalogue was given")
    return OfflineDialogueEngine(catalogue)
