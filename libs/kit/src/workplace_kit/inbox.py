"""Idempotent event handling: each consumer records the events it has handled, by the event's
own id, in its own database, in the same transaction as the result.

Pub/Sub delivers at least once (and a replayed dead letter or a republished outbox delivers
again). The broker's message id is no key: the emulator numbers messages from 1 again after
every restart. The `inbox` table lives in each service's schema (kit migration
`kit_0001_outbox_inbox`), keyed on (consumer, event_id).

A handler checks `already_handled` first (cheap, outside any transaction, so a redelivery
skips the expensive work), does its work, then calls `record` inside the transaction that
stores the result: if two deliveries race, the second one's insert waits for the first
transaction and then finds the row, so only one result is ever stored.
"""

from __future__ import annotations

import asyncpg

# Long enough to cover Pub/Sub's retention (7 days) and later dead-letter replays.
DEFAULT_RETENTION_DAYS = 30


async def already_handled(db: asyncpg.Pool | asyncpg.Connection, consumer: str, event_id: str) -> bool:
    return bool(await db.fetchval("SELECT 1 FROM inbox WHERE consumer = $1 AND event_id = $2", consumer, event_id))


async def record(conn: asyncpg.Connection, consumer: str, event_id: str) -> bool:
    """Record the event inside the caller's transaction; False if it was recorded before (then
    the caller must not store its result again)."""
    if not event_id:
        raise ValueError("an event without an event_id cannot be handled idempotently")
    inserted = await conn.fetchval(
        "INSERT INTO inbox (consumer, event_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING true",
        consumer,
        event_id,
    )
    return bool(inserted)


async def purge(db: asyncpg.Pool | asyncpg.Connection, *, older_than_days: int = DEFAULT_RETENTION_DAYS) -> int:
    result = await db.execute("DELETE FROM inbox WHERE handled_at < now() - make_interval(days => $1)", older_than_days)
    return int(result.split()[-1])
