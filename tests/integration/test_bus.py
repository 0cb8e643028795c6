"""EventBus against the real Pub/Sub emulator (127.0.0.1:8085) and the real Redis.

Both must be running: the tests fail (not skip) when either does not answer.
Every test uses its own topic and subscription names (uuid suffix) so runs don't clash.
"""

from __future__ import annotations

import asyncio
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime

import httpx
import pytest
import redis.asyncio as aioredis
from google.cloud import pubsub_v1
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from redis.exceptions import RedisError
from workplace.events.v1.events_pb2 import ConversationTurn
from workplace_kit.bus import (
    Envelope,
    EventBus,
    EventBusError,
    dead_letter_subscription_name,
    default_dead_letter_topic,
    done_key,
    processing_key,
)

EVENT_TYPE = "workplace.events.v1.ConversationTurn"
EMULATOR_HOST = "127.0.0.1:8085"
PROJECT = "workplace-local"
REDIS_URL = "redis://127.0.0.1:6379/0"
RUN_ID = uuid.uuid4().hex[:10]


def turn(index: int = 0, *, session: str = "s-test", text: str = "") -> ConversationTurn:
    message = ConversationTurn(
        event_id=uuid.uuid4().hex,
        session_id=session,
        turn_index=index,
        learner_text=text,
        reply_text="承知しました。",
        language="ja",
    )
    message.occurred_at.GetCurrentTime()
    return message


def fresh_names(label: str) -> tuple[str, str]:
    suffix = f"{RUN_ID}-{uuid.uuid4().hex[:6]}"
    return f"test-{label}-{suffix}", f"test-{label}-{suffix}-sub"


def handled(subscription: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("workplace_bus_handled_total", {"subscription": subscription, "outcome": outcome})
    return value or 0.0


async def wait_until(condition: Callable[[], bool], within_s: float = 10.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what or condition}")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def emulator() -> Iterator[None]:
    try:
        response = httpx.get(f"http://{EMULATOR_HOST}/", timeout=3)
    except httpx.HTTPError as exc:
        pytest.fail(f"Pub/Sub emulator does not answer at {EMULATOR_HOST}: {exc!r}")
    assert response.status_code == 200, f"unexpected emulator answer: {response.status_code}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PUBSUB_EMULATOR_HOST", EMULATOR_HOST)
        yield


@pytest.fixture(scope="module")
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL)
    try:
        await asyncio.wait_for(client.ping(), timeout=3)
    except (RedisError, OSError, TimeoutError) as exc:
        await client.aclose()
        pytest.fail(f"Redis does not answer at {REDIS_URL}: {exc!r}")
    yield client
    keys = [k async for k in client.scan_iter(match=f"bus:*:test-*{RUN_ID}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
async def bus(
    emulator: None, redis_client: aioredis.Redis, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> AsyncIterator[EventBus]:
    event_bus = EventBus(PROJECT, redis=redis_client, service_name="bus-test", tracer_provider=spans[0])
    yield event_bus
    await event_bus.close()


@pytest.fixture
def admin(emulator: None) -> Iterator[pubsub_v1.SubscriberClient]:
    client = pubsub_v1.SubscriberClient()
    yield client
    client.close()


def pull_now(admin: pubsub_v1.SubscriberClient, subscription_path: str) -> list[pubsub_v1.types.ReceivedMessage]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        response = admin.pull(
            request={
                "subscription": subscription_path,
                "max_messages": 100,
                "return_immediately": True,
            }
        )
    return list(response.received_messages)


async def test_ensure_is_idempotent_and_wires_dead_letters(bus: EventBus, admin: pubsub_v1.SubscriberClient) -> None:
    topic, sub = fresh_names("ensure")
    for _ in range(2):
        await bus.ensure_topic(topic)
        await bus.ensure_subscription(topic, sub, max_delivery_attempts=7, ack_deadline_s=20)

    created = await asyncio.to_thread(admin.get_subscription, request={"subscription": bus.subscription_path(sub)})
    assert created.topic == bus.topic_path(topic)
    assert created.enable_message_ordering is True
    assert created.ack_deadline_seconds == 20
    assert created.dead_letter_policy.dead_letter_topic == bus.topic_path(f"{topic}.dlq")
    assert created.dead_letter_policy.max_delivery_attempts == 7

    dlq = await asyncio.to_thread(
        admin.get_subscription,
        request={"subscription": bus.subscription_path(dead_letter_subscription_name(sub))},
    )
    assert dlq.topic == bus.topic_path(default_dead_letter_topic(topic))
    assert not dlq.dead_letter_policy.dead_letter_topic

    with pytest.raises(EventBusError, match="max_delivery_attempts"):
        await bus.ensure_subscription(topic, sub, max_delivery_attempts=4)


async def test_round_trip_decodes_message_and_envelope(bus: EventBus) -> None:
    topic, sub = fresh_names("roundtrip")
    await bus.ensure_subscription(topic, sub)
    sent = turn(3, session="s-1", text="お疲れさまです")
    message_id = await bus.publish(topic, sent, ordering_key="s-1", attributes={"tenant": "acme"})

    received: list[tuple[ConversationTurn, Envelope]] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        received.append((message, envelope))

    subscription = await bus.subscribe(sub, ConversationTurn, handler)
    await wait_until(lambda: len(received) == 1, what="the message")
    await wait_until(lambda: handled(sub, "ok") == 1, what="the ok metric")
    await subscription.close()

    message, envelope = received[0]
    assert message == sent
    assert message.learner_text == "お疲れさまです"
    assert envelope.message_id == message_id
    assert envelope.ordering_key == "s-1"
    assert envelope.delivery_attempt == 1
    assert isinstance(envelope.publish_time, datetime)
    assert envelope.attributes["event_type"] == EVENT_TYPE
    assert envelope.attributes["content_type"] == "application/protobuf"
    assert envelope.attributes["producer"] == "bus-test"
    assert envelope.attributes["tenant"] == "acme"
    assert await bus.backlog(sub) == 0
    published = REGISTRY.get_sample_value("workplace_bus_published_total", {"topic": topic, "outcome": "ok"})
    assert published == 1


async def test_publish_rejects_attribute_names_the_client_reserves(bus: EventBus) -> None:
    topic, _ = fresh_names("reserved")
    with pytest.raises(EventBusError, match="timeout"):
        await bus.publish(topic, turn(), ordering_key="k", attributes={"timeout": "1"})


async def test_failed_ordered_publish_does_not_block_the_key(bus: EventBus) -> None:
    topic, sub = fresh_names("resume")
    # The topic does not exist yet: the publish fails and pauses the ordering key.
    with pytest.raises(Exception, match="(?i)not.?found"):
        await bus.publish(topic, turn(1), ordering_key="s-resume")
    failed = REGISTRY.get_sample_value("workplace_bus_published_total", {"topic": topic, "outcome": "error"})
    assert failed == 1
    await bus.ensure_subscription(topic, sub)
    message_id = await bus.publish(topic, turn(2), ordering_key="s-resume")
    assert message_id
    assert await bus.backlog(sub) == 1


async def test_messages_with_one_ordering_key_arrive_in_order(bus: EventBus) -> None:
    topic, sub = fresh_names("ordering")
    await bus.ensure_subscription(topic, sub)
    # Interleave two keys; only the order within a key is guaranteed.
    await asyncio.gather(
        *(
            bus.publish(topic, turn(seq, session=key), ordering_key=key)
            for seq in range(10)
            for key in ("session-a", "session-b")
        )
    )

    seen: dict[str, list[int]] = {"session-a": [], "session-b": []}

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        # Slower for early messages: if a message were acked (releasing the key's next
        # one) before its handler finished, later messages would overtake it.
        await asyncio.sleep(0.02 * (10 - message.turn_index) / 10)
        seen[envelope.ordering_key].append(message.turn_index)

    subscription = await bus.subscribe(sub, ConversationTurn, handler)
    await wait_until(lambda: sum(map(len, seen.values())) == 20, what="20 messages")
    await subscription.close()
    assert seen["session-a"] == list(range(10))
    assert seen["session-b"] == list(range(10))


async def test_trace_context_travels_in_attributes_and_links_consumer_span(
    bus: EventBus, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    topic, sub = fresh_names("trace")
    await bus.ensure_subscription(topic, sub)
    with provider.get_tracer("test").start_as_current_span("chat request") as request_span:
        request_trace_id = request_span.get_span_context().trace_id
        await bus.publish(topic, turn(1), ordering_key="s-trace")

    envelopes: list[Envelope] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        envelopes.append(envelope)

    subscription = await bus.subscribe(sub, ConversationTurn, handler)
    await wait_until(
        lambda: any(s.kind == trace.SpanKind.CONSUMER for s in exporter.get_finished_spans()),
        what="the consumer span",
    )
    await subscription.close()

    attributes = envelopes[0].attributes
    assert attributes["event_type"] == EVENT_TYPE
    version, trace_id_hex, parent_id_hex, _flags = attributes["traceparent"].split("-")
    assert version == "00"
    assert int(trace_id_hex, 16) == request_trace_id

    finished = exporter.get_finished_spans()
    (producer,) = [s for s in finished if s.kind == trace.SpanKind.PRODUCER]
    (consumer,) = [s for s in finished if s.kind == trace.SpanKind.CONSUMER]
    assert producer.context.trace_id == request_trace_id
    assert producer.parent is not None and producer.parent.span_id == request_span.get_span_context().span_id
    assert int(parent_id_hex, 16) == producer.context.span_id
    assert [link.context.span_id for link in consumer.links] == [producer.context.span_id]
    assert consumer.attributes["workplace.bus.outcome"] == "ok"


async def test_failed_attempt_is_redelivered_and_side_effect_happens_once(
    bus: EventBus, redis_client: aioredis.Redis
) -> None:
    topic, sub = fresh_names("retry")
    await bus.ensure_subscription(topic, sub)
    message_id = await bus.publish(topic, turn(1, text="o-1"), ordering_key="s-retry")

    attempts: list[int | None] = []
    side_effects: list[str] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        attempts.append(envelope.delivery_attempt)
        if len(attempts) == 1:
            raise RuntimeError("transient failure")
        side_effects.append(message.learner_text)

    subscription = await bus.subscribe(sub, ConversationTurn, handler)
    await wait_until(lambda: handled(sub, "ok") == 1, what="successful handling")
    await asyncio.sleep(0.3)  # room for a wrong extra delivery to show up
    await subscription.close()

    assert attempts == [1, 2]
    assert side_effects == ["o-1"]
    assert handled(sub, "error") == 1
    assert await redis_client.exists(done_key(sub, message_id)) == 1
    assert await redis_client.ttl(done_key(sub, message_id)) > 6 * 24 * 3600
    assert await redis_client.exists(processing_key(sub, message_id)) == 0
    assert await bus.backlog(sub) == 0


async def test_message_already_marked_done_is_acked_without_handler(
    bus: EventBus, redis_client: aioredis.Redis
) -> None:
    topic, sub = fresh_names("done")
    await bus.ensure_subscription(topic, sub)
    first_id = await bus.publish(topic, turn(1), ordering_key="s-done")
    second_id = await bus.publish(topic, turn(2), ordering_key="s-done")
    await redis_client.set(done_key(sub, first_id), "1", ex=60)

    handled_ids: list[str] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        handled_ids.append(envelope.message_id)

    subscription = await bus.subscribe(sub, ConversationTurn, handler)
    # Same ordering key: the second is only delivered after the first was acked.
    await wait_until(lambda: handled_ids == [second_id], what="the second message")
    await subscription.close()
    assert handled(sub, "duplicate") == 1
    assert await bus.backlog(sub) == 0


async def test_same_message_id_redelivered_to_another_replica_is_skipped(
    bus: EventBus,
    redis_client: aioredis.Redis,
    admin: pubsub_v1.SubscriberClient,
) -> None:
    topic, sub = fresh_names("replica")
    await bus.ensure_subscription(topic, sub)
    message_id = await bus.publish(topic, turn(1), ordering_key="s-rep")
    snapshot = admin.snapshot_path(PROJECT, f"{sub}-before")
    await asyncio.to_thread(
        admin.create_snapshot,
        request={"name": snapshot, "subscription": bus.subscription_path(sub)},
    )

    calls: list[str] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        calls.append(envelope.message_id)

    first = await bus.subscribe(sub, ConversationTurn, handler)
    await wait_until(lambda: handled(sub, "ok") == 1, what="first handling")
    await first.close()

    # Seeking back makes Pub/Sub deliver the already acked message again, same id.
    await asyncio.to_thread(admin.seek, request={"subscription": bus.subscription_path(sub), "snapshot": snapshot})
    await asyncio.to_thread(admin.delete_snapshot, request={"snapshot": snapshot})
    assert await bus.backlog(sub) == 1

    other_replica = EventBus(PROJECT, redis=redis_client, service_name="bus-test-2")
    try:
        second = await other_replica.subscribe(sub, ConversationTurn, handler)
        await wait_until(lambda: handled(sub, "duplicate") == 1, what="duplicate skip")
        await second.close()
    finally:
        await other_replica.close()
    assert calls == [message_id]
    assert await bus.backlog(sub) == 0


async def test_without_redis_done_ids_are_remembered_in_process_only(
    emulator: None, admin: pubsub_v1.SubscriberClient
) -> None:
    topic, sub = fresh_names("local")
    local_bus = EventBus(PROJECT, redis=None, service_name="bus-test-local")
    other_process = EventBus(PROJECT, redis=None, service_name="bus-test-local-2")
    calls: list[str] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        calls.append(f"{message.learner_text}:{envelope.message_id}")

    async def consume_once(event_bus: EventBus, outcome: str, expected: float) -> None:
        running = await event_bus.subscribe(sub, ConversationTurn, handler)
        await wait_until(lambda: handled(sub, outcome) == expected, what=outcome)
        await running.close()

    async def rewind() -> None:
        await asyncio.to_thread(
            admin.seek, request={"subscription": local_bus.subscription_path(sub), "snapshot": snapshot}
        )

    try:
        await local_bus.ensure_subscription(topic, sub)
        message_id = await local_bus.publish(topic, turn(1, text="x"), ordering_key="k")
        snapshot = admin.snapshot_path(PROJECT, f"{sub}-before")
        await asyncio.to_thread(
            admin.create_snapshot,
            request={"name": snapshot, "subscription": local_bus.subscription_path(sub)},
        )
        await consume_once(local_bus, "ok", 1)
        await rewind()
        await consume_once(local_bus, "duplicate", 1)  # same process: skipped
        await rewind()
        # The documented trade-off: another process has no record and handles it again.
        await consume_once(other_process, "ok", 2)
        await asyncio.to_thread(admin.delete_snapshot, request={"snapshot": snapshot})
    finally:
        await local_bus.close()
        await other_process.close()
    assert calls == [f"x:{message_id}", f"x:{message_id}"]


async def test_always_failing_handler_sends_message_to_dead_letter_subscription(
    bus: EventBus, redis_client: aioredis.Redis, admin: pubsub_v1.SubscriberClient
) -> None:
    topic, sub = fresh_names("dlq")
    # Unordered: the emulator (0.8.20) never dead-letters on ordered subscriptions.
    await bus.ensure_subscription(topic, sub, max_delivery_attempts=5, enable_message_ordering=False)
    sent = turn(1, text="poison")
    message_id = await bus.publish(topic, sent, ordering_key="s-dlq")

    attempts: list[int | None] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        attempts.append(envelope.delivery_attempt)
        raise ValueError("cannot handle this event")

    dlq_path = bus.subscription_path(dead_letter_subscription_name(sub))
    subscription = await bus.subscribe(sub, ConversationTurn, handler)
    dead: list[pubsub_v1.types.ReceivedMessage] = []

    async def poll_dead_letters() -> None:
        while not dead:
            dead.extend(await asyncio.to_thread(pull_now, admin, dlq_path))
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll_dead_letters(), timeout=15)
    await subscription.close()

    assert attempts == [1, 2, 3, 4, 5]
    assert len(dead) == 1
    assert ConversationTurn.FromString(dead[0].message.data) == sent
    assert dead[0].message.attributes["event_type"] == EVENT_TYPE
    assert handled(sub, "error") == 5
    assert await redis_client.exists(processing_key(sub, message_id)) == 0
    assert await redis_client.exists(done_key(sub, message_id)) == 0
    await asyncio.to_thread(admin.acknowledge, request={"subscription": dlq_path, "ack_ids": [dead[0].ack_id]})
    assert await bus.backlog(sub) == 0


async def test_undecodable_payload_never_reaches_handler_and_is_dead_lettered(
    bus: EventBus, admin: pubsub_v1.SubscriberClient
) -> None:
    topic, sub = fresh_names("garbage")
    # Unordered: the emulator (0.8.20) never dead-letters on ordered subscriptions.
    await bus.ensure_subscription(topic, sub, enable_message_ordering=False)
    raw_publisher = pubsub_v1.PublisherClient()
    # Truncated length-delimited field: not a valid protobuf encoding of anything.
    truncated = raw_publisher.publish(bus.topic_path(topic), b"\x0a\x05ab", event_type=EVENT_TYPE)
    # Valid bytes, but declared as another event type than the subscriber expects.
    mislabelled = raw_publisher.publish(
        bus.topic_path(topic), turn(1).SerializeToString(), event_type="workplace.events.v1.Other"
    )
    await asyncio.gather(asyncio.wrap_future(truncated), asyncio.wrap_future(mislabelled))
    await asyncio.to_thread(raw_publisher.stop)

    calls: list[ConversationTurn] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        calls.append(message)

    dlq_path = bus.subscription_path(dead_letter_subscription_name(sub))
    subscription = await bus.subscribe(sub, ConversationTurn, handler)
    dead: list[pubsub_v1.types.ReceivedMessage] = []

    async def poll_dead_letters() -> None:
        while len(dead) < 2:
            dead.extend(await asyncio.to_thread(pull_now, admin, dlq_path))
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll_dead_letters(), timeout=15)
    await subscription.close()
    assert calls == []
    assert sorted(m.message.attributes["event_type"] for m in dead) == [EVENT_TYPE, "workplace.events.v1.Other"]
    assert handled(sub, "undecodable") == 10


async def test_backlog_counts_unacked_messages_exactly_and_leaves_them(bus: EventBus) -> None:
    topic, sub = fresh_names("backlog")
    await bus.ensure_subscription(topic, sub)
    assert await bus.backlog(sub) == 0
    # More than one sync pull's worth (100) so counting has to page.
    total = 130
    await asyncio.gather(*(bus.publish(topic, turn(i), ordering_key=f"s-{i % 3}") for i in range(total)))
    assert await bus.backlog(sub) == total
    assert await bus.backlog(sub) == total  # counting did not consume anything

    attempts: list[int | None] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        attempts.append(envelope.delivery_attempt)

    subscription = await bus.subscribe(sub, ConversationTurn, handler, max_messages=64)
    await wait_until(lambda: handled(sub, "ok") == total, what="all messages")
    await subscription.close()
    # Counting must not have used up delivery attempts (it would push messages to the DLQ).
    assert set(attempts) == {1}
    assert len(attempts) == total
    assert await bus.backlog(sub) == 0
