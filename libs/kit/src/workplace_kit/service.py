"""Run one service: its FastAPI app, its grpc.aio server and its Pub/Sub workers in one loop.

Every service's entry point is `run_service(settings, setup)`, where `setup` opens the
service's resources on an AsyncExitStack and returns the parts to serve. WP_RUN_HTTP,
WP_RUN_GRPC and WP_RUN_WORKERS pick the parts, so a worker can be deployed and scaled alone
(the HTTP port always stays up for /healthz and /metrics).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import ConfigError, ServiceSettings, load_settings
from .errors import RETRY_AFTER_S, DomainError, Unavailable, is_dependency_outage
from .grpc_server import GrpcService, set_serving, start_grpc_server
from .logging import setup_logging
from .telemetry import instrument_http_app, setup_tracing
from .warmup import NotReady, WarmUp
from .web_security import CsrfProtection, SecurityHeaders

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[None]]
# A background coroutine function; a coroutine (not any awaitable) because it becomes a task.
Worker = Callable[[], Coroutine[Any, Any, None]]
S = TypeVar("S", bound=ServiceSettings)

# Ids in paths and bodies are UUIDs; saying so in the OpenAPI document lets clients (and
# schemathesis) know what the service accepts before they call it.
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class ErrorBody(BaseModel):
    """Every error answer: a stable code, a message fit to show, and the field at fault."""

    error: str
    message: str
    field: str | None = None
    problems: list[dict[str, str]] | None = None


_ERROR_DESCRIPTIONS = {
    400: "The request is well-formed but not acceptable (the message says why)",
    401: "No valid access token: sign in (or refresh the token) and try again",
    404: "No such resource (or not yours)",
    409: "It already exists (e.g. an account with this email)",
    422: "The request does not match this API (the problems list each field)",
    429: "Too many requests, or today's quota is used up; try again after Retry-After seconds",
    503: "A dependency (database, AI provider) is unavailable; try again after Retry-After seconds",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the errors a route can answer with."""
    return {code: {"model": ErrorBody, "description": _ERROR_DESCRIPTIONS[code]} for code in codes}


@dataclass
class ServiceParts:
    http_app: FastAPI
    grpc_services: list[GrpcService] = field(default_factory=list)
    # Background coroutines (Pub/Sub consumers, sweepers), started when workers run.
    workers: list[Worker] = field(default_factory=list)
    # The service's outbox relay (OutboxRelay.run): started with the workers unless
    # WP_OUTBOX_RELAY=false, where a standalone relay publishes the service's events (the
    # workers may then scale to zero without leaving them unpublished).
    outbox_relay: Worker | None = None
    # Engines to load before the service is ready (workplace_kit.warmup): run by serve() whatever
    # parts the process serves; gRPC health says NOT_SERVING until they are warm. Its check
    # belongs in create_http_app's readiness list too.
    warm_up: WarmUp | None = None


class BodyLimit:
    """Request bodies over the limit are refused with 413 in our JSON error format: at once
    when Content-Length says so, else as soon as a chunked body grows past it (raised from
    `receive` as an HTTP error, which the app's handler formats like any other)."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"the request body is over {self.max_bytes} bytes"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await JSONResponse({"error": "too_large", "message": message}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            event = await receive()
            if event["type"] == "http.request":
                received += len(event.get("body", b""))
                if received > self.max_bytes:
                    raise StarletteHTTPException(413, message)
            return event

        await self.app(scope, limited_receive, send)


def _problem(err: Any) -> dict[str, str]:
    """One validation problem: the field's dotted path and what is wrong with it. A body that
    is not JSON at all is the problem of "body", at the character where reading stopped."""
    if err["type"] == "json_invalid":
        position = next((p for p in err["loc"] if isinstance(p, int)), 0)
        reason = err.get("ctx", {}).get("error", "JSON decode error")
        return {"field": "body", "message": f"not valid JSON: {reason} at character {position}"}
    return {"field": ".".join(str(p) for p in err["loc"] if p != "body"), "message": err["msg"]}


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app serves at the request's path."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        route_methods = getattr(route, "methods", None)
        if match != Match.NONE and route_methods:
            methods.update(route_methods)
    return sorted(methods)


def create_http_app(
    settings: ServiceSettings,
    *,
    title: str,
    description: str = "",
    readiness: list[ReadinessCheck] | None = None,
) -> FastAPI:
    """A FastAPI app with health, readiness, metrics, tracing and JSON errors (no stack traces)."""
    app = FastAPI(title=title, description=description, version="0.1.0")
    # The last added runs first: headers on every answer, then CSRF before any body is read.
    app.add_middleware(BodyLimit, max_bytes=settings.http_max_body_bytes)
    app.add_middleware(CsrfProtection, cookie_names=(settings.auth_cookie_name, settings.auth_refresh_cookie_name))
    app.add_middleware(SecurityHeaders)
    checks = readiness or []

    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        headers = {"Retry-After": str(RETRY_AFTER_S)} if isinstance(exc, Unavailable) else {}
        headers.update(exc.http_headers())  # e.g. WWW-Authenticate on a 401
        return JSONResponse(exc.to_json(), status_code=exc.http_status, headers=headers or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Raised by the framework itself (unknown route, wrong method, a body it cannot parse):
        # answered in the same format as ours.
        codes = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        message = str(exc.detail)
        if message == "There was an error parsing the body":  # e.g. bytes that are not UTF-8
            message = "the body could not be read: send JSON encoded in UTF-8"
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names only the first route of the path; a path served by two routes
            # (GET and POST) allows both.
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return JSONResponse(
            {"error": codes.get(exc.status_code, "http_error"), "message": message},
            status_code=exc.status_code,
            headers=headers or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [_problem(err) for err in exc.errors()]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return JSONResponse(
            {"error": "invalid_request", "message": f"invalid request: {summary}", "problems": problems},
            status_code=422,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if is_dependency_outage(exc):
            # The database (or another dependency) is down or restarting: try again shortly.
            log.warning("dependency unavailable: %r", exc)
            return JSONResponse(
                {"error": "unavailable", "message": "a service this needs is unavailable; try again shortly"},
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        log.exception("unhandled error", exc_info=exc)
        return JSONResponse(
            {"error": "internal", "message": "internal error; the problem has been logged"},
            status_code=500,
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": settings.service_name}

    # Set by serve() when the service is told to stop: not ready from then on (it drains).
    app.state.draining = False

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        if app.state.draining:
            return JSONResponse({"ready": False, "failures": ["shutting down"]}, status_code=503)
        failures = []
        for check in checks:
            try:
                await check()
            except NotReady as exc:  # a reason fit to show: what is still loading
                failures.append(f"{getattr(check, '__name__', 'check')}: {exc}")
            except Exception as exc:  # noqa: BLE001 - reported as not ready
                failures.append(f"{getattr(check, '__name__', 'check')}: {type(exc).__name__}")
        status = 200 if not failures else 503
        return JSONResponse({"ready": not failures, "failures": failures}, status_code=status)

    instrument_http_app(app)
    return app


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal capture: the caller owns shutdown (run_service for all
    parts of a service; the gateway's drain sidecar, whose SIGTERM starts a drain)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket that other processes of this service bind too: the kernel spreads
    new connections over them."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def serve(
    settings: ServiceSettings,
    setup: Callable[[AsyncExitStack], Awaitable[ServiceParts]],
    *,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT, or until `stop` is set when the caller passes one (tests)."""
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)

    async with AsyncExitStack() as stack:
        parts = await setup(stack)
        warm = parts.warm_up
        grpc_server = None
        grpc_health = None
        if settings.run_grpc and parts.grpc_services:
            grpc_server, _, grpc_health = await start_grpc_server(
                parts.grpc_services,
                host=settings.http_host,
                port=settings.grpc_port,
                max_message_bytes=settings.http_max_body_bytes,
                serving=warm is None or warm.done,
            )
        worker_tasks: list[asyncio.Task[Any]] = []

        def _worker_done(task: asyncio.Task[Any]) -> None:
            # A worker that ends normally (a warm-up) is fine; one that crashes stops the
            # process so the orchestrator restarts it rather than leaving it half-working.
            if not task.cancelled() and task.exception() is not None:
                log.error("worker %s failed", task.get_name(), exc_info=task.exception())
                stop.set()

        if warm is not None and not warm.done:
            # Engines load whatever this process serves; a failed load stops it like a crashed worker.
            task = asyncio.create_task(warm.run(), name="warm_up")
            task.add_done_callback(_worker_done)
            worker_tasks.append(task)
            if grpc_health is not None:
                names = [svc.full_name for svc in parts.grpc_services]
                health = grpc_health

                async def _serving_when_warm() -> None:
                    await warm.wait()
                    await set_serving(health, names, serving=True)

                worker_tasks.append(asyncio.create_task(_serving_when_warm(), name="grpc_health_when_warm"))
        if settings.run_workers:
            workers = list(parts.workers)
            if parts.outbox_relay is not None and settings.outbox_relay:
                workers.insert(0, parts.outbox_relay)
            elif parts.outbox_relay is not None:
                log.info("outbox relay off (WP_OUTBOX_RELAY=false): a standalone relay publishes the events")
            for w in workers:
                task = asyncio.create_task(w(), name=getattr(w, "__name__", "worker"))
                task.add_done_callback(_worker_done)
                worker_tasks.append(task)
        http = QuietServer(
            uvicorn.Config(
                parts.http_app,
                host=settings.http_host,
                port=settings.http_port,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=int(settings.shutdown_grace_s),
                # Longer than the gateway's upstream idle timeout (60 s), so Envoy, not the
                # service, closes an idle connection: no request is sent on a closing one.
                timeout_keep_alive=75,
            )
        )
        sockets = [_reuse_port_socket(settings.http_host, settings.http_port)] if settings.reuse_port else None
        http_task = asyncio.create_task(http.serve(sockets=sockets), name="http")
        log.info(
            "service started",
            extra={"http_port": settings.http_port, "grpc_port": settings.grpc_port if grpc_server else None},
        )
        stop_task = asyncio.create_task(stop.wait())
        await asyncio.wait([http_task, stop_task], return_when=asyncio.FIRST_COMPLETED)
        if http_task.done() and http_task.exception() is not None:
            log.error("the HTTP server stopped with an error", exc_info=http_task.exception())
        # Drain: not ready (HTTP and gRPC health) at once, still serving while the load balancer
        # notices; then no new connection, and what is in flight gets the grace period.
        log.info("shutting down: draining", extra={"drain_s": settings.shutdown_drain_s})
        parts.http_app.state.draining = True
        for task in worker_tasks:
            if task.get_name() == "grpc_health_when_warm":
                task.cancel()  # a warm-up finishing now must not say SERVING again
        if grpc_health is not None:
            await set_serving(grpc_health, [svc.full_name for svc in parts.grpc_services], serving=False)
        if not http_task.done():
            await asyncio.sleep(settings.shutdown_drain_s)
        log.info("shutting down: finishing what is in flight", extra={"grace_s": settings.shutdown_grace_s})
        http.should_exit = True
        if grpc_server is not None:
            await grpc_server.stop(grace=settings.shutdown_grace_s)
        for task in worker_tasks:
            task.cancel()
        await asyncio.gather(*worker_tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(http_task, timeout=settings.shutdown_grace_s + 5)
        stop_task.cancel()


def run_service(settings: ServiceSettings, setup: Callable[[AsyncExitStack], Awaitable[ServiceParts]]) -> None:
    setup_logging(settings.service_name, settings.log_level, gcp_project=settings.gcp_project)
    setup_tracing(settings)
    # uvloop (installed with uvicorn[standard]): socket writes and callbacks in C. uvicorn picks
    # it only when it makes the loop itself; every service's loop is made here.
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(settings, setup))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it on Linux and macOS
        return None
    return uvloop.new_event_loop


def run_main(settings_cls: type[S], build: Callable[[AsyncExitStack, S], Awaitable[ServiceParts]]) -> None:
    """The whole `main()` of a service: settings from the environment, then serve until signalled."""
    try:
        settings = load_settings(settings_cls)
    except ConfigError as exc:
        print(f"{settings_cls.__name__}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    run_service(settings, lambda stack: build(stack, settings))


def run_placeholder(*, service: str, pb2: ModuleType, pb2_grpc: ModuleType, grpc_name: str) -> None:
    """`main()` of a service whose API is defined but not implemented yet: health, metrics and
    gRPC reflection work, and every RPC answers UNIMPLEMENTED. Ports: the registry's."""

    class Settings(ServiceSettings):
        service_name: str = service

    grpc_service = GrpcService(
        add_to_server=getattr(pb2_grpc, f"add_{grpc_name}Servicer_to_server"),
        servicer=getattr(pb2_grpc, f"{grpc_name}Servicer")(),
        full_name=pb2.DESCRIPTOR.services_by_name[grpc_name].full_name,
    )

    async def build(stack: AsyncExitStack, settings: ServiceSettings) -> ServiceParts:
        app = create_http_app(settings, title=f"Workplace Roleplay {service} API (not implemented yet)")
        return ServiceParts(http_app=app, grpc_services=[grpc_service])

    run_main(Settings, build)
