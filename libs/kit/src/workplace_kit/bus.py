"""Event bus on Google Cloud Pub/Sub, bridged into asyncio.

Publishing: protobuf payloads, ordering key (the session id), attributes that name the
event type and producer and carry the OpenTelemetry trace context.

Subscribing: streaming pull with flow control; the client's callback thread hands each
message to the service's event loop. Handling is idempotent by message id, because
Pub/Sub delivers at least once: a delivery first claims
``bus:processing:<subscription>:<message_id>`` (SET NX EX) and is skipped (acked) if
``bus:done:<subscription>:<message_id>`` already exists; success sets the done marker
(7 days) and acks, failure releases the claim and nacks, so the message is redelivered
and ends on the dead-letter topic after ``max_delivery_attempts``.

Without Redis (``redis=None``) the done markers live in an in-process LRU. Trade-off:
that only protects against redelivery to *this* process while it runs. A redelivery to
another replica, or after a restart, or after the id fell out of the LRU, reaches the
handler again, so use it only for single-replica tools and tests, or with handlers that
are idempotent themselves.

Subscription names given to this module are short names (``chat.turns.feedback``); the
project is added here. Dead letters go to ``<topic>.dlq`` by default with an inspection
subscription ``<subscription>.dlq``.

Pub/Sub emulator 0.8.20 quirks (checked here; production Pub/Sub does not have them):
- it does not notice a cancelled streaming pull and keeps routing ordering keys to the
  dead stream for ~60 s; ``Subscription.close()`` therefore half-closes the stream first
  when PUBSUB_EMULATOR_HOST is set.
- on subscriptions with message ordering it never moves a message to the dead-letter
  topic: after ``max_delivery_attempts`` the message just stops being delivered.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import os
import threading
import time
import uuid
import warnings
from collections.abc import Awaitable, Callable
from concurrent.futures import Future as ConcurrentFuture
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Generic, Protocol, TypeVar

import redis.asyncio as aioredis
from google.api_core import exceptions as gexc
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.subscriber.message import Message as PubsubMessage
from google.cloud.pubsub_v1.types import FlowControl, PublisherOptions
from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, TracerProvider
from prometheus_client import Counter, Histogram

__all__ = [
    "CONTENT_TYPE_PROTOBUF",
    "DONE_TTL_S",
    "Envelope",
    "EventBus",
    "EventBusError",
    "Handler",
    "Subscription",
    "dead_letter_subscription_name",
    "default_dead_letter_topic",
    "done_key",
    "processing_key",
]

_log = logging.getLogger(__name__)

CONTENT_TYPE_PROTOBUF = "application/protobuf"
DONE_TTL_S = 7 * 24 * 3600
# Longer than any handler should run; if a worker dies mid-handler the claim expires and a
# redelivery can proceed.
DEFAULT_PROCESSING_TTL_S = 60
_CLAIM_POLL_S = 0.2
_LOCAL_DONE_CAPACITY = 100_000
# Sync pull returns at most 100 messages per call (service and emulator limit).
_PULL_BATCH = 100
_EMULATOR_HALF_CLOSE_WAIT_S = 2.0
_ADMIN_TIMEOUT_S = 15.0
_PUBLISH_KEYWORDS = frozenset({"topic", "data", "ordering_key", "retry", "timeout"})

PUBLISHED = Counter(
    "workplace_bus_published_total",
    "Messages published to Pub/Sub",
    ["topic", "outcome"],
)
HANDLED = Counter(
    "workplace_bus_handled_total",
    "Pub/Sub deliveries handled, by outcome (ok, duplicate, error, undecodable)",
    ["subscription", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "workplace_bus_handler_seconds",
    "Time spent in event handlers",
    ["subscription"],
)

M = TypeVar("M", bound=ProtoMessage)


class EventBusError(RuntimeError):
    """The bus was misused or the broker refused an operation."""


def done_key(subscription: str, message_id: str) -> str:
    return f"bus:done:{subscription}:{message_id}"


def processing_key(subscription: str, message_id: str) -> str:
    return f"bus:processing:{subscription}:{message_id}"


def default_dead_letter_topic(topic: str) -> str:
    return f"{topic}.dlq"


def dead_letter_subscription_name(subscription: str) -> str:
    return f"{subscription}.dlq"


@dataclass(frozen=True, slots=True)
class Envelope:
    """Delivery metadata handed to a handler next to the decoded message."""

    message_id: str
    attributes: dict[str, str]
    # None when the subscription has no dead-letter policy (Pub/Sub only counts then).
    delivery_attempt: int | None
    publish_time: datetime
    ordering_key: str


Handler = Callable[[M, Envelope], Awaitable[None]]


# --- idempotency ledgers ---------------------------------------------------------------


class _ClaimResult(Enum):
    CLAIMED = "claimed"
    ALREADY_DONE = "already_done"
    BUSY = "busy"  # someone else kept the claim for longer than we wait


class _Ledger(Protocol):
    async def claim(self, subscription: str, message_id: str, token: str) -> _ClaimResult: ...

    async def complete(self, subscription: str, message_id: str, token: str) -> None: ...

    async def release(self, subscription: str, message_id: str, token: str) -> None: ...


# Only the claim's owner may delete it: a claim that expired and was taken by another
# consumer must survive our late release.
_RELEASE_SCRIPT = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_COMPLETE_SCRIPT = """
redis.call('set', KEYS[2], ARGV[2], 'EX', ARGV[3])
if redis.call('get', KEYS[1]) == ARGV[1] then redis.call('del', KEYS[1]) end
return 1
"""


class _RedisLedger:
    def __init__(self, client: aioredis.Redis, processing_ttl_s: int) -> None:
        self._redis = client
        self._ttl = processing_ttl_s
        self._release = client.register_script(_RELEASE_SCRIPT)
        self._complete = client.register_script(_COMPLETE_SCRIPT)

    async def claim(self, subscription: str, message_id: str, token: str) -> _ClaimResult:
        done = done_key(subscription, message_id)
        claim = processing_key(subscription, message_id)
        # A concurrent duplicate (another replica got the same message) waits for the
        # first to finish instead of nacking, because nacks count towards dead-lettering.
        deadline = time.monotonic() + self._ttl + 1
        while True:
            if await self._redis.exists(done):
                return _ClaimResult.ALREADY_DONE
            if await self._redis.set(claim, token, nx=True, ex=self._ttl):
                return _ClaimResult.CLAIMED
            if time.monotonic() > deadline:
                return _ClaimResult.BUSY
            await asyncio.sleep(_CLAIM_POLL_S)

    async def complete(self, subscription: str, message_id: str, token: str) -> None:
        await self._complete(
            keys=[processing_key(subscription, message_id), done_key(subscription, message_id)],
            args=[token, "1", DONE_TTL_S],
        )

    async def release(self, subscription: str, message_id: str, token: str) -> None:
        await self._release(keys=[processing_key(subscription, message_id)], args=[token])


class _LocalLedger:
    """In-process fallback; see the module docstring for what it does not cover."""

    def __init__(self, processing_ttl_s: int, capacity: int = _LOCAL_DONE_CAPACITY) -> None:
        self._ttl = processing_ttl_s
        self._capacity = capacity
        self._done: collections.OrderedDict[tuple[str, str], None] = collections.OrderedDict()
        self._processing: dict[tuple[str, str], str] = {}

    async def claim(self, subscription: str, message_id: str, token: str) -> _ClaimResult:
        key = (subscription, message_id)
        deadline = time.monotonic() + self._ttl + 1
        while True:
            if key in self._done:
                self._done.move_to_end(key)
                return _ClaimResult.ALREADY_DONE
            if key not in self._processing:
                self._processing[key] = token
                return _ClaimResult.CLAIMED
            if time.monotonic() > deadline:
                return _ClaimResult.BUSY
            await asyncio.sleep(_CLAIM_POLL_S)

    async def complete(self, subscription: str, message_id: str, token: str) -> None:
        key = (subscription, message_id)
        self._done[key] = None
        self._done.move_to_end(key)
        while len(self._done) > self._capacity:
            self._done.popitem(last=False)
        if self._processing.get(key) == token:
            del self._processing[key]

    async def release(self, subscription: str, message_id: str, token: str) -> None:
        key = (subscription, message_id)
        if self._processing.get(key) == token:
            del self._processing[key]


# --- subscription ----------------------------------------------------------------------


class Subscription(Generic[M]):
    """A running streaming pull. ``close()`` drains in-flight handlers, then stops it."""

    def __init__(
        self,
        *,
        bus: EventBus,
        name: str,
        path: str,
        message_type: type[M],
        handler: Handler[M],
        loop: asyncio.AbstractEventLoop,
        drain_timeout_s: float,
    ) -> None:
        self._bus = bus
        self.name = name
        self._path = path
        self._message_type = message_type
        self._handler = handler
        self._loop = loop
        self._drain_timeout_s = drain_timeout_s
        self._closing = False
        self._closed = False
        self._lock = threading.Lock()
        self._in_flight: set[ConcurrentFuture[None]] = set()
        self._pull_future: pubsub_v1.subscriber.futures.StreamingPullFuture | None = None

    def _start(self, subscriber: pubsub_v1.SubscriberClient, max_messages: int) -> None:
        self._pull_future = subscriber.subscribe(
            self._path,
            callback=self._on_message,
            flow_control=FlowControl(max_messages=max_messages),
        )
        self._pull_future.add_done_callback(self._on_pull_done)

    @property
    def running(self) -> bool:
        return self._pull_future is not None and not self._pull_future.done()

    # Runs on a client thread.
    def _on_message(self, message: PubsubMessage) -> None:
        if self._closing:
            message.nack()
            return
        try:
            future = asyncio.run_coroutine_threadsafe(self._process(message), self._loop)
        except RuntimeError:  # the event loop is closed: let Pub/Sub redeliver elsewhere
            message.nack()
            return
        with self._lock:
            self._in_flight.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: ConcurrentFuture[None]) -> None:
        with self._lock:
            self._in_flight.discard(future)

    def _on_pull_done(self, future: ConcurrentFuture[bool]) -> None:
        if self._closing:
            return
        error = future.exception()
        if error is not None:
            _log.error(
                "streaming pull stopped",
                extra={"subscription": self.name, "error": repr(error)},
            )

    async def _process(self, message: PubsubMessage) -> None:
        attributes = dict(message.attributes)
        envelope = Envelope(
            message_id=message.message_id,
            attributes=attributes,
            delivery_attempt=message.delivery_attempt,
            publish_time=message.publish_time,
            ordering_key=message.ordering_key,
        )
        producer_context = trace.get_current_span(propagate.extract(attributes)).get_span_context()
        links = [Link(producer_context)] if producer_context.is_valid else []
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
                "messaging.gcp_pubsub.message.delivery_attempt": message.delivery_attempt or 0,
            },
        ) as span:
            try:
                outcome = await self._handle(message, envelope, span)
            # A bug here must not leave the message leased until the lease limit.
            except Exception as exc:  # noqa: BLE001
                _log.exception(
                    "bus delivery failed outside the handler",
                    extra={"subscription": self.name, "message_id": message.message_id},
                )
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, "delivery failed"))
                message.nack()
                outcome = "error"
            span.set_attribute("workplace.bus.outcome", outcome)
            HANDLED.labels(self.name, outcome).inc()

    async def _handle(self, message: PubsubMessage, envelope: Envelope, span: trace.Span) -> str:
        decoded = self._decode(message)
        if decoded is None:
            span.set_status(Status(StatusCode.ERROR, "undecodable"))
            message.nack()  # counts towards max_delivery_attempts, then dead-letter topic
            return "undecodable"

        ledger = self._bus._ledger
        token = f"{self._bus.service_name}:{uuid.uuid4().hex}"
        claim = await ledger.claim(self.name, message.message_id, token)
        if claim is _ClaimResult.ALREADY_DONE:
            message.ack()
            return "duplicate"
        if claim is _ClaimResult.BUSY:
            _log.warning(
                "message still claimed by another consumer; nacking",
                extra={"subscription": self.name, "message_id": message.message_id},
            )
            message.nack()
            return "error"

        started = time.perf_counter()
        try:
            await self._handler(decoded, envelope)
        except Exception as exc:  # noqa: BLE001 - any handler failure means redelivery
            HANDLER_SECONDS.labels(self.name).observe(time.perf_counter() - started)
            _log.warning(
                "event handler failed; nacking for redelivery",
                exc_info=True,
                extra={
                    "subscription": self.name,
                    "message_id": message.message_id,
                    "delivery_attempt": message.delivery_attempt,
                },
            )
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            await ledger.release(self.name, message.message_id, token)
            message.nack()
            return "error"
        HANDLER_SECONDS.labels(self.name).observe(time.perf_counter() - started)
        # Done marker before the ack: if the ack is lost, the redelivery is skipped.
        try:
            await ledger.complete(self.name, message.message_id, token)
        except Exception:  # noqa: BLE001 - the work is done; a nack would redo it
            _log.warning(
                "could not record the message as done; acking anyway",
                exc_info=True,
                extra={"subscription": self.name, "message_id": message.message_id},
            )
        message.ack()
        return "ok"

    def _decode(self, message: PubsubMessage) -> M | None:
        expected = self._message_type.DESCRIPTOR.full_name
        # Protobuf parsing is lenient (foreign bytes often parse as unknown fields), so the
        # declared type is checked too when the producer set it.
        declared = message.attributes.get("event_type")
        if declared is not None and declared != expected:
            _log.error(
                "event type mismatch; nacking towards the dead-letter topic",
                extra={
                    "subscription": self.name,
                    "message_id": message.message_id,
                    "event_type": declared,
                    "expected": expected,
                },
            )
            return None
        try:
            return self._message_type.FromString(message.data)
        except DecodeError as exc:
            _log.error(
                "undecodable payload; nacking towards the dead-letter topic",
                extra={
                    "subscription": self.name,
                    "message_id": message.message_id,
                    "expected": expected,
                    "error": str(exc),
                },
            )
            return None

    async def _half_close_for_emulator(self) -> None:
        """End the stream gracefully before cancelling it (emulator only).

        The emulator (0.8.20) crashes while handling a cancelled stream (RST_STREAM) and
        keeps the dead stream registered for ~60 s: it goes on routing ordering keys to
        it, and sync pull on the subscription fails (OrderedMessageBacklog NPE). A
        half-close lets it unregister the stream. The client library has no public way to
        half-close, hence the private attributes, looked up defensively.
        """
        assert self._pull_future is not None
        manager = getattr(self._pull_future, "_StreamingPullFuture__manager", None)
        rpc = getattr(manager, "_rpc", None)
        request_queue = getattr(rpc, "_request_queue", None)
        if request_queue is None:
            _log.debug("cannot half-close the streaming pull; plain cancel")
            return
        request_queue.put(None)  # the request generator ends -> half-close
        await asyncio.to_thread(concurrent.futures.wait, [self._pull_future], _EMULATOR_HALF_CLOSE_WAIT_S)

    async def close(self) -> None:
        """Stop taking messages, let in-flight handlers finish (bounded), stop the pull.

        Handlers finish before the stream stops so their acks are still sent; messages
        the client held but had not dispatched are nacked by the client.
        """
        if self._closed:
            return
        self._closed = True
        self._closing = True
        with self._lock:
            pending = [asyncio.wrap_future(f, loop=self._loop) for f in self._in_flight]
        if pending:
            _done, not_done = await asyncio.wait(pending, timeout=self._drain_timeout_s)
            if not_done:
                _log.warning(
                    "closing subscription with handlers still running",
                    extra={"subscription": self.name, "running": len(not_done)},
                )
        if self._pull_future is not None:
            if os.environ.get("PUBSUB_EMULATOR_HOST"):
                await self._half_close_for_emulator()
            self._pull_future.cancel()
            try:
                await asyncio.to_thread(self._pull_future.result, self._drain_timeout_s)
            except Exception as exc:  # noqa: BLE001 - already reported by _on_pull_done
                _log.debug("streaming pull ended with %r", exc)
        self._bus._forget_subscription(self)


# --- bus -------------------------------------------------------------------------------


class EventBus:
    """Publisher and subscriber for one service. Create one per process; ``close()`` it."""

    def __init__(
        self,
        project: str,
        *,
        redis: aioredis.Redis | None,
        service_name: str,
        processing_ttl_s: int = DEFAULT_PROCESSING_TTL_S,
        tracer_provider: TracerProvider | None = None,
        drain_timeout_s: float = 10.0,
    ) -> None:
        if not project:
            raise EventBusError("project must not be empty")
        if not service_name:
            raise EventBusError("service_name must not be empty")
        self.project = project
        self.service_name = service_name
        self._drain_timeout_s = drain_timeout_s
        self._publisher = pubsub_v1.PublisherClient(publisher_options=PublisherOptions(enable_message_ordering=True))
        self._subscriber = pubsub_v1.SubscriberClient()
        self._ledger: _Ledger = (
            _RedisLedger(redis, processing_ttl_s) if redis is not None else _LocalLedger(processing_ttl_s)
        )
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self._subscriptions: set[Subscription[ProtoMessage]] = set()
        self._backlog_lock = asyncio.Lock()
        self._closed = False

    # paths

    def topic_path(self, topic: str) -> str:
        return self._publisher.topic_path(self.project, topic)

    def subscription_path(self, subscription: str) -> str:
        return self._subscriber.subscription_path(self.project, subscription)

    # admin

    async def ensure_topic(self, topic: str) -> None:
        path = self.topic_path(topic)

        def create() -> None:
            try:
                self._publisher.create_topic(request={"name": path}, timeout=_ADMIN_TIMEOUT_S)
            except gexc.AlreadyExists:
                pass

        await asyncio.to_thread(create)

    async def ensure_subscription(
        self,
        topic: str,
        subscription: str,
        *,
        dead_letter_topic: str | None = None,
        max_delivery_attempts: int = 5,
        ack_deadline_s: int = 30,
        enable_message_ordering: bool = True,
    ) -> None:
        """Create topic, dead-letter topic, subscription and its ``.dlq`` subscription.

        An existing subscription is left as it is (its settings are not compared).
        """
        if not 5 <= max_delivery_attempts <= 100:
            raise EventBusError(
                f"max_delivery_attempts must be within 5..100 (Pub/Sub limit), got {max_delivery_attempts}"
            )
        if not 10 <= ack_deadline_s <= 600:
            raise EventBusError(f"ack_deadline_s must be within 10..600, got {ack_deadline_s}")
        dlq_topic = dead_letter_topic or default_dead_letter_topic(topic)
        await self.ensure_topic(topic)
        await self.ensure_topic(dlq_topic)

        main_request = {
            "name": self.subscription_path(subscription),
            "topic": self.topic_path(topic),
            "ack_deadline_seconds": ack_deadline_s,
            "enable_message_ordering": enable_message_ordering,
            "dead_letter_policy": {
                "dead_letter_topic": self.topic_path(dlq_topic),
                "max_delivery_attempts": max_delivery_attempts,
            },
        }
        dlq_request = {
            "name": self.subscription_path(dead_letter_subscription_name(subscription)),
            "topic": self.topic_path(dlq_topic),
            "ack_deadline_seconds": ack_deadline_s,
        }

        def create() -> None:
            for request in (main_request, dlq_request):
                try:
                    self._subscriber.create_subscription(request=request, timeout=_ADMIN_TIMEOUT_S)
                except gexc.AlreadyExists:
                    pass

        await asyncio.to_thread(create)

    # publish

    async def publish(
        self,
        topic: str,
        message: ProtoMessage,
        *,
        ordering_key: str,
        attributes: dict[str, str] | None = None,
    ) -> str:
        """Publish one protobuf message; returns the Pub/Sub message id."""
        if self._closed:
            raise EventBusError("event bus is closed")
        path = self.topic_path(topic)
        event_type = message.DESCRIPTOR.full_name
        attrs = dict(attributes or {})
        clashing = _PUBLISH_KEYWORDS.intersection(attrs)
        if clashing:
            # PublisherClient.publish takes attributes as **kwargs next to these.
            raise EventBusError(f"attribute names reserved by the client: {sorted(clashing)}")
        # Ours win over the caller's so consumers can trust them.
        attrs.update(
            event_type=event_type,
            content_type=CONTENT_TYPE_PROTOBUF,
            producer=self.service_name,
        )
        data = message.SerializeToString()
        with self._tracer.start_as_current_span(
            f"{topic} publish",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "gcp_pubsub",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
                "messaging.gcp_pubsub.message.ordering_key": ordering_key,
                "workplace.bus.event_type": event_type,
            },
        ) as span:
            propagate.inject(attrs)
            try:
                future = self._publisher.publish(path, data, ordering_key=ordering_key, **attrs)
                message_id: str = await asyncio.wrap_future(future)
            except Exception as exc:
                PUBLISHED.labels(topic, "error").inc()
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                if ordering_key:
                    # A failed ordered publish pauses the key; later publishes would fail.
                    self._publisher.resume_publish(path, ordering_key)
                raise
            span.set_attribute("messaging.message.id", message_id)
        PUBLISHED.labels(topic, "ok").inc()
        return message_id

    # subscribe

    async def subscribe(
        self,
        subscription: str,
        message_type: type[M],
        handler: Handler[M],
        *,
        max_messages: int = 32,
    ) -> Subscription[M]:
        """Start a streaming pull; ``handler`` runs on the calling event loop."""
        if self._closed:
            raise EventBusError("event bus is closed")
        if max_messages < 1:
            raise EventBusError(f"max_messages must be >= 1, got {max_messages}")
        sub = Subscription(
            bus=self,
            name=subscription,
            path=self.subscription_path(subscription),
            message_type=message_type,
            handler=handler,
            loop=asyncio.get_running_loop(),
            drain_timeout_s=self._drain_timeout_s,
        )
        sub._start(self._subscriber, max_messages)
        self._subscriptions.add(sub)  # type: ignore[arg-type]
        return sub

    def _forget_subscription(self, sub: Subscription[M]) -> None:
        self._subscriptions.discard(sub)  # type: ignore[arg-type]

    # backlog

    async def backlog(self, subscription: str) -> int:
        """Exact number of messages available on ``subscription``.

        Snapshot, pull everything with return_immediately and count, seek back to the
        snapshot, delete it. Pulled messages are acked while counting, because on an
        ordered subscription the next messages of a key are only handed out once the
        earlier ones are acked; the seek makes them all deliverable again (delivery
        attempts are not raised). If the seek fails, the snapshot is kept and the error
        names it, so the messages can be restored by seeking to it by hand.

        Meant for tests and the local KEDA simulation (the emulator has no metrics API):
        run it while no streaming subscriber is attached, because the seek also makes
        messages a subscriber holds at that moment deliverable again.
        """
        sub_path = self.subscription_path(subscription)
        snapshot_path = self._subscriber.snapshot_path(self.project, f"backlog-{uuid.uuid4().hex}")

        def pull_batch() -> list[str]:
            with warnings.catch_warnings():
                # Deprecated for production consumers; for counting it is the point.
                warnings.filterwarnings("ignore", message=".*return_immediately.*")
                response = self._subscriber.pull(
                    request={
                        "subscription": sub_path,
                        "max_messages": _PULL_BATCH,
                        "return_immediately": True,
                    },
                    timeout=_ADMIN_TIMEOUT_S,
                )
            return [received.ack_id for received in response.received_messages]

        def count() -> int:
            self._subscriber.create_snapshot(
                request={"name": snapshot_path, "subscription": sub_path},
                timeout=_ADMIN_TIMEOUT_S,
            )
            total = 0
            try:
                while ack_ids := pull_batch():
                    total += len(ack_ids)
                    self._subscriber.acknowledge(
                        request={"subscription": sub_path, "ack_ids": ack_ids},
                        timeout=_ADMIN_TIMEOUT_S,
                    )
            finally:
                try:
                    self._subscriber.seek(
                        request={"subscription": sub_path, "snapshot": snapshot_path},
                        timeout=_ADMIN_TIMEOUT_S,
                    )
                except Exception as exc:
                    raise EventBusError(
                        f"backlog count of {subscription} could not seek back; "
                        f"{total} messages were acked: restore them by seeking to {snapshot_path}"
                    ) from exc
            self._subscriber.delete_snapshot(request={"snapshot": snapshot_path}, timeout=_ADMIN_TIMEOUT_S)
            return total

        async with self._backlog_lock:
            return await asyncio.to_thread(count)

    # lifecycle

    async def close(self) -> None:
        """Close subscriptions (draining handlers), flush the publisher, close clients.

        The Redis client belongs to the caller and stays open.
        """
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscriptions):
            await sub.close()
        await asyncio.to_thread(self._publisher.stop)
        await asyncio.to_thread(self._subscriber.close)
