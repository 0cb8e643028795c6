"""Engines a service loads before it calls itself ready.

A service whose work needs a loaded engine (dictionaries, a model, an index) is not ready until
that engine is warm: `WarmUp.check` is one of its readiness checks (/readyz answers 503 with what
is still loading and for how long), gRPC health stays NOT_SERVING, and workers wrapped with
`after_warm_up` (Pub/Sub consumers) start pulling only then, so no event waits behind a load or
spends its acknowledgement deadline on it. `serve()` runs the warm-up whatever parts the process
serves (WP_RUN_HTTP/GRPC/WORKERS); an engine whose warm-up fails stops the process, like a crashed
worker, so the orchestrator starts a fresh one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from prometheus_client import Gauge

log = logging.getLogger(__name__)

Worker = Callable[[], Coroutine[Any, Any, Any]]

WARM_UP_SECONDS = Gauge("service_warm_up_seconds", "Seconds an engine took to load at start", ["engine"])


class NotReady(Exception):
    """A readiness check's answer that the service is not ready yet; its message is shown in /readyz."""


class WarmUp:
    """Runs each engine's warm-up once, all at the same time; knows which are still loading."""

    def __init__(self, engines: Mapping[str, Worker]) -> None:
        self._engines = dict(engines)
        self._pending = set(self._engines)
        self._started: float | None = None
        self._done = asyncio.Event()
        self.seconds: dict[str, float] = {}
        if not self._engines:
            self._done.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    async def run(self) -> None:
        """Load every engine (concurrently); raises the first failure."""
        if self._started is not None:
            raise RuntimeError("WarmUp.run() called twice")
        self._started = time.monotonic()
        await asyncio.gather(*(self._one(name, warm) for name, warm in self._engines.items()))
        self._done.set()
        log.info(
            "engines warm: ready",
            extra={"warm_up_seconds": {name: round(s, 2) for name, s in self.seconds.items()}},
        )

    async def _one(self, name: str, warm: Worker) -> None:
        started = time.monotonic()
        await warm()
        self.seconds[name] = time.monotonic() - started
        self._pending.discard(name)
        WARM_UP_SECONDS.labels(name).set(self.seconds[name])

    async def check(self) -> None:
        """Readiness check: raises NotReady naming what is still loading."""
        if self._done.is_set():
            return
        if self._started is None:
            raise NotReady(f"engines not loading yet: {', '.join(sorted(self._pending))}")
        waited = time.monotonic() - self._started
        raise NotReady(f"engines still loading after {waited:.1f} s: {', '.join(sorted(self._pending))}")

    check.__name__ = "warm_up"

    async def wait(self) -> None:
        await self._done.wait()

    def after_warm_up(self, worker: Worker) -> Worker:
        """`worker`, started only once every engine is warm."""

        async def gated() -> None:
            await self._done.wait()
            await worker()

        gated.__name__ = getattr(worker, "__name__", "worker")
        return gated
