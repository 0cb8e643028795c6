"""Long-running worker coroutines shared by services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from google.protobuf.message import Message

from .bus import EventBus, Handler

M = TypeVar("M", bound=Message)

log = logging.getLogger(__name__)


def pubsub_consumer(
    bus: EventBus,
    subscription: str,
    message_type: type[M],
    handler: Handler[M],
    *,
    max_messages: int = 32,
    check_interval_s: float = 5.0,
    healthy: Callable[[], Awaitable[object]] | None = None,
) -> Callable[[], Coroutine[Any, Any, None]]:
    """A worker that keeps pulling `subscription` until cancelled, restarting the pull loop if
    it ever stops (it retries broker errors itself; this is the last line of defence)."""

    async def consume() -> None:
        sub = await bus.subscribe(subscription, message_type, handler, max_messages=max_messages, healthy=healthy)
        try:
            while True:
                await asyncio.sleep(check_interval_s)
                if not sub.running:
                    log.error("pull loop stopped; starting it again", extra={"subscription": subscription})
                    await sub.close()
                    sub = await bus.subscribe(
                        subscription, message_type, handler, max_messages=max_messages, healthy=healthy
                    )
        finally:
            await sub.close()

    consume.__name__ = f"consume:{subscription}"
    return consume
