"""Event bus on Google Cloud Pub/Sub, in asyncio.

Topics and subscriptions come from one table (workplace_kit.topology); `provision()` creates
them, and runs again whenever the broker answers NOT_FOUND. That is for the emulator: on Pub/Sub
they are infrastructure code, and a service only checks at start that what it needs is there
(`verify()`; `create_missing`).

Publishing: one Publish RPC per batch (the outbox relay hands over what it has), protobuf
payloads, attributes naming the event type, the event's own id and the producer, and the
trace context of the request that wrote the event. No client-side retry and a short deadline:
the outbox keeps an event until the broker has taken it, and retries.

Subscribing: unary pull with our own flow control and lease extension, not the client
library's streaming pull. The Pub/Sub emulator does not notice that a streaming pull's client
died (SIGKILL) and keeps routing messages to the dead stream; they come back only when the
stream's ack deadline (60 s by default) expires, and may go to the dead stream again. It does
not notice a cancelled or abandoned unary pull either, so against the emulator the pulls return
at once and the loop polls (see Subscription._pull_loop); on Pub/Sub they are long polls.
Measured here (bench/emulator_redelivery.py) after a SIGKILLed consumer, 100 messages: streaming
pull delivered none within 10 s and left 7-52 undelivered after 150 s; unary pull delivered
them within seconds. Unary pull also gives real retry backoff on the emulator: a failed
message's ack deadline is set to the delay, which the emulator honours (it ignores the
subscription's retry policy; that is set too, for Pub/Sub).

Exactly once in effect: Pub/Sub delivers at least once. A consumer records each event's own
id (never the broker's message id: the emulator numbers messages from 1 again after every
restart) in its own database, in the same transaction as its result: workplace_kit.inbox.

When a handler fails:
- it raises: the message comes back after a backoff (min → max, doubling, with jitter);
  after max_delivery_attempts Pub/Sub moves it to the subscription's dead-letter topic.
  If the failure is a dependency outage (database, Redis, AI provider unavailable) the
  subscription also stops taking work: it pulls one message at a time after a growing pause
  until one succeeds, so an outage spends the attempts of one message, not of the backlog.
- it raises PermanentFailure, or the payload does not decode: the message is dead-lettered at
  once (published to the dead-letter topic with the reason) and acked.
Every dead letter is counted (workplace_bus_dead_lettered_total, alerted on) and `task
dlq:replay` republishes them (`python -m workplace_kit.pubsub replay <subscription>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import random
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

from google.api_core import exceptions as gexc
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage
from google.pubsub_v1 import types as pubsub_types
from google.pubsub_v1.services.publisher import PublisherAsyncClient
from google.pubsub_v1.services.subscriber import SubscriberAsyncClient
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TracerProvider
from prometheus_client import Counter, Histogram

from .errors import is_dependency_outage
from .topology import (
    BROKER_EPOCH_TOPIC,
    DEFAULT,
    DLQ_ACK_DEADLINE_S,
    DLQ_RETENTION_S,
    SubscriptionSpec,
    Topology,
)

__all__ = [
    "CONTENT_TYPE_PROTOBUF",
    "Envelope",
    "EventBus",
    "EventBusError",
    "Handled",
    "Handler",
    "Outgoing",
    "PermanentFailure",
    "Subscription",
    "TopologyMissing",
    "retry_delay_s",
]

log = logging.getLogger(__name__)

CONTENT_TYPE_PROTOBUF = "application/protobuf"
_PULL_BATCH = 100  # Pub/Sub's most messages per pull
_ADMIN_TIMEOUT_S = 15.0
_NEVER_EXPIRE: dict[str, Any] = {}  # an expiration policy without a ttl: the subscription never expires
_ACK_TIMEOUT_S = 10.0
# Acks wait this long to go out together in one RPC (Pub/Sub takes up to 2,500 ids per call):
# one acknowledge per event was a large share of the consumers' and the broker's CPU. An ack
# lost with a crash in between only means a redelivery, which the inbox absorbs.
_ACK_BATCH_S = 0.02
_ACK_BATCH_MAX = 2500
_MAX_OUTAGE_PAUSE_S = 5.0
_SLOW_HANDLER_WARN_S = 30.0
_IDLE_POLL_MIN_S = 0.05
_IDLE_POLL_MAX_S = 0.4
# Attributes Pub/Sub and we add on the way to a dead-letter topic; dropped on replay.
_DEAD_LETTER_ATTRIBUTE_PREFIXES = ("CloudPubSubDeadLetter", "dead_letter_")

PUBLISHED = Counter("workplace_bus_published_total", "Messages published to Pub/Sub", ["topic", "outcome"])
HANDLED = Counter(
    "workplace_bus_handled_total",
    "Pub/Sub deliveries handled, by outcome (ok, duplicate, retry, dead_lettered, undecodable)",
    ["subscription", "outcome"],
)
HANDLER_SECONDS = Histogram("workplace_bus_handler_seconds", "Time spent in event handlers", ["subscription"])
DEAD_LETTERED = Counter(
    "workplace_bus_dead_lettered_total",
    "Messages sent to a dead-letter topic (attempts_exhausted, undecodable, permanent)",
    ["subscription", "reason"],
)
PULL_ERRORS = Counter(
    "workplace_bus_pull_errors_total", "Failed pulls from a subscription, by gRPC status", ["subscription", "code"]
)

M = TypeVar("M", bound=ProtoMessage)


class EventBusError(RuntimeError):
    """The bus was misused or the broker refused an operation."""


class TopologyMissing(EventBusError):  # noqa: N818 - reads as what it is
    """Topics or subscriptions this service needs do not exist on Pub/Sub, or are not granted to
    it; the bus was told not to create them (EventBus(create_missing=False))."""


class PermanentFailure(Exception):  # noqa: N818 - reads as what it is
    """The event can never be handled (bad data): dead-letter it now instead of retrying."""


class Handled(Enum):
    """What a handler may return; None means OK."""

    OK = "ok"
    DUPLICATE = "duplicate"  # the event id was already recorded: nothing was done


@dataclass(frozen=True, slots=True)
class Envelope:
    """Delivery metadata handed to a handler next to the decoded message."""

    message_id: str
    event_id: str  # the event's own id: key idempotency on this
    attributes: dict[str, str]
    delivery_attempt: int  # 1 for the first delivery
    publish_time: datetime
    ordering_key: str


Handler = Callable[[M, Envelope], Awaitable["Handled | None"]]


@dataclass(frozen=True)
class Outgoing:
    """One event to publish; `trace_carrier` is the writer's trace context (the outbox keeps it)."""

    message: ProtoMessage
    ordering_key: str = ""
    trace_carrier: dict[str, str] | None = None
    attributes: dict[str, str] = field(default_factory=dict)


def retry_delay_s(attempt: int, min_s: float, max_s: float) -> float:
    """Backoff before delivery `attempt + 1`: min_s doubling up to max_s, jittered down by up
    to 20 % so that messages that failed together do not come back together."""
    base: float = min(max_s, min_s * 2 ** max(0, attempt - 1))
    return base * random.uniform(0.8, 1.0)


def _duration(seconds: float) -> dict[str, int]:
    return {"seconds": int(seconds), "nanos": int(round((seconds % 1) * 1e9))}


def _event_id(message: ProtoMessage) -> str:
    return str(getattr(message, "event_id", "") or "")


# --- subscription ----------------------------------------------------------------------


class Subscription(Generic[M]):
    """A running pull loop. `close()` stops pulling and lets in-flight handlers finish."""

    def __init__(
        self,
        *,
        bus: EventBus,
        spec: SubscriptionSpec,
        message_type: type[M],
        handler: Handler[M],
        max_messages: int,
        pull_timeout_s: float,
        drain_timeout_s: float,
        healthy: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._bus = bus
        self._healthy = healthy
        self.spec = spec
        self.name = bus.topology.name(spec.name)
        self.path = bus.subscription_path(spec.name)
        self._message_type = message_type
        self._handler = handler
        self._max_messages = max_messages
        self._pull_timeout_s = pull_timeout_s
        self._drain_timeout_s = drain_timeout_s
        self._in_flight: dict[str, float] = {}  # ack id -> when it was pulled
        self._tasks: set[asyncio.Task[None]] = set()
        self._room = asyncio.Event()
        self._stopping = asyncio.Event()
        self._outage_streak = 0  # consecutive handler failures that were dependency outages
        self._probes = 0  # pulls of one message made while the streak lasts
        self._loop_task: asyncio.Task[None] | None = None
        self._lease_task: asyncio.Task[None] | None = None
        self._acks: list[str] = []
        self._ack_flush: asyncio.Task[None] | None = None
        self._closed = False

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._pull_loop(), name=f"pull:{self.name}")
        self._lease_task = asyncio.create_task(self._extend_leases(), name=f"lease:{self.name}")

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    @property
    def in_outage(self) -> bool:
        return self._outage_streak > 0

    # pulling

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the subscription is closing."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _pull_loop(self) -> None:
        """Pull and dispatch until close(). A pull is never cancelled: close() lets it end.

        On Pub/Sub, pulls are long polls. On the emulator they return at once and the loop polls
        (every 50 ms, slowing to 400 ms while nothing comes): the emulator does not notice that
        a waiting pull was cancelled, timed out on the client side, or belonged to a process that
        died, and hands the next message to it, where it waits out the ack deadline, sometimes
        again and again (measured: 10-30 s, and one event not back after 60 s)."""
        client = self._bus._subscriber
        pull_failures = 0
        idle_pause = _IDLE_POLL_MIN_S
        while not self._stopping.is_set():
            if self._outage_streak:
                # Circuit open: wait until the dependency answers, then one message at a time.
                while self._in_flight and not self._stopping.is_set():
                    await self._wait_for_room()
                if self._outage_streak:
                    await self._wait_until_healthy()
                limit = 1
            else:
                free = self._max_messages - len(self._in_flight)
                if free <= 0:
                    await self._wait_for_room()
                    continue
                limit = min(free, _PULL_BATCH)
            if self._stopping.is_set():
                break
            try:
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*return_immediately.*")
                    response = await client.pull(
                        request={
                            "subscription": self.path,
                            "max_messages": limit,
                            "return_immediately": self._bus.short_polls,
                        },
                        retry=None,
                        timeout=self._pull_timeout_s,
                    )
            except gexc.DeadlineExceeded:
                continue  # a long poll that found nothing
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any broker trouble
                pull_failures += 1
                PULL_ERRORS.labels(self.name, type(exc).__name__).inc()
                if pull_failures == 1 or pull_failures % 20 == 0:
                    log.warning("pull failed; retrying", extra={"subscription": self.name, "error": repr(exc)[:300]})
                if isinstance(exc, gexc.NotFound) and self._bus.create_missing:
                    # The broker lost the subscription (an emulator restart): declare it again
                    # and pull at once.
                    try:
                        await self._bus.provision(topics=[self.spec.topic])
                        continue
                    except Exception:  # noqa: BLE001 - the broker is still in trouble
                        pass
                # Pulls are cheap: try again soon, so that work resumes as the broker returns.
                await self._pause(min(2.0, 0.2 * 2 ** min(pull_failures, 4)))
                continue
            if pull_failures:
                log.info("pulling again", extra={"subscription": self.name, "after_failures": pull_failures})
            pull_failures = 0
            received = list(response.received_messages)
            if self._bus.short_polls:
                if received:
                    idle_pause = _IDLE_POLL_MIN_S
                else:
                    await self._pause(idle_pause)
                    idle_pause = min(_IDLE_POLL_MAX_S, idle_pause * 2)
            if self._stopping.is_set():
                # Pulled while closing: hand them straight back.
                if received:
                    await self._modack([r.ack_id for r in received], 0)
                break
            for message in received:
                self._in_flight[message.ack_id] = time.monotonic()
                task = asyncio.create_task(self._process(message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _wait_until_healthy(self) -> None:
        """With a health check: ask it every second (no event spends an attempt meanwhile).
        Without: pause, longer after each probe (0.5 s doubling to 5 s)."""
        if self._healthy is None:
            await self._pause(min(_MAX_OUTAGE_PAUSE_S, 0.5 * 2 ** min(self._probes, 4)))
            self._probes += 1
            return
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._healthy(), timeout=5)
                return
            except Exception:  # noqa: BLE001 - still down
                await self._pause(1.0)

    async def _wait_for_room(self) -> None:
        self._room.clear()
        waiters = {asyncio.ensure_future(self._room.wait()), asyncio.ensure_future(self._stopping.wait())}
        _done, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()

    async def _extend_leases(self) -> None:
        """Keep handlers that run long from losing their message to a redelivery."""
        every = max(1.0, self.spec.ack_deadline_s / 3)
        warned: set[str] = set()
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            due = [ack_id for ack_id, since in self._in_flight.items() if now - since >= every]
            if due:
                await self._modack(due, self.spec.ack_deadline_s)
            for ack_id in due:
                if ack_id not in warned and now - self._in_flight.get(ack_id, now) > _SLOW_HANDLER_WARN_S:
                    warned.add(ack_id)
                    log.warning(
                        "an event handler has been running for over %.0f s",
                        _SLOW_HANDLER_WARN_S,
                        extra={"subscription": self.name},
                    )
            warned &= set(self._in_flight)

    # handling

    async def _process(self, received: pubsub_types.ReceivedMessage) -> None:
        message = received.message
        attributes = dict(message.attributes)
        producer_context = trace.get_current_span(propagate.extract(attributes)).get_span_context()
        links = [Link(producer_context)] if producer_context.is_valid else []
        try:
            with self._bus._tracer.start_as_current_span(
                f"{self.name} process",
                # A new trace linked to the producer's: processing may happen long after the
                # request that published the event.
                context=otel_context.Context(),
                kind=SpanKind.CONSUMER,
                links=links,
                attributes={
                    "messaging.system": "gcp_pubsub",
                    "messaging.operation.type": "process",
                    "messaging.destination.subscription.name": self.name,
                    "messaging.message.id": message.message_id,
                    "messaging.gcp_pubsub.message.ordering_key": message.ordering_key,
                    "messaging.gcp_pubsub.message.delivery_attempt": received.delivery_attempt or 1,
                },
            ) as span:
                try:
                    outcome = await self._handle(received, attributes, span)
                except Exception as exc:  # noqa: BLE001 - a bug here must not strand the message
                    log.exception("bus delivery failed outside the handler", extra={"subscription": self.name})
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, "delivery failed"))
                    await self._modack([received.ack_id], 0)
                    outcome = "retry"
                span.set_attribute("workplace.bus.outcome", outcome)
                HANDLED.labels(self.name, outcome).inc()
        finally:
            self._in_flight.pop(received.ack_id, None)
            self._room.set()

    async def _handle(
        self, received: pubsub_types.ReceivedMessage, attributes: dict[str, str], span: trace.Span
    ) -> str:
        message = received.message
        decoded = self._decode(message, attributes)
        if decoded is None:
            span.set_status(Status(StatusCode.ERROR, "undecodable"))
            await self._dead_letter(received, attributes, "undecodable")
            return "undecodable"
        envelope = Envelope(
            message_id=message.message_id,
            event_id=attributes.get("event_id") or _event_id(decoded) or message.message_id,
            attributes=attributes,
            delivery_attempt=received.delivery_attempt or 1,
            publish_time=message.publish_time,
            ordering_key=message.ordering_key,
        )
        started = time.perf_counter()
        try:
            # A handler stuck on a dead connection would otherwise keep its message leased forever.
            result = await asyncio.wait_for(self._handler(decoded, envelope), timeout=self.spec.handler_timeout_s)
        except PermanentFailure as exc:
            span.set_status(Status(StatusCode.ERROR, "permanent failure"))
            log.error(
                "event cannot be handled; dead-lettering it",
                extra={"subscription": self.name, "event_id": envelope.event_id, "reason": str(exc)[:500]},
            )
            await self._dead_letter(received, attributes, "permanent", detail=str(exc))
            return "dead_lettered"
        except Exception as exc:  # noqa: BLE001 - any other failure: try again later
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            return await self._retry_later(received, envelope, exc)
        finally:
            HANDLER_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        self._outage_streak = self._probes = 0
        await self._ack(received.ack_id)
        return "duplicate" if result is Handled.DUPLICATE else "ok"

    async def _retry_later(self, received: pubsub_types.ReceivedMessage, envelope: Envelope, exc: Exception) -> str:
        outage = is_dependency_outage(exc)
        if outage:
            if self._outage_streak == 0:
                log.warning(
                    "a dependency is unavailable; taking one message at a time until it answers",
                    extra={"subscription": self.name, "error": repr(exc)[:300]},
                )
            self._outage_streak += 1
        attempt = envelope.delivery_attempt
        if attempt >= self.spec.max_delivery_attempts:
            # Pub/Sub forwards it to the dead-letter topic after this attempt.
            DEAD_LETTERED.labels(self.name, "attempts_exhausted").inc()
            log.error(
                "event failed on its last attempt; Pub/Sub moves it to the dead-letter topic",
                exc_info=exc,
                extra={"subscription": self.name, "event_id": envelope.event_id, "attempt": attempt},
            )
            await self._modack([received.ack_id], 0)
            return "dead_lettered"
        delay = retry_delay_s(attempt, self.spec.min_backoff_s, self.spec.max_backoff_s)
        log.warning(
            "event handler failed; retrying later",
            exc_info=None if outage else exc,
            extra={
                "subscription": self.name,
                "event_id": envelope.event_id,
                "attempt": attempt,
                "retry_in_s": round(delay, 1),
                "error": repr(exc)[:300],
            },
        )
        await self._modack([received.ack_id], math.ceil(delay))
        return "retry"

    def _decode(self, message: pubsub_types.PubsubMessage, attributes: dict[str, str]) -> M | None:
        expected = self._message_type.DESCRIPTOR.full_name
        # Protobuf parsing is lenient (foreign bytes often parse as unknown fields), so the
        # declared type is checked too when the producer set it.
        declared = attributes.get("event_type")
        if declared is not None and declared != expected:
            log.error(
                "event type mismatch; dead-lettering",
                extra={"subscription": self.name, "event_type": declared, "expected": expected},
            )
            return None
        try:
            decoded: M = self._message_type.FromString(message.data)
            return decoded
        except DecodeError as exc:
            log.error(
                "undecodable payload; dead-lettering",
                extra={"subscription": self.name, "expected": expected, "error": str(exc)},
            )
            return None

    async def _dead_letter(
        self, received: pubsub_types.ReceivedMessage, attributes: dict[str, str], reason: str, detail: str = ""
    ) -> None:
        dead_attrs = dict(attributes)
        dead_attrs.update(
            dead_letter_reason=reason,
            dead_letter_subscription=self.name,
            dead_letter_detail=detail[:1000],
        )
        try:
            await self._bus._publish_raw(
                self.spec.dead_letter_topic,
                [pubsub_types.PubsubMessage(data=received.message.data, attributes=dead_attrs)],
            )
        except Exception:  # noqa: BLE001 - keep the message; try again after a pause
            log.warning("could not dead-letter a message; retrying later", exc_info=True)
            await self._modack([received.ack_id], 10)
            return
        DEAD_LETTERED.labels(self.name, reason).inc()
        await self._ack(received.ack_id)

    async def _ack(self, ack_id: str) -> None:
        """Queue the ack; a flush sends every queued one together shortly after."""
        self._acks.append(ack_id)
        if len(self._acks) >= _ACK_BATCH_MAX:
            await self._send_acks()
        elif self._ack_flush is None:
            self._ack_flush = asyncio.create_task(self._flush_acks_soon(), name=f"acks:{self.name}")

    async def _flush_acks_soon(self) -> None:
        try:
            await asyncio.sleep(_ACK_BATCH_S)
        finally:
            self._ack_flush = None  # acks queued from now on start the next flush
        await self._send_acks()

    async def _send_acks(self) -> None:
        while self._acks:
            ack_ids, self._acks = self._acks[:_ACK_BATCH_MAX], self._acks[_ACK_BATCH_MAX:]
            try:
                await self._bus._subscriber.acknowledge(
                    request={"subscription": self.path, "ack_ids": ack_ids}, timeout=_ACK_TIMEOUT_S
                )
            except Exception:  # noqa: BLE001 - a lost ack means a redelivery, which the inbox absorbs
                log.warning("ack failed; %d events will be delivered again", len(ack_ids), exc_info=True)

    async def _modack(self, ack_ids: list[str], seconds: int) -> None:
        try:
            await self._bus._subscriber.modify_ack_deadline(
                request={"subscription": self.path, "ack_ids": ack_ids, "ack_deadline_seconds": seconds},
                timeout=_ACK_TIMEOUT_S,
            )
        except Exception:  # noqa: BLE001 - the deadline then simply runs out
            log.warning("modify_ack_deadline failed", exc_info=True)

    async def close(self) -> None:
        """Stop pulling, give in-flight handlers drain_timeout_s to finish, then stop."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        if self._loop_task is not None:
            # The outstanding long-poll ends within pull_timeout_s; only a broker that does not
            # answer at all makes us cancel it.
            _done, pending = await asyncio.wait({self._loop_task}, timeout=self._pull_timeout_s + 2)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=self._drain_timeout_s)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "closed with handlers still running; their events come back after the ack deadline",
                    extra={"subscription": self.name, "running": len(pending)},
                )
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
        if self._ack_flush is not None:
            with contextlib.suppress(Exception):
                await self._ack_flush  # 20 ms at most, then one RPC
        await self._send_acks()  # what the handlers finished is acked before we go
        self._bus._forget_subscription(self)


# --- bus -------------------------------------------------------------------------------


class EventBus:
    """Publisher and subscriber for one service. Create one per process; `close()` it."""

    def __init__(
        self,
        project: str,
        *,
        service_name: str,
        topology: Topology = DEFAULT,
        tracer_provider: TracerProvider | None = None,
        drain_timeout_s: float = 10.0,
        pull_timeout_s: float = 20.0,
        publish_timeout_s: float = 10.0,
        short_polls: bool | None = None,
        create_missing: bool | None = None,
    ) -> None:
        if not project:
            raise EventBusError("project must not be empty")
        if not service_name:
            raise EventBusError("service_name must not be empty")
        self.project = project
        self.service_name = service_name
        self.topology = topology
        self._drain_timeout_s = drain_timeout_s
        self._pull_timeout_s = pull_timeout_s
        self._publish_timeout_s = publish_timeout_s
        # Against the emulator, polls that return at once instead of long polls (see _pull_loop).
        self.short_polls = bool(os.environ.get("PUBSUB_EMULATOR_HOST")) if short_polls is None else short_polls
        # Whether the bus creates what is missing (at start and on NOT_FOUND). Default: only on
        # the emulator. On Pub/Sub the topology is infrastructure code and the services' accounts
        # may only publish and pull (no admin role): they check, and fail naming what is missing.
        self.create_missing = bool(os.environ.get("PUBSUB_EMULATOR_HOST")) if create_missing is None else create_missing
        self._publisher = PublisherAsyncClient()
        self._subscriber = SubscriberAsyncClient()
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self._subscriptions: set[Subscription[Any]] = set()
        self._provision_lock = asyncio.Lock()
        self._closed = False

    # names

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{self.topology.name(topic)}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project}/subscriptions/{self.topology.name(subscription)}"

    @property
    def _epoch_subscription(self) -> str:
        return f"{BROKER_EPOCH_TOPIC}.{self.service_name}"

    # provisioning

    async def _create_topic(self, topic: str) -> bool:
        try:
            await self._publisher.create_topic(request={"name": self.topic_path(topic)}, timeout=_ADMIN_TIMEOUT_S)
        except gexc.AlreadyExists:
            return False
        return True

    async def _create_subscription(self, request: dict[str, Any]) -> bool:
        try:
            await self._subscriber.create_subscription(request=request, timeout=_ADMIN_TIMEOUT_S)
        except gexc.AlreadyExists:
            return False
        return True

    async def provision(self, *, topics: Iterable[str] | None = None) -> list[str]:
        """Create the declared topics (or only `topics`), each with its subscriptions, their
        dead-letter topics and inspection subscriptions. Idempotent; returns what was created.

        An existing subscription is left as it is (its settings are not compared)."""
        wanted = [self.topology.topic(t) for t in topics] if topics is not None else list(self.topology.topics)
        created: list[str] = []
        async with self._provision_lock:
            for topic in wanted:
                if await self._create_topic(topic.name):
                    created.append(self.topology.name(topic.name))
                for sub in self.topology.subscriptions_of(topic.name):
                    if await self._create_topic(sub.dead_letter_topic):
                        created.append(self.topology.name(sub.dead_letter_topic))
                    requests: tuple[dict[str, Any], ...] = (
                        {
                            "name": self.subscription_path(sub.name),
                            "topic": self.topic_path(sub.topic),
                            "ack_deadline_seconds": sub.ack_deadline_s,
                            "enable_message_ordering": False,
                            "dead_letter_policy": {
                                "dead_letter_topic": self.topic_path(sub.dead_letter_topic),
                                "max_delivery_attempts": sub.max_delivery_attempts,
                            },
                            "retry_policy": {
                                "minimum_backoff": _duration(sub.min_backoff_s),
                                "maximum_backoff": _duration(sub.max_backoff_s),
                            },
                            # Pub/Sub deletes a subscription idle for 31 days by default.
                            "expiration_policy": _NEVER_EXPIRE,
                        },
                        {
                            "name": self.subscription_path(sub.dead_letter_subscription),
                            "topic": self.topic_path(sub.dead_letter_topic),
                            "ack_deadline_seconds": DLQ_ACK_DEADLINE_S,
                            "expiration_policy": _NEVER_EXPIRE,
                            "message_retention_duration": _duration(DLQ_RETENTION_S),
                        },
                    )
                    for request in requests:
                        if await self._create_subscription(request):
                            created.append(request["name"].rsplit("/", 1)[1])
        if created:
            log.info("Pub/Sub topology provisioned", extra={"created_resources": created})
        return created

    async def ensure_topology(self) -> list[str]:
        """At start: provision() when the bus creates what is missing, else verify(). Returns
        what was created."""
        if self.create_missing:
            return await self.provision()
        await self.verify()
        return []

    async def verify(self) -> None:
        """Check that every topic this service publishes to and every subscription it pulls
        (Topology.needs_of) exists and lets it do so; raise TopologyMissing naming the others.

        TestIamPermissions needs no role of its own and answers an empty set for a resource that
        does not exist, so a missing resource and a missing grant look the same: both are fixed
        where the topology is provisioned."""
        topics, subscriptions = self.topology.needs_of(self.service_name)
        checks: list[tuple[PublisherAsyncClient | SubscriberAsyncClient, str, str]] = [
            (self._publisher, self.topic_path(t), "pubsub.topics.publish") for t in topics
        ]
        checks += [(self._subscriber, self.subscription_path(s), "pubsub.subscriptions.consume") for s in subscriptions]
        missing = []
        for client, path, permission in checks:
            try:
                response = await client.test_iam_permissions(
                    request={"resource": path, "permissions": [permission]}, timeout=_ADMIN_TIMEOUT_S
                )
                granted = permission in response.permissions
            except gexc.NotFound:
                granted = False
            if not granted:
                missing.append(f"{path} ({permission})")
        if missing:
            raise TopologyMissing(
                f"{self.service_name}: Pub/Sub resources missing or not granted to this service's account: "
                + ", ".join(missing)
                + ". They are provisioned with the cloud resources (deploy/cloud/config-connector, "
                'docs/production.md "Cloud resources") or `python -m workplace_kit.pubsub provision`; '
                "the services do not create them on Pub/Sub (WP_PUBSUB_CREATE_MISSING)."
            )

    @property
    def broker_may_lose_state(self) -> bool:
        """Only the emulator forgets topics and messages (it keeps them in memory)."""
        return bool(os.environ.get("PUBSUB_EMULATOR_HOST"))

    async def broker_state_lost(self) -> bool:
        """True if the broker does not know this service's sentinel subscription: it lost its
        state (the emulator keeps everything in memory) or never had it (first start). Then the
        whole topology and the sentinel are declared again before this returns, and the caller
        should republish what the broker may have lost (the outbox does). Always False against
        Pub/Sub itself, which keeps what it accepted (and the services' accounts may not read
        subscriptions' metadata)."""
        if not self.broker_may_lose_state:
            return False
        try:
            await self._subscriber.get_subscription(
                request={"subscription": self.subscription_path(self._epoch_subscription)}, timeout=_ADMIN_TIMEOUT_S
            )
            return False
        except gexc.NotFound:
            pass
        await self.provision()
        await self._create_topic(BROKER_EPOCH_TOPIC)
        await self._create_subscription(
            {
                "name": self.subscription_path(self._epoch_subscription),
                "topic": self.topic_path(BROKER_EPOCH_TOPIC),
                "expiration_policy": _NEVER_EXPIRE,
            }
        )
        return True

    # publish

    async def _publish_raw(self, topic: str, messages: list[pubsub_types.PubsubMessage]) -> list[str]:
        """One Publish RPC; on NOT_FOUND the topology of `topic` is declared and it is tried once more."""
        path = self.topic_path(topic)
        for attempt in (1, 2):
            try:
                response = await self._publisher.publish(
                    request={"topic": path, "messages": messages}, retry=None, timeout=self._publish_timeout_s
                )
                return list(response.message_ids)
            except gexc.NotFound:
                if attempt == 2 or not self.create_missing:
                    raise
                log.warning("topic missing on the broker; declaring the topology again", extra={"topic": path})
                if topic.endswith(".dlq"):
                    await self.provision()
                else:
                    await self.provision(topics=[topic])
        raise AssertionError("unreachable")

    async def publish_batch(self, items: Sequence[Outgoing]) -> list[str]:
        """Publish events in order, one RPC per topic; returns their Pub/Sub message ids.

        Raises if the broker does not take them (the caller keeps them and retries)."""
        if self._closed:
            raise EventBusError("event bus is closed")
        by_topic: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            by_topic.setdefault(self.topology.topic_for(item.message).name, []).append(index)
        ids: list[str] = [""] * len(items)
        for topic, indexes in by_topic.items():
            spans = []
            messages = []
            for index in indexes:
                item = items[index]
                event_type = item.message.DESCRIPTOR.full_name
                parent = propagate.extract(item.trace_carrier) if item.trace_carrier is not None else None
                span = self._tracer.start_span(
                    f"{topic} publish",
                    context=parent,
                    kind=SpanKind.PRODUCER,
                    attributes={
                        "messaging.system": "gcp_pubsub",
                        "messaging.operation.type": "send",
                        "messaging.destination.name": self.topology.name(topic),
                        "messaging.gcp_pubsub.message.ordering_key": item.ordering_key,
                        "workplace.bus.event_type": event_type,
                    },
                )
                attrs = dict(item.attributes)
                # Ours win over the caller's so consumers can trust them.
                attrs.update(
                    event_type=event_type,
                    event_id=_event_id(item.message),
                    content_type=CONTENT_TYPE_PROTOBUF,
                    producer=self.service_name,
                )
                propagate.inject(attrs, context=trace.set_span_in_context(span))
                spans.append(span)
                messages.append(
                    pubsub_types.PubsubMessage(
                        data=item.message.SerializeToString(), attributes=attrs, ordering_key=item.ordering_key
                    )
                )
            try:
                message_ids = await self._publish_raw(topic, messages)
            except Exception as exc:
                PUBLISHED.labels(self.topology.name(topic), "error").inc(len(messages))
                for span in spans:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                    span.end()
                raise
            PUBLISHED.labels(self.topology.name(topic), "ok").inc(len(messages))
            for index, span, message_id in zip(indexes, spans, message_ids, strict=True):
                span.set_attribute("messaging.message.id", message_id)
                span.end()
                ids[index] = message_id
        return ids

    async def publish(
        self, message: ProtoMessage, *, ordering_key: str = "", attributes: dict[str, str] | None = None
    ) -> str:
        """Publish one event to its topic (in the current trace); returns the message id."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        (message_id,) = await self.publish_batch([Outgoing(message, ordering_key, carrier, dict(attributes or {}))])
        return message_id

    # subscribe

    async def subscribe(
        self,
        subscription: str,
        message_type: type[M],
        handler: Handler[M],
        *,
        max_messages: int = 32,
        healthy: Callable[[], Awaitable[object]] | None = None,
    ) -> Subscription[M]:
        """Start pulling `subscription` (a declared name); `handler` runs on this event loop.

        `healthy` (e.g. a database ping) raises while the handler's dependency is down: during
        an outage the subscription asks it instead of spending events' attempts on probes."""
        if self._closed:
            raise EventBusError("event bus is closed")
        if max_messages < 1:
            raise EventBusError(f"max_messages must be >= 1, got {max_messages}")
        spec = self.topology.subscription(subscription)
        expected = self.topology.topic(spec.topic).event_type
        if expected.DESCRIPTOR.full_name != message_type.DESCRIPTOR.full_name:
            raise EventBusError(
                f"{subscription} carries {expected.DESCRIPTOR.full_name}, not {message_type.DESCRIPTOR.full_name}"
            )
        sub = Subscription(
            bus=self,
            spec=spec,
            message_type=message_type,
            handler=handler,
            max_messages=max_messages,
            pull_timeout_s=self._pull_timeout_s,
            drain_timeout_s=self._drain_timeout_s,
            healthy=healthy,
        )
        sub.start()
        self._subscriptions.add(sub)
        return sub

    def _forget_subscription(self, sub: Subscription[Any]) -> None:
        self._subscriptions.discard(sub)

    # inspection and repair

    async def _pull_now(self, path: str, limit: int) -> list[pubsub_types.ReceivedMessage]:
        try:
            with warnings.catch_warnings():
                # Deprecated for consumers; for counting and replaying it is the point.
                warnings.filterwarnings("ignore", message=".*return_immediately.*")
                response = await self._subscriber.pull(
                    request={"subscription": path, "max_messages": limit, "return_immediately": True},
                    retry=None,
                    timeout=_ADMIN_TIMEOUT_S,
                )
        except gexc.DeadlineExceeded:
            return []
        return list(response.received_messages)

    async def backlog(self, subscription: str) -> int:
        """Exact number of messages waiting on `subscription` (a declared name or its `.dlq`).

        Snapshot, pull everything and count (acking, so that nothing is handed out twice while
        counting), seek back to the snapshot, delete it. For tests, the local KEDA simulation and
        the dead-letter report (the emulator has no metrics API); run it while no consumer pulls.
        """
        path = self.subscription_path(subscription)
        snapshot = f"projects/{self.project}/snapshots/backlog-{uuid.uuid4().hex}"
        await self._subscriber.create_snapshot(
            request={"name": snapshot, "subscription": path}, timeout=_ADMIN_TIMEOUT_S
        )
        total = 0
        try:
            while received := await self._pull_now(path, _PULL_BATCH):
                total += len(received)
                await self._subscriber.acknowledge(
                    request={"subscription": path, "ack_ids": [r.ack_id for r in received]}, timeout=_ADMIN_TIMEOUT_S
                )
        finally:
            try:
                await self._subscriber.seek(
                    request={"subscription": path, "snapshot": snapshot}, timeout=_ADMIN_TIMEOUT_S
                )
            except Exception as exc:
                raise EventBusError(
                    f"backlog count of {subscription} could not seek back; {total} messages were acked: "
                    f"restore them by seeking to {snapshot}"
                ) from exc
        await self._subscriber.delete_snapshot(request={"snapshot": snapshot}, timeout=_ADMIN_TIMEOUT_S)
        return total

    async def dead_letters(self, subscription: str) -> int:
        """How many messages wait on the subscription's dead-letter inspection subscription."""
        return await self.backlog(self.topology.subscription(subscription).dead_letter_subscription)

    async def replay_dead_letters(self, subscription: str, *, limit: int | None = None) -> int:
        """Republish what was dead-lettered from `subscription` to its topic, then ack it there.

        Every subscription of that topic gets the event again; consumers are idempotent by event
        id, so only the ones that had not handled it do any work."""
        spec = self.topology.subscription(subscription)
        dlq_path = self.subscription_path(spec.dead_letter_subscription)
        replayed = 0
        while limit is None or replayed < limit:
            batch = await self._pull_now(dlq_path, _PULL_BATCH if limit is None else min(_PULL_BATCH, limit - replayed))
            if not batch:
                break
            messages = []
            for received in batch:
                attrs = {
                    k: v
                    for k, v in received.message.attributes.items()
                    if not k.startswith(_DEAD_LETTER_ATTRIBUTE_PREFIXES)
                }
                attrs["replayed_from"] = self.topology.name(spec.dead_letter_subscription)
                messages.append(
                    pubsub_types.PubsubMessage(
                        data=received.message.data, attributes=attrs, ordering_key=received.message.ordering_key
                    )
                )
            await self._publish_raw(spec.topic, messages)
            await self._subscriber.acknowledge(
                request={"subscription": dlq_path, "ack_ids": [r.ack_id for r in batch]}, timeout=_ADMIN_TIMEOUT_S
            )
            replayed += len(batch)
        if replayed:
            log.info("dead letters replayed", extra={"subscription": subscription, "count": replayed})
        return replayed

    # lifecycle

    async def close(self) -> None:
        """Close subscriptions (draining handlers) and the clients."""
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscriptions):
            await sub.close()
        for client in (self._publisher, self._subscriber):
            with contextlib.suppress(Exception):
                # The transports' close() is unannotated in google-cloud-pubsub.
                await client.transport.close()  # type: ignore[no-untyped-call]
