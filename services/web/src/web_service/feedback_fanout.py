"""feedback.ready events → the browsers watching that session.

One shared Pub/Sub subscription feeds all web replicas' work; whichever replica gets an
event re-publishes it on a Redis channel per session, and every replica's SSE connections
for that session listen there. So a browser gets its feedback whichever replica it is on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from workplace.events.v1 import events_pb2


def channel_for(session_id: str) -> str:
    return f"web:feedback:{session_id}"


class FeedbackFanout:
    def __init__(self, redis: aioredis.Redis):
        self.redis = redis

    async def on_feedback_ready(self, event: events_pb2.FeedbackReady, _envelope=None) -> None:
        await self.redis.publish(channel_for(event.session_id), event.SerializeToString())

    @contextlib.asynccontextmanager
    async def listen(
        self, session_id: str, *, heartbeat_s: float = 15.0
    ) -> AsyncIterator[AsyncIterator[events_pb2.FeedbackReady | None]]:
        """Subscribe now (on enter); the yielded iterator gives the session's events as they
        arrive, and None after each heartbeat_s of silence."""
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(channel_for(session_id))

        async def events() -> AsyncIterator[events_pb2.FeedbackReady | None]:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=heartbeat_s)
                yield None if message is None else events_pb2.FeedbackReady.FromString(message["data"])

        try:
            yield events()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(pubsub.aclose())
