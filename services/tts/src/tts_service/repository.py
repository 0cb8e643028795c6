"""The service's own database records for tts.requests: the events handled (the kit's inbox) and
the tts.ready events to publish (the kit's outbox), written in one transaction."""

from __future__ import annotations

import asyncpg
from google.protobuf.message import Message
from workplace_kit import inbox, outbox
from workplace_kit.topology import DEFAULT, Topology


class RequestLedger:
    def __init__(self, pool: asyncpg.Pool, *, topology: Topology = DEFAULT) -> None:
        # Events are written for this topology (its name suffix is the outbox namespace).
        self.topology = topology
        self.pool = pool

    async def already_handled(self, consumer: str, event_id: str) -> bool:
        return await inbox.already_handled(self.pool, consumer, event_id)

    async def answer(self, *, consumer: str, event_id: str, event: Message, ordering_key: str) -> bool:
        """Record the request as handled and queue its answer; False when it was handled before
        (then nothing is queued: one answer per request)."""
        async with self.pool.acquire() as conn, conn.transaction():
            if not await inbox.record(conn, consumer, event_id):
                return False
            await outbox.enqueue(conn, event, ordering_key=ordering_key, topology=self.topology)
            return True
