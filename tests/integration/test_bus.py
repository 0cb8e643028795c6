"""EventBus against the real Pub/Sub emulator: provisioning, publish, pull, retries with
backoff, the outage circuit, dead letters and their replay, broker state loss.

Every test declares its own topology (a topic and a subscription with a unique suffix), so
runs and tests never share Pub/Sub state.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import httpx
import pytest
from google.api_core import exceptions as gexc
from google.pubsub_v1 import types as pubsub_types
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY
from workplace.events.v1.events_pb2 import ConversationTurn, FeedbackReady
from workplace_kit.bus import Envelope, EventBus, EventBusError, Handled, Outgoing, PermanentFailure
from workplace_kit.topology import BROKER_EPOCH_TOPIC, SubscriptionSpec, TopicSpec, Topology

EVENT_TYPE = "workplace.events.v1.ConversationTurn"
PROJECT = "workplace-local"
TOPIC = "bus-test.turns"
SUB = "bus-test.turns-sub"


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


def topology(**sub_options) -> Topology:
    return Topology(
        topics=(TopicSpec(TOPIC, ConversationTurn), TopicSpec("bus-test.ready", FeedbackReady)),
        subscriptions=(SubscriptionSpec(SUB, TOPIC, consumer="test", **sub_options),),
        suffix=f".{uuid.uuid4().hex[:10]}",
    )


def handled(bus: EventBus, outcome: str) -> float:
    labels = {"subscription": bus.topology.name(SUB), "outcome": outcome}
    return REGISTRY.get_sample_value("workplace_bus_handled_total", labels) or 0.0


def dead_lettered(bus: EventBus, reason: str) -> float:
    labels = {"subscription": bus.topology.name(SUB), "reason": reason}
    return REGISTRY.get_sample_value("workplace_bus_dead_lettered_total", labels) or 0.0


async def wait_until(condition: Callable[[], bool], within_s: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within_s}s waiting for {what or condition}")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module", autouse=True)
def emulator() -> None:
    host = __import__("os").environ.get("PUBSUB_EMULATOR_HOST", "")
    try:
        response = httpx.get(f"http://{host}/", timeout=3)
    except httpx.HTTPError as exc:
        pytest.fail(f"Pub/Sub emulator does not answer at {host!r}: {exc!r}")
    assert response.status_code == 200


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def make_bus(spans=None, **sub_options) -> EventBus:
    return EventBus(
        PROJECT,
        service_name="bus-test",
        topology=topology(**sub_options),
        tracer_provider=spans[0] if spans else None,
        pull_timeout_s=2,
        drain_timeout_s=2,
    )


@pytest.fixture
async def bus(spans) -> AsyncIterator[EventBus]:
    event_bus = await make_bus(spans, min_backoff_s=1.0, max_backoff_s=2.0, max_delivery_attempts=5)
    await event_bus.provision()
    yield event_bus
    await event_bus.close()


async def test_provision_is_idempotent_and_wires_dead_letters_and_retries(bus: EventBus) -> None:
    assert await bus.provision() == []  # the fixture created everything already
    admin = bus._subscriber
    sub = await admin.get_subscription(request={"subscription": bus.subscription_path(SUB)})
    assert sub.topic == bus.topic_path(TOPIC)
    assert sub.enable_message_ordering is False
    assert sub.ack_deadline_seconds == 10
    assert sub.dead_letter_policy.dead_letter_topic == bus.topic_path(f"{SUB}.dlq")
    assert sub.dead_letter_policy.max_delivery_attempts == 5
    assert sub.retry_policy.minimum_backoff == timedelta(seconds=1)
    assert sub.retry_policy.maximum_backoff == timedelta(seconds=2)
    dlq = await admin.get_subscription(request={"subscription": bus.subscription_path(f"{SUB}.dlq")})
    assert dlq.topic == bus.topic_path(f"{SUB}.dlq")
    assert dlq.message_retention_duration == timedelta(days=7)
    # Neither expires when idle (Pub/Sub's default deletes a subscription after 31 idle days).
    for kept in (sub, dlq):
        assert "expiration_policy" in kept and not kept.expiration_policy.ttl


async def test_round_trip_decodes_message_and_envelope(bus: EventBus) -> None:
    sent = turn(3, session="s-1", text="お疲れさまです")
    message_id = await bus.publish(sent, ordering_key="s-1", attributes={"tenant": "acme"})
    received: list[tuple[ConversationTurn, Envelope]] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        received.append((message, envelope))

    subscription = await bus.subscribe(SUB, ConversationTurn, handler)
    await wait_until(lambda: handled(bus, "ok") == 1, what="the ok metric")
    await subscription.close()

    (message, envelope), *_ = received
    assert len(received) == 1 and message == sent
    assert envelope.message_id == message_id
    assert envelope.event_id == sent.event_id
    assert envelope.ordering_key == "s-1"
    assert envelope.delivery_attempt == 1
    assert isinstance(envelope.publish_time, datetime)
    assert envelope.attributes["event_type"] == EVENT_TYPE
    assert envelope.attributes["event_id"] == sent.event_id
    assert envelope.attributes["producer"] == "bus-test"
    assert envelope.attributes["tenant"] == "acme"
    assert await bus.backlog(SUB) == 0


async def test_subscribe_checks_the_declared_event_type(bus: EventBus) -> None:
    async def handler(message, envelope) -> None: ...

    with pytest.raises(EventBusError, match="ConversationTurn"):
        await bus.subscribe(SUB, FeedbackReady, handler)
    with pytest.raises(LookupError, match="undeclared subscription"):
        await bus.subscribe("nope", ConversationTurn, handler)


async def test_publish_to_a_topic_the_broker_lost_declares_it_with_its_subscription() -> None:
    fresh = await make_bus()  # nothing provisioned on the broker
    try:
        await fresh.publish(turn(1), ordering_key="k")
        # The topic came back together with its subscription, which kept the event.
        assert await fresh.backlog(SUB) == 1
    finally:
        await fresh.close()


async def test_batch_publishes_in_order_in_the_writers_trace(bus: EventBus, spans) -> None:
    provider, exporter = spans
    with provider.get_tracer("test").start_as_current_span("chat request") as request_span:
        writer = request_span.get_span_context()
        carrier: dict[str, str] = {}
        from opentelemetry import propagate

        propagate.inject(carrier)
    events = [turn(i) for i in range(3)]
    ids = await bus.publish_batch([Outgoing(e, "s", carrier) for e in events])
    assert len(set(ids)) == 3
    seen: list[tuple[int, str]] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        seen.append((message.turn_index, envelope.attributes["traceparent"]))

    subscription = await bus.subscribe(SUB, ConversationTurn, handler)
    await wait_until(lambda: len(seen) == 3, what="three events")
    await subscription.close()
    assert sorted(i for i, _ in seen) == [0, 1, 2]
    assert all(int(tp.split("-")[1], 16) == writer.trace_id for _, tp in seen)
    producers = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.PRODUCER]
    assert len(producers) == 3 and all(p.context.trace_id == writer.trace_id for p in producers)
    consumers = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.CONSUMER]
    assert {link.context.span_id for c in consumers for link in c.links} == {p.context.span_id for p in producers}


async def test_failed_event_comes_back_after_a_backoff_and_is_handled_once(bus: EventBus) -> None:
    await bus.publish(turn(1, text="o-1"))
    attempts: list[tuple[int, float]] = []
    effects: list[str] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        attempts.append((envelope.delivery_attempt, time.monotonic()))
        if len(attempts) == 1:
            raise RuntimeError("transient failure")
        effects.append(message.learner_text)

    subscription = await bus.subscribe(SUB, ConversationTurn, handler)
    await wait_until(lambda: handled(bus, "ok") == 1, what="successful handling")
    await asyncio.sleep(0.5)
    await subscription.close()
    assert [a for a, _ in attempts] == [1, 2]
    # Retried after the backoff (min 1 s, jittered down at most 20 %; the deadline is whole seconds).
    assert attempts[1][1] - attempts[0][1] >= 0.8
    assert effects == ["o-1"] and handled(bus, "retry") == 1


async def test_an_outage_spends_the_attempts_of_one_message_not_of_the_backlog(bus: EventBus) -> None:
    for i in range(8):
        await bus.publish(turn(i))
    down = True
    calls: list[int] = []
    done: set[int] = set()

    async def handler(message: ConversationTurn, envelope: Envelope) -> Handled:
        calls.append(message.turn_index)
        if down:
            raise ConnectionRefusedError("database is down")
        done.add(message.turn_index)
        return Handled.OK

    subscription = await bus.subscribe(SUB, ConversationTurn, handler, max_messages=4)
    await asyncio.sleep(4.0)
    assert subscription.in_outage
    during = len(calls)
    # The first pull took up to 4 messages; after that the bus probes one at a time with a
    # growing pause (0.5 s, 1 s, 2 s…), so only a handful more attempts happen in 4 s.
    assert during <= 4 + 4, calls
    down = False
    await wait_until(lambda: done == set(range(8)), within_s=30, what="all events after the outage")
    await subscription.close()
    assert not subscription.in_outage


async def test_permanent_failure_and_undecodable_payload_are_dead_lettered_at_once(bus: EventBus) -> None:
    poison = turn(1, text="poison")
    await bus.publish(poison)
    # Bytes that are no ConversationTurn, declared as one.
    await bus._publish_raw(
        TOPIC, [pubsub_types.PubsubMessage(data=b"\xff\xff\xff", attributes={"event_type": EVENT_TYPE})]
    )
    calls: list[str] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        calls.append(message.event_id)
        raise PermanentFailure("this turn can never be analysed")

    subscription = await bus.subscribe(SUB, ConversationTurn, handler)
    await wait_until(lambda: handled(bus, "dead_lettered") == 1 and handled(bus, "undecodable") == 1)
    await subscription.close()
    assert calls == [poison.event_id]  # not retried
    assert dead_lettered(bus, "permanent") == 1 and dead_lettered(bus, "undecodable") == 1
    assert await bus.backlog(SUB) == 0
    assert await bus.dead_letters(SUB) == 2


async def test_exhausted_attempts_dead_letter_then_replay_delivers_again(bus: EventBus) -> None:
    event = turn(1, text="keeps failing")
    await bus.publish(event)
    healthy = False
    handled_ids: list[str] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        if not healthy:
            raise RuntimeError("bug, fixed later")
        handled_ids.append(envelope.event_id)

    subscription = await bus.subscribe(SUB, ConversationTurn, handler)
    # 5 attempts, 1-2 s apart, then Pub/Sub moves it to the dead-letter topic.
    await wait_until(lambda: dead_lettered(bus, "attempts_exhausted") == 1, within_s=30, what="5 attempts")
    # The emulator forwards it when it would deliver it a sixth time: keep pulling till then.
    await wait_until_async(lambda: bus.dead_letters(SUB), 1)
    await subscription.close()

    healthy = True
    assert await bus.replay_dead_letters(SUB) == 1
    assert await bus.dead_letters(SUB) == 0
    subscription = await bus.subscribe(SUB, ConversationTurn, handler)
    await wait_until(lambda: handled_ids == [event.event_id], within_s=5, what="the replayed event")
    await subscription.close()


async def test_closed_subscriptions_leave_no_pull_behind_to_swallow_the_next_event(bus: EventBus) -> None:
    """The emulator hands the next message to a pull that was cancelled (it never notices),
    where it waits out the ack deadline; close() therefore lets the long-poll end instead."""

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        received.append(message.event_id)

    received: list[str] = []
    for _ in range(3):
        await (await bus.subscribe(SUB, ConversationTurn, handler)).close()
    event = turn(9)
    await bus.publish(event)
    subscription = await bus.subscribe(SUB, ConversationTurn, handler)
    await wait_until(lambda: received == [event.event_id], within_s=4, what="the event, well before an ack deadline")
    await subscription.close()


async def wait_until_async(probe, expected, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while (value := await probe()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"expected {expected}, got {value}")
        await asyncio.sleep(0.2)


async def test_a_consumer_declares_its_subscription_again_when_the_broker_lost_it(bus: EventBus) -> None:
    received: list[str] = []

    async def handler(message: ConversationTurn, envelope: Envelope) -> None:
        received.append(message.event_id)

    subscription = await bus.subscribe(SUB, ConversationTurn, handler)
    # The broker forgets the subscription (as the emulator does on a restart).
    await bus._subscriber.delete_subscription(request={"subscription": bus.subscription_path(SUB)})
    await wait_until_async(lambda: subscription_exists(bus), True, within_s=20)
    event = turn(7)
    await bus.publish(event)
    await wait_until(lambda: received == [event.event_id], within_s=20, what="an event after the repair")
    await subscription.close()


async def subscription_exists(bus: EventBus) -> bool:
    try:
        await bus._subscriber.get_subscription(request={"subscription": bus.subscription_path(SUB)})
        return True
    except gexc.NotFound:
        return False


async def test_broker_state_loss_is_noticed_once_and_repaired(bus: EventBus) -> None:
    assert await bus.broker_state_lost() is True  # no sentinel yet: a broker this service never saw
    assert await bus.broker_state_lost() is False
    # Simulate the emulator losing its state: the topology and the sentinel are gone.
    await bus._subscriber.delete_subscription(request={"subscription": bus.subscription_path(SUB)})
    sentinel = bus.subscription_path(f"{BROKER_EPOCH_TOPIC}.bus-test")
    await bus._subscriber.delete_subscription(request={"subscription": sentinel})
    assert await bus.broker_state_lost() is True
    assert await subscription_exists(bus)
    assert await bus.broker_state_lost() is False
