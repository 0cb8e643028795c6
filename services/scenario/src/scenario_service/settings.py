from __future__ import annotations

from pathlib import Path

from pydantic import Field
from workplace_kit.config import ServiceSettings
from workplace_kit.ratelimit import RATE_PATTERN

# The e5 vectors of every scenario script's examples and lines (`python -m scenario_service build-index`).
VECTOR_CACHE = Path(__file__).parent / "scenario_vectors.npz"


class ScenarioSettings(ServiceSettings):
    service_name: str = "scenario"
    scenario_page_size: int = Field(20, ge=1, le=100)
    scenario_search_limit: int = Field(8, ge=1, le=50)
    scenario_max_message_chars: int = Field(1000, ge=1, le=20_000)
    # How many earlier exchanges go to a generative engine as context.
    scenario_history_turns: int = Field(12, ge=1, le=100)
    scenario_messages_rate: str = Field("30/minute", pattern=RATE_PATTERN)
    # How long a finished reply keeps trying to be stored through a database hiccup.
    scenario_store_retry_s: float = Field(8.0, ge=0, le=60)
    scenario_vector_cache: Path = VECTOR_CACHE
