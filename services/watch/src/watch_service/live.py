"""Live notices: "something new in dialogue X" over Redis pub/sub, so that an open stream reads
a new turn the moment a worker (in any replica) stored it.

A notice carries no data: the stream re-reads the database when one arrives, and every few
seconds anyway (a notice lost with a Redis hiccup, or sent while Redis was down, is never an
event lost: the database is the truth, Redis only says when to look). The kit's LiveHub holds
one Redis subscription per process and hands the notices to this process's streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from workplace_kit.live import LiveHub

log = logging.getLogger(__name__)
PREFIX = "watch:live:"


def channel_for(watch_id: str) -> str:
    return PREFIX + watch_id


class Notices:
    """What a stream waits on: `wait(timeout)` returns when a notice came or the time is up."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, _message: object = None) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True when a notice arrived (since the last wait), False on timeout."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout=timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True


class LiveChannel:
    def __init__(self, redis: aioredis.Redis | None) -> None:
        self.hub = LiveHub(redis, PREFIX, name="watch-live") if redis is not None else None
        self._local: dict[str, set[Notices]] = {}  # without Redis: this process's streams only

    async def publish(self, watch_id: str, kind: str) -> None:
        """Tell every stream of the dialogue to look (never raises: streams poll anyway)."""
        if self.hub is None:
            for notices in tuple(self._local.get(watch_id, ())):
                notices.notify()
            return
        try:
            await self.hub.publish(watch_id, kind.encode())
        except (RedisError, OSError) as exc:
            log.warning("live notice not sent (streams read the database meanwhile): %r", exc)
            self.hub.deliver_here(watch_id, kind.encode())

    @contextlib.asynccontextmanager
    async def listen(self, watch_id: str) -> AsyncIterator[Notices]:
        """The notices of one dialogue while the block runs. Without Redis (down, or not
        configured) the notices come from this process only and the stream polls."""
        notices = Notices()
        if self.hub is None:
            self._local.setdefault(watch_id, set()).add(notices)
            try:
                yield notices
            finally:
                self._local[watch_id].discard(notices)
            return
        try:
            await self.hub.subscribe()
        except (RedisError, OSError) as exc:
            log.warning("no live notices now (the stream reads the database every few seconds): %r", exc)
        stop = self.hub.add(watch_id, notices.notify)
        try:
            yield notices
        finally:
            stop()

    async def aclose(self) -> None:
        if self.hub is not None:
            await self.hub.aclose()
