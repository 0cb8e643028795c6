from __future__ import annotations

from pydantic import Field
from workplace_kit.config import ServiceSettings


class WebSettings(ServiceSettings):
    service_name: str = "web"
    http_port: int = Field(8100, ge=0, le=65535)
    web_chat_grpc_addr: str = "127.0.0.1:50051"
    web_feedback_grpc_addr: str = "127.0.0.1:50052"
    # While Redis (the live channel) is down, feedback streams read stored analyses this often.
    web_feedback_poll_s: float = Field(3.0, gt=0, le=60)
    # Where the browser sends chat requests: same origin (through the gateway) by default.
    web_chat_api_url: str = "/api/v2/chat"
    web_grpc_timeout_s: float = Field(5.0, gt=0)
