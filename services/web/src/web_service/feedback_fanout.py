"""feedback.ready events → the browsers watching that session.

One shared Pub/Sub subscription feeds all web replicas' work; whichever replica gets an
event re-publishes it on a Redis channel per session, and every replica's SSE connections
for that session listen there. So a browser gets its feedback whichever replica it is on.

Each web process holds ONE Redis subscription (a pattern over every session's channel) and
hands each event to the streams of its session in that process: 500 open streams no longer
hold 500 Redis connections.

Redis is only the live channel: every analysis is stored by the feedback service, and a
feedback stream reads what is stored whenever it (re)connects. So when Redis is down an event
is acknowledged and dropped (nobody listens on Redis then), and the streams fall back to
reading the stored analyses every few seconds until Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.exceptions import RedisError
from workplace.events.v1 import events_pb2
from workplace_kit.bus import Envelope

log = logging.getLogger(__name__)
FANOUT_DROPPED = Counter(
    "web_feedback_fanout_dropped_total",
    "feedback.ready events not passed on live because Redis was unavailable (streams poll instead)",
)


def channel_for(session_id: str) -> str:
    return f"web:feedback:{session_id}"


PATTERN = "web:feedback:*"


class FeedbackFanout:
    def __init__(self, redis: aioredis.Redis):
        self.redis = redis
        # session id -> the queues of this process's streams watching it
        self._listeners: dict[str, set[asyncio.Queue[events_pb2.FeedbackReady | BaseException]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Lock()

    async def on_feedback_ready(self, event: events_pb2.FeedbackReady, _envelope: Envelope | None = None) -> None:
        try:
            await self.redis.publish(channel_for(event.session_id), event.SerializeToString())
        except RedisError as exc:
            FANOUT_DROPPED.inc()
            log.warning("Redis unavailable; feedback streams read stored analyses meanwhile: %r", exc)

    async def available(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False

    async def _ensure_reader(self) -> None:
        """The process's one subscription, made on first use and again after Redis was lost
        (raises RedisError while Redis is down)."""
        async with self._ready:
            if self._reader is not None and not self._reader.done():
                return
            pubsub = self.redis.pubsub()
            try:
                await pubsub.psubscribe(PATTERN)
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pubsub.aclose())
                raise
            self._reader = asyncio.create_task(self._read(pubsub), name="feedback-fanout")

    async def _read(self, pubsub: aioredis.client.PubSub) -> None:
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=30.0)
                if message is None:
                    continue
                session_id = message["channel"].decode().removeprefix("web:feedback:")
                for queue in self._listeners.get(session_id, ()):
                    queue.put_nowait(events_pb2.FeedbackReady.FromString(message["data"]))
        except (RedisError, OSError) as exc:
            # Every stream learns at once and falls back to reading the stored analyses.
            for queues in self._listeners.values():
                for queue in queues:
                    queue.put_nowait(exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(pubsub.aclose())

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader

    @contextlib.asynccontextmanager
    async def listen(
        self, session_id: str, *, heartbeat_s: float = 15.0
    ) -> AsyncIterator[AsyncIterator[events_pb2.FeedbackReady | None]]:
        """Listen from now on (on enter; raises RedisError if Redis is down); the yielded
        iterator gives the session's events as they arrive, None after each heartbeat_s of
        silence, and raises RedisError if Redis goes away."""
        await self._ensure_reader()
        queue: asyncio.Queue[events_pb2.FeedbackReady | BaseException] = asyncio.Queue()
        self._listeners.setdefault(session_id, set()).add(queue)

        async def events() -> AsyncIterator[events_pb2.FeedbackReady | None]:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=heartbeat_s)
                except TimeoutError:
                    if self._reader is None or self._reader.done():
                        raise RedisError("the feedback subscription has ended") from None
                    yield None
                    continue
                if isinstance(item, BaseException):
                    raise RedisError(f"the feedback subscription has ended: {item!r}")
                yield item

        try:
            yield events()
        finally:
            queues = self._listeners.get(session_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._listeners[session_id]
