"""gRPC server bootstrap: grpc.health.v1, reflection, tracing, metrics and error mapping.

Servicers stay thin: they call domain functions, and the interceptor here turns a
DomainError into the matching status code (INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE) and any
other exception into INTERNAL with a generic message, so no stack trace reaches a caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from opentelemetry.instrumentation.grpc import aio_server_interceptor
from prometheus_client import Counter, Gauge, Histogram

from .errors import DomainError, is_dependency_outage
from .telemetry import IN_FLIGHT

log = logging.getLogger(__name__)

GRPC_HANDLED = Counter(
    "grpc_server_handled_total", "RPCs completed, by method and status code", ["grpc_method", "grpc_code"]
)
GRPC_INPROGRESS = Gauge(
    "grpc_server_inprogress", "RPCs being handled now (streams until their last message)", ["grpc_method"]
)
GRPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time to complete an RPC (for streams: until the last message)",
    ["grpc_method"],
)


@dataclass(frozen=True)
class GrpcService:
    """One servicer to register: the generated add_*_to_server function and its full name."""

    add_to_server: Callable[[Any, grpc.aio.Server], None]
    servicer: Any
    full_name: str  # e.g. "workplace.chat.v1.ChatService"


def _status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, DomainError):
        return getattr(grpc.StatusCode, exc.grpc_code_name), exc.message
    if is_dependency_outage(exc):
        return grpc.StatusCode.UNAVAILABLE, "a service this needs is unavailable; try again shortly"
    if isinstance(exc, NotImplementedError):
        # Generated base servicers raise this for RPCs a service does not serve yet.
        return grpc.StatusCode.UNIMPLEMENTED, "not implemented yet"
    return grpc.StatusCode.INTERNAL, "internal error; the problem has been logged"


async def _abort(context: grpc.aio.ServicerContext, method: str, exc: Exception) -> None:
    """End the call with the status that fits the error (logged when it is our bug)."""
    code, message = _status_for(exc)
    if code == grpc.StatusCode.INTERNAL:
        log.exception("unhandled error in %s", method)
    await context.abort(code, message)


def _observe(method: str, context: grpc.aio.ServicerContext, start: float) -> None:
    GRPC_INPROGRESS.labels(method).dec()
    IN_FLIGHT.dec()
    code = context.code() or grpc.StatusCode.OK
    GRPC_HANDLED.labels(method, code.name).inc()
    GRPC_SECONDS.labels(method).observe(time.perf_counter() - start)


# grpcio ships no type information, so its base class is Any to mypy.
class ErrorAndMetricsInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if handler.unary_unary:
            inner = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                start = time.perf_counter()
                GRPC_INPROGRESS.labels(method).inc()
                IN_FLIGHT.inc()
                try:
                    return await inner(request, context)
                except (grpc.aio.AbortError, grpc.RpcError):
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped to a status
                    await _abort(context, method, exc)
                finally:
                    _observe(method, context, start)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                start = time.perf_counter()
                GRPC_INPROGRESS.labels(method).inc()
                IN_FLIGHT.inc()
                try:
                    async for item in inner_stream(request, context):
                        yield item
                except (grpc.aio.AbortError, grpc.RpcError):
                    raise
                except Exception as exc:  # noqa: BLE001 - mapped to a status
                    await _abort(context, method, exc)
                finally:
                    _observe(method, context, start)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, handler.request_deserializer, handler.response_serializer
            )
        return handler  # client/bidi streaming: none in our APIs yet


async def start_grpc_server(
    services: Iterable[GrpcService],
    *,
    host: str = "127.0.0.1",
    port: int,
    max_message_bytes: int = 64 * 1024,
    serving: bool = True,
) -> tuple[grpc.aio.Server, int, HealthServicer]:
    """Start a grpc.aio server with health + reflection; returns (server, bound port, health).

    Requests over max_message_bytes (the HTTP body limit) are refused with RESOURCE_EXHAUSTED
    before any handler runs. With serving=False health answers NOT_SERVING (the server and each
    service) until set_serving() says otherwise, e.g. while engines are still loading."""
    services = list(services)
    server = grpc.aio.server(
        interceptors=[aio_server_interceptor(), ErrorAndMetricsInterceptor()],
        options=[("grpc.max_receive_message_length", max_message_bytes)],
    )
    health = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for svc in services:
        svc.add_to_server(svc.servicer, server)
    names = [svc.full_name for svc in services] + [
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    ]
    reflection.enable_server_reflection(names, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise RuntimeError(f"cannot bind gRPC port {host}:{port}")
    await server.start()
    await set_serving(health, [svc.full_name for svc in services], serving=serving)
    log.info("gRPC listening", extra={"address": f"{host}:{bound}", "services": names})
    return server, bound, health


async def set_serving(health: HealthServicer, service_names: Iterable[str], *, serving: bool) -> None:
    """grpc.health.v1 status of the server ("") and of each named service."""
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in [*service_names, ""]:
        await health.set(name, status)
