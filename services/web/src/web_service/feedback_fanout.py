"""feedback.ready events → the browsers watching that session.

One shared Pub/Sub subscription feeds all web replicas' work; whichever replica gets an
event re-publishes it on a Redis channel per session, and every replica's SSE connections
for that session listen there. So a browser gets its feedback whichever replica it is on.

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


class FeedbackFanout:
    def __init__(self, redis: aioredis.Redis):
        self.redis = redis

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

    @contextlib.asynccontextmanager
    async def listen(
        self, session_id: str, *, heartbeat_s: float = 15.0
    ) -> AsyncIterator[AsyncIterator[events_pb2.FeedbackReady | None]]:
        """Subscribe now (on enter; raises RedisError if Redis is down); the yielded iterator
        gives the session's events as they arrive, None after each heartbeat_s of silence, and
        raises RedisError if Redis goes away."""
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(channel_for(session_id))
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(pubsub.aclose())
            raise

        async def events() -> AsyncIterator[events_pb2.FeedbackReady | None]:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=heartbeat_s)
                yield None if message is None else events_pb2.FeedbackReady.FromString(message["data"])

        try:
            yield events()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(pubsub.aclose())
