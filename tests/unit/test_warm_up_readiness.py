"""A service is not ready until its engines are warm: /readyz answers 503 naming what still loads,
gRPC health says NOT_SERVING, and a consumer wrapped with after_warm_up has not started pulling.
Served through the kit's real serve() on free ports; the engine is a slow fake of our own."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from workplace.feedback.v1 import feedback_pb2, feedback_pb2_grpc
from workplace_kit.config import ServiceSettings
from workplace_kit.grpc_server import GrpcService
from workplace_kit.service import ServiceParts, create_http_app, serve
from workplace_kit.warmup import WarmUp

FEEDBACK = feedback_pb2.DESCRIPTOR.services_by_name["FeedbackService"].full_name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class SlowEngine:
    """Loads until the test lets it finish (or fails when told to)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.fail = False
        self.loads = 0

    async def warm_up(self) -> None:
        self.loads += 1
        await self.release.wait()
        if self.fail:
            raise RuntimeError("dictionary file is corrupt")


async def _poll(probe: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await probe():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.05)


class Served:
    def __init__(self, engine: SlowEngine, *, run_workers: bool = True) -> None:
        self.engine = engine
        self.consumer_started = asyncio.Event()
        self.settings = ServiceSettings(
            service_name="warmtest", http_port=_free_port(), grpc_port=_free_port(), run_workers=run_workers
        )
        self.url = f"http://127.0.0.1:{self.settings.http_port}"
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def setup(self, stack: AsyncExitStack) -> ServiceParts:
        warm = WarmUp({"slow analyser": self.engine.warm_up})

        async def consumer() -> None:
            self.consumer_started.set()
            await asyncio.Event().wait()

        app = create_http_app(self.settings, title="t", readiness=[warm.check])
        servicer = GrpcService(
            add_to_server=feedback_pb2_grpc.add_FeedbackServiceServicer_to_server,
            servicer=feedback_pb2_grpc.FeedbackServiceServicer(),
            full_name=FEEDBACK,
        )
        return ServiceParts(
            http_app=app, grpc_services=[servicer], workers=[warm.after_warm_up(consumer)], warm_up=warm
        )

    async def health(self, service: str = "") -> int:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.settings.grpc_port}") as channel:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=5
            )
            status: int = answer.status
            return status


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    s = Served(SlowEngine())
    s.task = asyncio.create_task(serve(s.settings, s.setup, stop=s.stop))
    async with httpx.AsyncClient() as client:

        async def healthy() -> bool:
            try:
                return (await client.get(s.url + "/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await _poll(healthy, "service never answered /healthz")
    yield s
    s.engine.release.set()
    s.stop.set()
    await asyncio.wait_for(s.task, timeout=20)


async def test_not_ready_until_the_engines_are_warm(served: Served) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.get(served.url + "/readyz")
        assert answer.status_code == 503
        body = answer.json()
        assert body["ready"] is False
        [failure] = body["failures"]
        assert failure.startswith("warm_up: engines still loading after ") and failure.endswith(": slow analyser")
        assert await served.health() == health_pb2.HealthCheckResponse.NOT_SERVING
        assert await served.health(FEEDBACK) == health_pb2.HealthCheckResponse.NOT_SERVING
        await asyncio.sleep(0.3)
        assert not served.consumer_started.is_set(), "the consumer pulled before the analyser was warm"
        assert (await client.get(served.url + "/healthz")).status_code == 200  # alive, just not ready

        served.engine.release.set()

        async def ready() -> bool:
            return (await client.get(served.url + "/readyz")).status_code == 200

        await _poll(ready, "never ready after the engine was warm")
        assert (await client.get(served.url + "/readyz")).json() == {"ready": True, "failures": []}
    await asyncio.wait_for(served.consumer_started.wait(), timeout=5)
    await _poll(
        lambda: _is(served.health(FEEDBACK), health_pb2.HealthCheckResponse.SERVING), "gRPC health never SERVING"
    )
    assert await served.health() == health_pb2.HealthCheckResponse.SERVING
    assert served.engine.loads == 1


async def _is(status: Awaitable[int], expected: int) -> bool:
    return await status == expected


async def test_engines_warm_up_even_without_workers() -> None:
    # An HTTP/gRPC-only process (WP_RUN_WORKERS=false) still serves requests that need the engine.
    s = Served(SlowEngine(), run_workers=False)
    s.engine.release.set()
    task = asyncio.create_task(serve(s.settings, s.setup, stop=s.stop))
    try:
        async with httpx.AsyncClient() as client:

            async def ready() -> bool:
                try:
                    return (await client.get(s.url + "/readyz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await _poll(ready, "never ready")
        assert s.engine.loads == 1
        assert not s.consumer_started.is_set()
    finally:
        s.stop.set()
        await asyncio.wait_for(task, timeout=20)


async def test_a_failed_warm_up_stops_the_process() -> None:
    s = Served(SlowEngine())
    s.engine.fail = True
    s.engine.release.set()
    # serve() returns by itself (the orchestrator then starts a fresh process); the stop event is never set.
    await asyncio.wait_for(serve(s.settings, s.setup, stop=s.stop), timeout=20)
    assert s.engine.loads == 1
    assert not s.consumer_started.is_set()


async def test_no_engines_means_ready_at_once() -> None:
    warm = WarmUp({})
    assert warm.done
    await warm.check()


async def test_the_offline_dialogue_engine_warm_up_loads_the_model_too() -> None:
    # The index alone comes from embedding_cache.npz; the e5 model is what the first learner's
    # message needs, so chat is ready only once it is loaded as well.
    from chat_service import app as chat_app
    from workplace_kit.ai.embeddings import Embedder
    from workplace_kit.ai.offline_dialogue import OfflineDialogueEngine

    embedder = Embedder()  # not the process-wide one, which another test may have loaded
    engine = OfflineDialogueEngine(chat_app.chat_catalogue(), embedder=embedder)
    assert embedder._model is None
    await engine.warm_up()
    assert embedder._model is not None
