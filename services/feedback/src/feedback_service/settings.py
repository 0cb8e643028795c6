from __future__ import annotations

from pydantic import Field
from workplace_kit.config import ServiceSettings


class FeedbackSettings(ServiceSettings):
    service_name: str = "feedback"
    http_port: int = Field(8102, ge=0, le=65535)
    grpc_port: int = Field(50052, ge=0, le=65535)
