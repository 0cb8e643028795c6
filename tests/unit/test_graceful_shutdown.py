"""A service told to stop (SIGTERM in a pod) stops being ready at once, keeps serving while the
load balancer takes it out, then takes no new connection and lets a streamed reply in flight
finish: the kit's serve() with real uvicorn on a free port, no other infrastructure."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import httpx
import pytest
from httpx_sse import aconnect_sse
from sse_starlette import ServerSentEvent
from support.services import free_port
from workplace_kit.config import ServiceSettings
from workplace_kit.service import ServiceParts, create_http_app, serve
from workplace_kit.sse import event_stream

EVENTS = 40
EVERY_S = 0.05  # a two-second reply


class Settings(ServiceSettings):
    service_name: str = "shutdown-test"


async def test_a_stopping_service_drains_and_lets_a_streamed_reply_finish() -> None:
    port = free_port()
    settings = Settings(http_port=port, grpc_port=free_port(), shutdown_drain_s=0.5, shutdown_grace_s=10)

    async def setup(_stack: AsyncExitStack) -> ServiceParts:
        app = create_http_app(settings, title="shutdown test")

        async def tokens():
            for i in range(EVENTS):
                await asyncio.sleep(EVERY_S)
                yield i

        @app.get("/reply")
        async def reply():
            return event_stream(tokens(), lambda i: ServerSentEvent(str(i), event="token"), what="reply")

        return ServiceParts(http_app=app)

    stop = asyncio.Event()
    server = asyncio.create_task(serve(settings, setup, stop=stop))
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for _ in range(100):
            try:
                if (await client.get("/readyz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        received: list[str] = []
        readiness: list[int] = []
        async with aconnect_sse(client, "GET", "/reply") as source:
            async for event in source.aiter_sse():
                received.append(event.data)
                if len(received) == 5:
                    stop.set()  # what SIGTERM does
                    await asyncio.sleep(0.1)
                    # Not ready any more, but still answering while the load balancer catches up.
                    async with httpx.AsyncClient(base_url=base, timeout=2) as other:
                        readiness.append((await other.get("/readyz")).status_code)
        assert readiness == [503]
        assert received == [str(i) for i in range(EVENTS)], "the reply in flight was cut"
    started = time.monotonic()
    await asyncio.wait_for(server, timeout=15)
    assert time.monotonic() - started < 5
    with pytest.raises(httpx.TransportError):
        async with httpx.AsyncClient(base_url=base, timeout=2) as client:
            await client.get("/healthz")
