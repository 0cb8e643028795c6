"""Transactional outbox: events are written in the same transaction as the data they describe,
then published by a relay. A crash between commit and publish loses no event, and a failed
AI call or transaction publishes nothing.

The `outbox` table is the kit's (migration kit_0001_outbox_inbox, in every service schema).
The trace context of the request that wrote an event is kept with it, so the event's
attributes carry the original trace, not the relay's.

The relay:
- takes due rows in a short transaction (a claim that expires, so a relay that dies
  mid-publish leaves them to another), publishes them outside any transaction with a short
  deadline, one RPC per topic, then marks them published;
- on a broker error, retries those rows later with a backoff (capped, never giving up: the
  broker will come back); rows that can never be published (undecodable, refused by the
  broker as invalid) are set aside as dead after a few attempts, counted and alerted on;
  a failing row never holds up the others;
- keeps published rows for `retention_s`: when the broker has lost its state (the emulator
  keeps everything in memory; see EventBus.broker_state_lost), everything still retained is
  published again. Consumers are idempotent by event id, so that costs a lookup, not a
  duplicate.
Order: rows go out in id order. Subscriptions are unordered (every consumer is order
independent), so a row that was retried can arrive after later ones.

Where it runs: with the service's workers (service.ServiceParts.outbox_relay), or, where the
workers may scale to zero (WP_OUTBOX_RELAY=false), alone in a process of its own:

    python -m workplace_kit.outbox relay --schema feedback

which serves /healthz, /readyz and /metrics on the service's HTTP port (WP_HTTP_PORT) and reads
the same settings as the service (database, Pub/Sub project and name suffix, encryption keys).
Several relays of one schema may run at once: each row is claimed by one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import asyncpg
from google.api_core import exceptions as gexc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from opentelemetry import propagate
from prometheus_client import Counter, Gauge

from .bus import EventBus, Outgoing
from .config import ConfigError, ServiceSettings, load_settings
from .crypto import Cipher, DecryptionError, field_of
from .topology import DEFAULT, Topology

if TYPE_CHECKING:
    from .service import ServiceParts

log = logging.getLogger("workplace_kit.outbox")  # its name also when run with -m (__main__)

OUTBOX_PENDING = Gauge("outbox_pending_events", "Events written but not yet published", ["service"])
OUTBOX_OLDEST_PENDING = Gauge(
    "outbox_oldest_pending_age_seconds", "Age of the oldest event not yet published", ["service"]
)
OUTBOX_DEAD = Gauge("outbox_dead_events", "Events the relay gave up on (see outbox.last_error)", ["service"])
OUTBOX_REPUBLISHED = Counter(
    "outbox_republished_total", "Published events sent again because the broker lost its state", ["service"]
)

# Broker answers that no retry can fix.
_PERMANENT_ERRORS = (gexc.InvalidArgument, LookupError)


def _payload_field(type_name: str, ordering_key: str) -> str:
    return field_of("outbox", "payload", f"{type_name}:{ordering_key}")


def open_payload(row: Mapping[str, Any], cipher: Cipher | None) -> bytes:
    """An outbox row's event bytes (type_name, ordering_key, payload, sealed): sealed ones
    opened with the writing service's cipher. DecryptionError without one."""
    payload = bytes(row["payload"])
    if not row["sealed"]:
        return payload
    if cipher is None:
        raise DecryptionError("the payload is sealed and this relay has no cipher")
    return cipher.open(payload, _payload_field(row["type_name"], row["ordering_key"]))


async def enqueue(
    conn: asyncpg.Connection,
    message: Message,
    *,
    ordering_key: str,
    topology: Topology = DEFAULT,
    cipher: Cipher | None = None,
) -> None:
    """Write an event inside the caller's transaction; its topic comes from the topology.
    With a cipher the payload is sealed (events may carry a learner's words); the relay
    opens it with the same service's cipher."""
    topic = topology.topic_for(message).name  # raises for an undeclared event type
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    type_name = message.DESCRIPTOR.full_name
    payload = message.SerializeToString()
    if cipher is not None:
        payload = cipher.seal(payload, _payload_field(type_name, ordering_key))
    await conn.execute(
        "INSERT INTO outbox (topic, ordering_key, type_name, payload, trace_context, sealed, namespace) "
        "VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)",
        topic,
        ordering_key,
        type_name,
        payload,
        json.dumps(carrier),
        cipher is not None,
        topology.suffix,
    )


def _decode(type_name: str, payload: bytes) -> Message:
    descriptor = descriptor_pool.Default().FindMessageTypeByName(type_name)  # KeyError if unknown
    return message_factory.GetMessageClass(descriptor).FromString(payload)


_CLAIM = """
UPDATE outbox SET claimed_until = now() + make_interval(secs => $2), attempts = attempts + 1
WHERE id IN (
    SELECT id FROM outbox
    WHERE namespace = $4 AND published_at IS NULL AND dead_at IS NULL AND ($3 OR next_attempt_at <= now())
      AND (claimed_until IS NULL OR claimed_until < now())
    ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING id, topic, ordering_key, type_name, payload, trace_context, attempts, sealed
"""
_PUBLISHED = (
    "UPDATE outbox SET published_at = now(), claimed_until = NULL, last_error = NULL WHERE id = ANY($1::bigint[])"
)
_FAILED = """
UPDATE outbox SET claimed_until = NULL, last_error = $2,
    next_attempt_at = now() + make_interval(secs => least($3::float8, 0.5 * power(2, attempts - 1))),
    dead_at = CASE WHEN $4 AND attempts >= $5 THEN now() END
WHERE id = ANY($1::bigint[])
"""
_STATS = """
SELECT count(*) FILTER (WHERE published_at IS NULL AND dead_at IS NULL) AS pending,
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (WHERE published_at IS NULL AND dead_at IS NULL)), 0)
           AS oldest,
       count(*) FILTER (WHERE dead_at IS NOT NULL) AS dead
FROM outbox WHERE namespace = $1 AND published_at IS NULL
"""


class OutboxRelay:
    """Publishes outbox rows; `kick()` after a commit publishes at once."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        bus: EventBus,
        *,
        service: str,
        poll_interval_s: float = 2.0,
        batch: int = 100,
        claim_s: float = 30.0,
        max_backoff_s: float = 30.0,
        max_permanent_attempts: int = 3,
        cipher: Cipher | None = None,
        retention_s: float = 6 * 3600,
        broker_check_interval_s: float = 5.0,
        housekeeping_interval_s: float = 15.0,
        load_cipher: Callable[[], Awaitable[Cipher]] | None = None,
    ):
        self.pool = pool
        self.bus = bus
        # Rows written for this bus's topology (its name suffix); others belong to another relay.
        self.namespace = bus.topology.suffix
        self.service = service
        self.cipher = cipher  # opens sealed payloads
        # Without a cipher yet, opens one when the first sealed row comes (a standalone relay
        # that started before its service made its first data key).
        self.load_cipher = load_cipher
        self.poll_interval_s = poll_interval_s
        self.batch = batch
        self.claim_s = claim_s
        self.max_backoff_s = max_backoff_s
        self.max_permanent_attempts = max_permanent_attempts
        self.retention_s = retention_s
        self.broker_check_interval_s = broker_check_interval_s
        self.housekeeping_interval_s = housekeeping_interval_s
        self._wake = asyncio.Event()
        # Set when a publish failed: once the broker answers again, waiting rows go at once
        # instead of sitting out their backoff.
        self._broker_trouble = False
        # Set when run() is cancelled: the batch under way is finished, no other is taken.
        self._stopping = False

    def kick(self) -> None:
        self._wake.set()

    async def _mark_failed(self, ids: list[int], error: BaseException) -> None:
        permanent = isinstance(error, _PERMANENT_ERRORS)
        await self.pool.execute(
            _FAILED, ids, repr(error)[:1000], self.max_backoff_s, permanent, self.max_permanent_attempts
        )

    async def publish_pending(self, *, probe: bool = False) -> int:
        """Publish what is due; returns how many rows were taken (published or not). A probe
        takes the oldest waiting row whatever its backoff, to learn whether the broker is back."""
        rows = await self.pool.fetch(_CLAIM, 1 if probe else self.batch, self.claim_s, probe, self.namespace)
        rows = sorted(rows, key=lambda r: r["id"])
        if not rows:
            if probe:
                self._broker_trouble = False  # nothing waits at all
            return 0
        published = 0
        by_topic: dict[str, list[tuple[int, Outgoing]]] = {}
        if self.cipher is None and self.load_cipher is not None and any(r["sealed"] for r in rows):
            self.cipher = await self.load_cipher()
        if self.cipher is not None:
            await self.cipher.ensure_keys(bytes(r["payload"]) for r in rows if r["sealed"])
        for row in rows:
            try:
                message = _decode(row["type_name"], open_payload(row, self.cipher))
            except (KeyError, DecodeError, DecryptionError) as exc:
                # No retry can fix that: set it aside at once (dead), visible and alerted on.
                log.error("outbox row cannot be decoded; setting it aside", extra={"id": row["id"]})
                await self.pool.execute(
                    "UPDATE outbox SET dead_at = now(), claimed_until = NULL, last_error = $2 WHERE id = $1",
                    row["id"],
                    f"undecodable: {type(exc).__name__}: {exc}"[:1000],
                )
                continue
            carrier = json.loads(row["trace_context"] or "{}")
            by_topic.setdefault(row["topic"], []).append((row["id"], Outgoing(message, row["ordering_key"], carrier)))
        for topic, items in by_topic.items():
            ids = [row_id for row_id, _ in items]
            try:
                await self.bus.publish_batch([outgoing for _, outgoing in items])
            except Exception as exc:  # noqa: BLE001 - kept and retried; other topics go on
                log.warning(
                    "outbox publish failed; will retry",
                    extra={"topic": topic, "events": len(ids), "error": repr(exc)[:300]},
                )
                await self._mark_failed(ids, exc)
                self._broker_trouble = True
                continue
            await self.pool.execute(_PUBLISHED, ids)
            published += len(ids)
        if probe and published:
            await self.retry_now()
        return len(rows)

    async def republish_if_broker_lost_state(self) -> int:
        """Publish again whatever is retained if the broker lost its state; returns how many."""
        if not await self.bus.broker_state_lost():
            return 0
        result = await self.pool.execute(
            "UPDATE outbox SET published_at = NULL, next_attempt_at = now(), claimed_until = NULL "
            "WHERE namespace = $1 AND published_at IS NOT NULL",
            self.namespace,
        )
        count = int(result.split()[-1])
        if count:
            log.warning(
                "the broker lost its topics and subscriptions; publishing retained events again",
                extra={"events": count, "retention_s": self.retention_s},
            )
            OUTBOX_REPUBLISHED.labels(self.service).inc(count)
        return count

    async def retry_now(self) -> None:
        """The broker answers again: publish what waits for a retry now, not after its backoff."""
        self._broker_trouble = False
        await self.pool.execute(
            "UPDATE outbox SET next_attempt_at = now() "
            "WHERE namespace = $1 AND published_at IS NULL AND dead_at IS NULL AND next_attempt_at > now()",
            self.namespace,
        )

    async def housekeeping(self) -> None:
        await self.pool.execute(
            "DELETE FROM outbox WHERE published_at < now() - make_interval(secs => $1)", self.retention_s
        )
        stats = await self.pool.fetchrow(_STATS, self.namespace)
        OUTBOX_PENDING.labels(self.service).set(stats["pending"])
        OUTBOX_OLDEST_PENDING.labels(self.service).set(float(stats["oldest"]))
        OUTBOX_DEAD.labels(self.service).set(stats["dead"])

    async def run(self) -> None:
        """Publish until cancelled. Cancelled mid-pass (the process is stopping), it finishes the
        batch under way (for at most claim_s) so that its rows are marked published rather than
        left claimed, for the next relay to publish again once the claim expires."""
        timers = {"broker_check": 0.0, "housekeeping": 0.0}
        failures = 0
        self._stopping = False
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            current = asyncio.ensure_future(self._pass(timers))
            try:
                await asyncio.shield(current)
            except asyncio.CancelledError:
                self._stopping = True
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(current, timeout=self.claim_s)
                raise
            except Exception:  # noqa: BLE001 - the relay must outlive a database outage
                failures += 1
                if failures == 1 or failures % 30 == 0:
                    log.warning("outbox relay pass failed; retrying", exc_info=True)
                await asyncio.sleep(min(5.0, 0.2 * 2 ** min(failures, 5)))
                continue
            if failures:
                log.info("outbox relay works again", extra={"after_failures": failures})
            failures = 0

    async def _pass(self, timers: dict[str, float]) -> None:
        now = time.monotonic()
        if now >= timers["broker_check"]:
            # Every second while publishing fails, to go again as soon as it answers.
            timers["broker_check"] = now + (1.0 if self._broker_trouble else self.broker_check_interval_s)
            try:
                await self.republish_if_broker_lost_state()
            except gexc.GoogleAPICallError as exc:
                log.debug("broker check failed: %r", exc)  # the broker is down: publishing fails too
            if self._broker_trouble:
                await self.publish_pending(probe=True)
        while not self._stopping and await self.publish_pending() == self.batch:
            pass
        if now >= timers["housekeeping"]:
            timers["housekeeping"] = now + self.housekeeping_interval_s
            await self.housekeeping()


# --------------------------------------------------------------------------- standalone relay


async def _standalone_parts(
    stack: AsyncExitStack, settings: ServiceSettings, schema: str, poll_interval_s: float
) -> ServiceParts:
    """One service's relay with the kit's health, readiness and metrics, and nothing else."""
    from .crypto import NoDataKey, open_cipher
    from .resources import open_resources
    from .service import ServiceParts, create_http_app

    # No migrations here: the service (or the chart's migrations Job) owns the schema.
    res = await open_resources(stack, settings, schema=schema)
    pool = res.pool
    assert pool is not None  # a schema was given

    async def load_cipher() -> Cipher:
        # The service's own cipher (its data keys, its context); never a new data key.
        return await open_cipher(pool, settings, create=False)

    try:
        cipher: Cipher | None = await load_cipher()
    except NoDataKey:
        cipher = None  # the service has sealed nothing yet: opened with the first sealed row
    relay = OutboxRelay(
        pool,
        res.bus,
        service=settings.service_name,
        cipher=cipher,
        load_cipher=load_cipher,
        poll_interval_s=poll_interval_s,
    )

    async def outbox_table() -> None:
        # The database answers and the schema has the kit's tables (migrated).
        await pool.fetchval("SELECT 1 FROM outbox LIMIT 1")

    app = create_http_app(settings, title=f"{settings.service_name} outbox relay", readiness=[outbox_table])
    log.info(
        "outbox relay started",
        extra={"schema": schema, "namespace": relay.namespace, "poll_interval_s": poll_interval_s},
    )
    return ServiceParts(http_app=app, outbox_relay=relay.run)


def main(argv: list[str] | None = None) -> None:
    """`python -m workplace_kit.outbox relay --schema feedback`: only the outbox relay of one
    service's schema, until SIGTERM (it then finishes the batch under way). The chart runs it as
    <service>-outbox-relay where the service's workers may scale to zero (WP_OUTBOX_RELAY=false)."""
    import argparse

    from .service import run_service

    parser = argparse.ArgumentParser(prog="python -m workplace_kit.outbox")
    commands = parser.add_subparsers(dest="command", required=True)
    relay = commands.add_parser("relay", help="publish one service's outbox, and nothing else")
    relay.add_argument("--schema", required=True, help="the service's schema, e.g. feedback")
    relay.add_argument("--service", help="the service that writes there (default: the schema's name)")
    relay.add_argument(
        "--poll-interval-s", type=float, default=0.5, help="how often it looks for new events (no kick reaches it)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.poll_interval_s <= 60:
        parser.error("--poll-interval-s: between 0 and 60")
    from .db import _check_schema

    try:
        _check_schema(args.schema)
    except ValueError as exc:
        parser.error(f"--schema: {exc}")
    try:
        # The service's own settings (database, Pub/Sub, keys) from the environment; it serves
        # health and metrics only, and stops at once on SIGTERM (no load balancer to leave).
        settings = load_settings(
            ServiceSettings,
            service_name=args.service or args.schema,
            run_grpc=False,
            run_workers=True,
            outbox_relay=True,
            shutdown_drain_s=0.0,
        )
        run_service(settings, lambda stack: _standalone_parts(stack, settings, args.schema, args.poll_interval_s))
    except ConfigError as exc:
        print(f"outbox relay: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    # Run with -m this module is __main__: known by its own name too, so that an import of
    # workplace_kit.outbox finds these classes and metrics instead of registering them again.
    sys.modules.setdefault("workplace_kit.outbox", sys.modules[__name__])
    main()
