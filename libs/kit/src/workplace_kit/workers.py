"""Long-running worker coroutines shared by services."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from google.protobuf.message import Message

from .bus import EventBus, Handler

log = logging.getLogger(__name__)


def pubsub_consumer(
    bus: EventBus,
    subscription: str,
    message_type: type[Message],
    handler: Handler,
    *,
    max_messages: int = 32,
    check_interval_s: float = 5.0,
) -> Callable[[], Awaitable[None]]:
    """A worker that keeps a streaming pull open until cancelled, reopening it if it dies."""

    async def consume() -> None:
        sub = await bus.subscribe(subscription, message_type, handler, max_messages=max_messages)
        try:
            while True:
                await asyncio.sleep(check_interval_s)
                if not sub.running:
                    log.warning("streaming pull stopped; reopening", extra={"subscription": subscription})
                    await sub.close()
                    sub = await bus.subscribe(subscription, message_type, handler, max_messages=max_messages)
        finally:
            await sub.close()

    consume.__name__ = f"consume:{subscription}"
    return consume
