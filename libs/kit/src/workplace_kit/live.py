"""Live fan-out over Redis pub/sub: one pattern subscription per process, handed to the
process's own listeners by key (a session, a dialogue).

Any replica publishes on `<prefix><key>`; every replica's listeners of that key get the
message, whichever replica their browser is connected to. 500 open streams share one Redis
connection instead of holding 500. Redis is only the live channel, never the record: what a
listener is told is stored elsewhere (PostgreSQL), so a message lost while Redis is down is
never an event lost; the listeners are told the subscription ended and read the store instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# What a listener gets: a message's data, or the exception that ended the subscription.
Listener = Callable[[bytes | BaseException], None]


class LiveHub:
    def __init__(self, redis: aioredis.Redis, prefix: str, *, name: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.name = name
        self._listeners: dict[str, set[Listener]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def channel(self, key: str) -> str:
        return self.prefix + key

    @property
    def subscribed(self) -> bool:
        """The process's subscription is running (False before the first listener, or after Redis
        was lost)."""
        return self._reader is not None and not self._reader.done()

    async def publish(self, key: str, data: bytes) -> None:
        """To every replica's listeners of `key` (raises RedisError while Redis is down)."""
        await self.redis.publish(self.channel(key), data)

    def deliver_here(self, key: str, data: bytes | BaseException) -> None:
        """To this process's listeners of `key` only (what a publish reaches when Redis cannot)."""
        for listener in tuple(self._listeners.get(key, ())):
            listener(data)

    def add(self, key: str, listener: Listener) -> Callable[[], None]:
        """Listen to `key`; returns what stops listening."""
        self._listeners.setdefault(key, set()).add(listener)

        def remove() -> None:
            listeners = self._listeners.get(key)
            if listeners is not None:
                listeners.discard(listener)
                if not listeners:
                    del self._listeners[key]

        return remove

    async def subscribe(self) -> None:
        """The process's one subscription, made on first use and again after Redis was lost
        (raises RedisError while Redis is down)."""
        async with self._lock:
            if self.subscribed:
                return
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(self.prefix + "*")
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]
                raise
            self._reader = asyncio.create_task(self._read(pubsub), name=self.name)

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
                if message is None:
                    continue
                channel = message["channel"]
                key = (channel.decode() if isinstance(channel, bytes) else str(channel)).removeprefix(self.prefix)
                self.deliver_here(key, message["data"])
        except (RedisError, OSError) as exc:
            log.warning("%s: live subscription lost (listeners read the store meanwhile): %r", self.name, exc)
            # Every listener learns at once and falls back to reading what is stored.
            for key in tuple(self._listeners):
                self.deliver_here(key, exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
