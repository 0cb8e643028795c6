from __future__ import annotations

from pydantic import Field
from workplace_kit import registry
from workplace_kit.config import ServiceSettings


def _local_grpc(service: str) -> str:
    return f"127.0.0.1:{registry.load().get(service).grpc_port}"


class WebSettings(ServiceSettings):
    service_name: str = "web"
    # Where chat's and feedback's gRPC servers are (default: their registry ports locally).
    web_chat_grpc_addr: str = Field(default_factory=lambda: _local_grpc("chat"))
    web_feedback_grpc_addr: str = Field(default_factory=lambda: _local_grpc("feedback"))
    # While Redis (the live channel) is down, feedback streams read stored analyses this often.
    web_feedback_poll_s: float = Field(3.0, gt=0, le=60)
    # Where the browser sends chat requests: same origin (through the gateway) by default.
    web_chat_api_url: str = "/api/v2/chat"
    # Where the browser finds the scenario catalogue and roleplay sessions (same origin too).
    web_scenario_api_url: str = "/api/v2/scenario"
    # Where the browser reads coaching reports, the journal and strengths (same origin too).
    web_feedback_api_url: str = "/api/v2/feedback"
    # Where the browser starts and streams watched dialogues, and fetches speech (same origin too).
    web_watch_api_url: str = "/api/v2/watch"
    web_tts_api_url: str = "/api/v2/tts"
    web_grpc_timeout_s: float = Field(5.0, gt=0)
    # Whether the account page offers "Sign in with Google": true where auth's OIDC sign-in is
    # set up (the chart sets both from auth.oidc). A setting, not a call to auth on each page.
    web_google_sign_in_enabled: bool = False
