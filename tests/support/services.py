"""Run a service in-process on free ports, through the same `serve()` its entry point uses."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from workplace_kit.config import ServiceSettings
from workplace_kit.service import ServiceParts, serve

from .run import PUBSUB_SUFFIX


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningService:
    http_url: str
    grpc_address: str
    app: FastAPI


@contextlib.asynccontextmanager
async def running_service(
    build: Callable[..., Awaitable[ServiceParts]], settings: ServiceSettings, *, ready_timeout_s: float = 60
) -> AsyncIterator[RunningService]:
    update: dict[str, object] = {"http_port": free_port(), "grpc_port": free_port()}
    if not settings.pubsub_name_suffix:
        update["pubsub_name_suffix"] = PUBSUB_SUFFIX  # the run's own topics (support/run.py)
    settings = settings.model_copy(update=update)
    stop = asyncio.Event()
    built: dict[str, ServiceParts] = {}

    async def setup(stack):
        built["parts"] = await build(stack, settings)
        return built["parts"]

    task = asyncio.create_task(serve(settings, setup, stop=stop))
    url = f"http://127.0.0.1:{settings.http_port}"
    async with httpx.AsyncClient() as client:
        deadline = asyncio.get_running_loop().time() + ready_timeout_s
        while True:
            if task.done():
                task.result()  # raises the start-up error
                raise RuntimeError(f"{settings.service_name} stopped during start-up")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + "/healthz")).status_code == 200:
                    break
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{settings.service_name} did not become healthy")
            await asyncio.sleep(0.1)
    try:
        yield RunningService(url, f"127.0.0.1:{settings.grpc_port}", built["parts"].http_app)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
