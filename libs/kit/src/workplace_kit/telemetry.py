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
from prometheus_fastapi_instrumentator import Instrumentator

from .config import ServiceSettings

log = logging.getLogger(__name__)
_configured = False


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
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    AsyncPGInstrumentor().instrument()
    RedisInstrumentor().instrument()


def instrument_http_app(app: FastAPI) -> None:
    """Trace every request and expose Prometheus metrics at /metrics."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    Instrumentator(
        should_group_status_codes=False,
        # In-flight requests (SSE streams included) are what KEDA scales the HTTP services on.
        should_instrument_requests_inprogress=True,
        inprogress_labels=True,
        excluded_handlers=["/metrics", "/healthz", "/readyz"],
    ).instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)
