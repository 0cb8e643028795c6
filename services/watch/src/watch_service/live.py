"""Live notices: "something new in dialogue X" over Redis pub/sub, so that an open stream reads
a new turn the moment a worker (in any replica) stored it.

A notice carries no data: the stream re-reads the database when one arrives, and every few
seconds anyway (a notice lost with a Redis hiccup, or sent while Redis was down, is never an
event lost: the database is the truth, Redis only says when to look). Each process holds one
Redis subscription (a pattern over every dialogue's channel) and hands the notices to its own
streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
PREFIX = "watch:live:"
PATTERN = PREFIX + "*"


def channel_for(watch_id: str) -> str:
    return PREFIX + watch_id


class Notices:
    """What a stream waits on: `wait(timeout)` returns when a notice came or the time is up."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
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
        self.redis = redis
        self._listeners: dict[str, set[Notices]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def publish(self, watch_id: str, kind: str) -> None:
        """Tell every stream of the dialogue to look (never raises: streams poll anyway)."""
        if self.redis is None:
            self._local(watch_id)
            return
        try:
            await self.redis.publish(channel_for(watch_id), kind.encode())
        except (RedisError, OSError) as exc:
            log.warning("live notice not sent (streams read the database meanwhile): %r", exc)
            self._local(watch_id)

    def _local(self, watch_id: str) -> None:
        for notices in self._listeners.get(watch_id, ()):
            notices.notify()

    async def _ensure_reader(self) -> None:
        if self.redis is None:
            return
        async with self._lock:
            if self._reader is not None and not self._reader.done():
                return
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(PATTERN)
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())
                raise
            self._reader = asyncio.create_task(self._read(pubsub), name="watch-live")

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
                if message is None:
                    continue
                channel = message["channel"]
                watch_id = (channel.decode() if isinstance(channel, bytes) else str(channel)).removeprefix(PREFIX)
                self._local(watch_id)
        except (RedisError, OSError) as exc:
            log.warning("live notices lost (streams read the database meanwhile): %r", exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(pubsub.aclose())

    @contextlib.asynccontextmanager
    async def listen(self, watch_id: str) -> AsyncIterator[Notices]:
        """The notices of one dialogue while the block runs. Without Redis (down, or not
        configured) the notices come from this process only and the stream polls."""
        try:
            await self._ensure_reader()
        except (RedisError, OSError) as exc:
            log.warning("no live notices now (the stream reads the database every few seconds): %r", exc)
        notices = Notices()
        self._listeners.setdefault(watch_id, set()).add(notices)
        try:
            yield notices
        finally:
            listeners = self._listeners.get(watch_id)
            if listeners is not None:
                listeners.discard(notices)
                if not listeners:
                    del self._listeners[watch_id]

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
