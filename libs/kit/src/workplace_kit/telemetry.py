"""OpenTelemetry tracing and Prometheus metrics, set up the same way in every service.

Traces go to an OTLP collector when WP_OTLP_ENDPOINT is set (nothing is exported otherwise,
but spans still exist so trace ids appear in logs and propagate over gRPC and Pub/Sub).
Metrics: HTTP metrics from prometheus-fastapi-instrumentator, gRPC metrics from our
interceptor (grpc_server.py), everything exposed at GET /metrics on the HTTP port.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from prometheus_client import Gauge
from prometheus_fastapi_instrumentator import Instrumentator
from starlette.types import ASGIApp, Receive, Scope, Send

from .config import ServiceSettings

log = logging.getLogger(__name__)
_configured = False

# One gauge per process (the instrumentator's own would be registered again for every app a
# process builds, as tests do). KEDA scales the HTTP services on it: an SSE reply stays in
# flight for as long as it streams.
HTTP_INPROGRESS = Gauge("http_requests_inprogress", "HTTP requests being served now", ["method"])
_NOT_COUNTED = ("/metrics", "/healthz", "/readyz")


class InFlightMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _NOT_COUNTED:
            await self.app(scope, receive, send)
            return
        gauge = HTTP_INPROGRESS.labels(scope["method"])
        gauge.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            gauge.dec()


def setup_tracing(settings: ServiceSettings) -> None:
    """Install the global tracer provider once per process; instrument asyncpg and redis."""
    global _configured
    if _configured:
        return
    _configured = True
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": settings.service_name, "deployment.environment": settings.environment}
        )
    )
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True))
        )
    trace.set_tracer_provider(provider)
    # The database and Redis drivers are extras: instrument the ones this service installs.
    try:
        from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

        AsyncPGInstrumentor().instrument()
    except ImportError:
        pass
    try:
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument()
    except ImportError:
        pass


def instrument_http_app(app: FastAPI) -> None:
    """Trace every request and expose Prometheus metrics at /metrics."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    app.add_middleware(InFlightMiddleware)
    Instrumentator(
        should_group_status_codes=False,
        excluded_handlers=["/metrics", "/healthz", "/readyz"],
    ).instrument(
        app,
        # A bucket at 0.2 s, so the "p95 < 200 ms for non-AI calls" objective is measured, not interpolated.
        latency_lowr_buckets=(0.05, 0.1, 0.2, 0.25, 0.5, 1, 2.5),
    ).expose(app, endpoint="/metrics", include_in_schema=False)
