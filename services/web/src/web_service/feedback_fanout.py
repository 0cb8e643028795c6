"""feedback.ready events → the browsers watching that session.

One shared Pub/Sub subscription feeds all web replicas' work; whichever replica gets an
event re-publishes it on a Redis channel per session (the kit's LiveHub: one Redis subscription
per process), and every replica's SSE connections for that session listen there. So a browser
gets its feedback whichever replica it is on.

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
from workplace_kit.live import LiveHub

log = logging.getLogger(__name__)
FANOUT_DROPPED = Counter(
    "web_feedback_fanout_dropped_total",
    "feedback.ready events not passed on live because Redis was unavailable (streams poll instead)",
)
PREFIX = "web:feedback:"


def channel_for(session_id: str) -> str:
    return PREFIX + session_id


class FeedbackFanout:
    def __init__(self, redis: aioredis.Redis):
        self.redis = redis
        self.hub = LiveHub(redis, PREFIX, name="feedback-fanout")

    async def on_feedback_ready(self, event: events_pb2.FeedbackReady, _envelope: Envelope | None = None) -> None:
        try:
            await self.hub.publish(event.session_id, event.SerializeToString())
        except RedisError as exc:
            FANOUT_DROPPED.inc()
            log.warning("Redis unavailable; feedback streams read stored analyses meanwhile: %r", exc)

    async def available(self) -> bool:
        try:
            return bool(await self.redis.ping())
        except RedisError:
            return False

    async def aclose(self) -> None:
        await self.hub.aclose()

    @contextlib.asynccontextmanager
    async def listen(
        self, session_id: str, *, heartbeat_s: float = 15.0
    ) -> AsyncIterator[AsyncIterator[events_pb2.FeedbackReady | None]]:
        """Listen from now on (on enter; raises RedisError if Redis is down); the yielded
        iterator gives the session's events as they arrive, None after each heartbeat_s of
        silence, and raises RedisError if Redis goes away."""
        await self.hub.subscribe()
        queue: asyncio.Queue[bytes | BaseException] = asyncio.Queue()
        stop = self.hub.add(session_id, queue.put_nowait)

        async def events() -> AsyncIterator[events_pb2.FeedbackReady | None]:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), timeout=heartbeat_s)
                except TimeoutError:
                    if not self.hub.subscribed:
                        raise RedisError("the feedback subscription has ended") from None
                    yield None
                    continue
                if isinstance(item, BaseException):
                    raise RedisError(f"the feedback subscription has ended: {item!r}")
                yield events_pb2.FeedbackReady.FromString(item)

        try:
            yield events()
        finally:
            stop()
