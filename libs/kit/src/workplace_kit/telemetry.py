"""OpenTelemetry tracing and Prometheus metrics, set up the same way in every service.

Traces go to an OTLP collector when WP_OTLP_ENDPOINT is set (nothing is exported otherwise,
but spans still exist so trace ids appear in logs and propagate over gRPC and Pub/Sub).
Traces are sampled (``WP_TRACE_SAMPLE_RATIO``, parent-based: a caller's decision is kept, so in
the cluster the gateway's tracer decides for requests and the ratio applies to what a service
starts itself, e.g. a Pub/Sub consumer; docs/production.md, "Traces and logs") and the per-message ``send`` and
``receive`` spans of streamed responses are left out: on the chat path they cost more than the
reply itself. Metrics: HTTP metrics from one small ASGI middleware (HttpMetricsMiddleware:
the in-flight gauge, request count and latency, with the names prometheus-fastapi-
instrumentator used, which cost ~15 % of chat's CPU), gRPC metrics from our interceptor
(grpc_server.py), everything exposed at GET /metrics on the HTTP port.
"""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import ServiceSettings

log = logging.getLogger(__name__)
_configured = False

# One set per process (an app a process builds again, as tests do, shares them). KEDA scales
# the HTTP services on the in-flight gauge: an SSE reply stays in flight while it streams.
HTTP_INPROGRESS = Gauge("http_requests_inprogress", "HTTP requests being served now", ["method"])
# HTTP requests and RPCs together, without labels: exported as 0 from the first scrape, so an
# autoscaler's query for it is empty only when the metrics are lost (then an error, not "idle").
IN_FLIGHT = Gauge("requests_in_flight", "HTTP requests and gRPC calls being served now (streams until they end)")
HTTP_REQUESTS = Counter("http_requests", "HTTP requests answered", ["handler", "method", "status"])
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from request to the end of the response (a whole stream for SSE)",
    ["handler", "method"],
    # A bucket at 0.2 s, so the "p95 < 200 ms for non-AI calls" objective is measured, not interpolated.
    buckets=(0.05, 0.1, 0.2, 0.25, 0.5, 1, 2.5, float("inf")),
)
_NOT_COUNTED = frozenset(("/metrics", "/healthz", "/readyz"))


class HttpMetricsMiddleware:
    """In-flight, count and latency per route template (``handler``), as plain ASGI: one wrapped
    ``send`` that only looks at the response start, no per-request objects beyond that."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _NOT_COUNTED:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        gauge = HTTP_INPROGRESS.labels(method)
        status = 500  # an exception before the response started is answered 500 further out

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        gauge.inc()
        IN_FLIGHT.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            gauge.dec()
            IN_FLIGHT.dec()
            # FastAPI's router puts the matched route into the scope: label by its template.
            route = scope.get("route")
            handler = getattr(route, "path", None) or "none"
            HTTP_REQUESTS.labels(handler, method, str(status)).inc()
            HTTP_DURATION.labels(handler, method).observe(time.perf_counter() - started)


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def setup_tracing(settings: ServiceSettings) -> None:
    """Install the global tracer provider once per process; instrument asyncpg and redis."""
    global _configured
    if _configured:
        return
    _configured = True
    provider = TracerProvider(
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
        resource=Resource.create(
            {"service.name": settings.service_name, "deployment.environment": settings.environment}
        ),
    )
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_endpoint, insecure=True))
        )
    trace.set_tracer_provider(provider)
    if not settings.otlp_endpoint:
        return  # nothing would see database and Redis spans: spare every query their cost
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
    """Trace requests (sampled) and expose Prometheus metrics at /metrics."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics", exclude_spans=["receive", "send"])
    app.add_middleware(HttpMetricsMiddleware)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
