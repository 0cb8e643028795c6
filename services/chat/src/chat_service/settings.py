from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from workplace_kit.config import ServiceSettings
from workplace_kit.ratelimit import RATE_PATTERN


class ChatSettings(ServiceSettings):
    service_name: str = "chat"
    # How many earlier messages go to the AI as context.
    chat_history_turns: int = Field(20, ge=0, le=200)
    chat_default_temperature: float = Field(0.7, ge=0, le=2)
    chat_max_message_chars: int = Field(2000, ge=1, le=20_000)
    # Per learner ("N/minute", "N/day": workplace_kit.ratelimit): a person types far fewer
    # messages than the first; the second bounds what one account costs in AI calls a day.
    chat_messages_rate: str = Field("30/minute", pattern=RATE_PATTERN)
    chat_ai_replies_rate: str = Field("500/day", pattern=RATE_PATTERN)
    # How long a finished reply keeps trying to be stored through a database hiccup before the
    # learner is told it was not saved.
    chat_store_retry_s: float = Field(8.0, ge=0, le=60)
    # Deltas are sent as they come for the first words, then gathered until this long has passed
    # since the last one sent or a sentence ends: fewer SSE events and gRPC messages per reply.
    chat_delta_flush_ms: float = Field(50.0, ge=0, le=1000)
    # The learners' clock, for greetings that fit the time of day when a situation has none.
    chat_learner_timezone: str = "Asia/Tokyo"

    @field_validator("chat_learner_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Asia/Tokyo") from None
        return value
