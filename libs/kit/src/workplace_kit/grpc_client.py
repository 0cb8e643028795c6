"""gRPC client channels with tracing (trace context travels in the call metadata)."""

from __future__ import annotations

import grpc
from opentelemetry.instrumentation.grpc import aio_client_interceptors


def create_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(
        address,
        interceptors=aio_client_interceptors(),
        options=[("grpc.keepalive_time_ms", 30_000), ("grpc.enable_retries", 1)],
    )
