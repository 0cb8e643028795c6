from __future__ import annotations

from workplace_kit.config import ServiceSettings


class FeedbackSettings(ServiceSettings):
    service_name: str = "feedback"
