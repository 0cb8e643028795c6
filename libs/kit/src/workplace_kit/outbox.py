"""Transactional outbox: events are written in the same transaction as the data they describe,
then published by a relay. A crash between commit and publish loses no event, and a failed
AI call or transaction publishes nothing.

Each service schema has an `outbox` table (see the service's migrations):
    id bigserial primary key, topic text, ordering_key text, type_name text, payload bytea,
    attempts int, created_at timestamptz, trace_context jsonb

The trace context of the request that wrote the event is kept with it and restored while the
relay publishes, so the event's attributes carry the original trace, not the relay's.
"""

from __future__ import annotations

import asyncio
import json
import logging

import asyncpg
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import Message
from opentelemetry import context as otel_context
from opentelemetry import propagate
from prometheus_client import Gauge

log = logging.getLogger(__name__)
OUTBOX_PENDING = Gauge("outbox_pending_events", "Events written but not yet published", ["service"])


async def enqueue(conn: asyncpg.Connection, topic: str, message: Message, *, ordering_key: str) -> None:
    """Write an event inside the caller's transaction."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    await conn.execute(
        "INSERT INTO outbox (topic, ordering_key, type_name, payload, trace_context) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        topic,
        ordering_key,
        message.DESCRIPTOR.full_name,
        message.SerializeToString(),
        json.dumps(carrier),
    )


def _decode(type_name: str, payload: bytes) -> Message:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)
    return message_factory.GetMessageClass(descriptor).FromString(payload)


class OutboxRelay:
    """Publishes outbox rows in insertion order; `kick()` after a commit publishes at once."""

    def __init__(self, pool: asyncpg.Pool, bus, *, service: str, poll_interval_s: float = 2.0, batch: int = 100):
        self.pool = pool
        self.bus = bus
        self.service = service
        self.poll_interval_s = poll_interval_s
        self.batch = batch
        self._wake = asyncio.Event()

    def kick(self) -> None:
        self._wake.set()

    async def publish_pending(self) -> int:
        """Publish what is pending; returns how many were published."""
        published = 0
        async with self.pool.acquire() as conn:
            async with conn.transaction():
                rows = await conn.fetch(
                    "SELECT id, topic, ordering_key, type_name, payload, trace_context FROM outbox "
                    "ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
                    self.batch,
                )
                for row in rows:
                    carrier = json.loads(row["trace_context"] or "{}")
                    token = otel_context.attach(propagate.extract(carrier))
                    try:
                        message = _decode(row["type_name"], bytes(row["payload"]))
                        await self.bus.publish(row["topic"], message, ordering_key=row["ordering_key"])
                    except Exception:  # noqa: BLE001 - retried on the next pass
                        log.warning("outbox publish failed; will retry", exc_info=True, extra={"id": row["id"]})
                        await conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = $1", row["id"])
                        break  # keep per-key order: stop at the first failure
                    finally:
                        otel_context.detach(token)
                    await conn.execute("DELETE FROM outbox WHERE id = $1", row["id"])
                    published += 1
            OUTBOX_PENDING.labels(self.service).set(await conn.fetchval("SELECT count(*) FROM outbox"))
        return published

    async def run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                while await self.publish_pending() == self.batch:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the relay must outlive a database hiccup
                log.warning("outbox relay pass failed", exc_info=True)
