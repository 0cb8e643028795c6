from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from workplace_kit import registry
from workplace_kit.config import ServiceSettings
from workplace_kit.ratelimit import RATE_PATTERN

# The e5 vectors of every scenario script's examples and lines (`python -m watch_service build-index`):
# the scenario scripts read the learner's interventions.
VECTOR_CACHE = Path(__file__).parent / "watch_vectors.npz"


def _local_grpc(service: str) -> str:
    return f"127.0.0.1:{registry.load().get(service).grpc_port}"


class WatchSettings(ServiceSettings):
    service_name: str = "watch"
    # A dialogue's length in AI turns (the learner's interventions do not count), and the
    # seconds between turns, when the request does not say.
    watch_default_max_turns: int = Field(12, ge=2, le=30)
    watch_default_pace_s: float = Field(4.0, ge=1, le=15)
    # Nobody has had the dialogue open for this long: the worker ends it ("no_viewer")
    # instead of producing the next turn.
    watch_no_viewer_s: float = Field(30.0, ge=1, le=3600)
    # How often an open stream says it is being watched (well under watch_no_viewer_s).
    watch_heartbeat_s: float = Field(5.0, ge=0.2, le=600)
    # A stream reads the database this often even without a live notice (the safety net).
    watch_poll_s: float = Field(2.0, ge=0.05, le=60)
    # The longest a worker waits for a turn's not_before before producing it anyway.
    watch_max_wait_s: float = Field(20.0, ge=0, le=60)
    watch_max_message_chars: int = Field(1000, ge=1, le=20_000)
    # How many earlier turns go to a generative engine as they were (older ones condensed).
    watch_history_turns: int = Field(12, ge=1, le=100)
    watch_starts_rate: str = Field("20/minute", pattern=RATE_PATTERN)
    watch_messages_rate: str = Field("30/minute", pattern=RATE_PATTERN)
    # Where the scenario service's gRPC server is (search by meaning for a topic).
    watch_scenario_grpc_addr: str = Field(default_factory=lambda: _local_grpc("scenario"))
    watch_scenario_timeout_s: float = Field(5.0, gt=0, le=60)
    watch_vector_cache: Path = VECTOR_CACHE

    @model_validator(mode="after")
    def _heartbeat_fits(self) -> WatchSettings:
        if self.watch_heartbeat_s * 2 > self.watch_no_viewer_s:
            raise ValueError("watch_heartbeat_s must be at most half of watch_no_viewer_s")
        return self
