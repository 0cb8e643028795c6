"""The transactional outbox and its relay against the real PostgreSQL, with the kit's own
migration. The relay publishes through a recording stand-in for EventBus (our own code,
faked inside a test of something else); the real bus is covered in test_bus.py and the
whole pipeline in tests/resilience.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest
from google.api_core import exceptions as gexc
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace import TracerProvider
from pydantic import SecretStr
from workplace.events.v1 import events_pb2
from workplace_kit import inbox, outbox
from workplace_kit.bus import Outgoing
from workplace_kit.config import ServiceSettings
from workplace_kit.crypto import new_local_key, open_cipher
from workplace_kit.db import apply_migrations, create_pool
from workplace_kit.topology import DEFAULT, Topology


class RecordingBus:
    """Stands in for EventBus: records what the relay publishes, fails topics on demand."""

    def __init__(self, topology: Topology = DEFAULT) -> None:
        self.topology = topology
        self.published: list[tuple[str, str]] = []  # (event type, event id)
        self.trace_ids: list[int] = []
        self.failing: dict[str, Exception] = {}  # event type -> error
        self.lost_state = False

    async def publish_batch(self, items: list[Outgoing]) -> list[str]:
        kind = items[0].message.DESCRIPTOR.name
        if kind in self.failing:
            raise self.failing[kind]
        for item in items:
            self.published.append((kind, item.message.event_id))
            context = propagate.extract(item.trace_carrier or {})
            self.trace_ids.append(trace.get_current_span(context).get_span_context().trace_id)
        return [str(len(self.published))] * len(items)

    async def broker_state_lost(self) -> bool:
        lost, self.lost_state = self.lost_state, False
        return lost


@pytest.fixture
async def pool():
    schema = f"outbox_test_{uuid.uuid4().hex[:8]}"
    url = os.environ["WP_DATABASE_URL"]
    with tempfile.TemporaryDirectory() as empty:  # a service with no migrations of its own
        applied = await apply_migrations(url, schema=schema, migrations_dir=Path(empty))
    assert applied == ["kit_0001_outbox_inbox", "kit_0002_data_keys", "kit_0003_outbox_namespace"]
    db = await create_pool(url, schema=schema)
    yield db
    await db.execute(f"DROP SCHEMA {schema} CASCADE")
    await db.close()


def turn(i: int) -> events_pb2.ConversationTurn:
    return events_pb2.ConversationTurn(event_id=f"t{i}", session_id="s1")


def ready(i: int) -> events_pb2.FeedbackReady:
    return events_pb2.FeedbackReady(event_id=f"r{i}", session_id="s1")


async def write(pool: asyncpg.Pool, *events) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for event in events:
            await outbox.enqueue(conn, event, ordering_key=event.session_id)


async def test_events_go_out_in_order_in_the_writers_trace_and_are_kept(pool):
    with TracerProvider().get_tracer(__name__).start_as_current_span("request") as span:
        writer_trace = span.get_span_context().trace_id
        await write(pool, *(turn(i) for i in range(3)))
    # A transaction that rolls back leaves no event behind.
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, turn(99), ordering_key="s1")
            raise RuntimeError("rollback")
    # An event type with no declared topic is refused when written, not when published.
    with pytest.raises(LookupError):
        async with pool.acquire() as conn:
            await outbox.enqueue(conn, _Undeclared(), ordering_key="")

    bus = RecordingBus()
    relay = outbox.OutboxRelay(pool, bus, service="test")
    assert await relay.publish_pending() == 3
    assert await relay.publish_pending() == 0
    assert bus.published == [("ConversationTurn", f"t{i}") for i in range(3)]
    assert bus.trace_ids == [writer_trace] * 3
    rows = await pool.fetch("SELECT topic, published_at, attempts FROM outbox ORDER BY id")
    assert [r["topic"] for r in rows] == ["conversation.turns"] * 3
    assert all(r["published_at"] is not None and r["attempts"] == 1 for r in rows)


async def test_sealed_payloads_are_opened_by_the_relay_of_the_same_service(pool):
    settings = ServiceSettings(service_name="test", encryption_keys=SecretStr(new_local_key("v1")))
    cipher = await open_cipher(pool, settings)
    secret = events_pb2.ConversationTurn(event_id="t-secret", session_id="s1", learner_text="秘密の話です")
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, secret, ordering_key="s1", cipher=cipher)
    stored = await pool.fetchrow("SELECT payload, sealed FROM outbox")
    assert stored["sealed"] and "秘密".encode() not in stored["payload"]

    # A relay without the service's cipher cannot publish it: set aside, not sent garbled.
    other = RecordingBus()
    assert await outbox.OutboxRelay(pool, other, service="test").publish_pending() == 1
    assert other.published == []
    assert "sealed" in await pool.fetchval("SELECT last_error FROM outbox WHERE dead_at IS NOT NULL")

    await pool.execute("UPDATE outbox SET dead_at = NULL, last_error = NULL")
    bus = RecordingBus()
    assert await outbox.OutboxRelay(pool, bus, service="test", cipher=cipher).publish_pending() == 1
    assert bus.published == [("ConversationTurn", "t-secret")]


async def test_each_relay_publishes_only_what_was_written_for_its_namespace(pool):
    # Two deployments on one database whose Pub/Sub names differ (the tests' services beside the
    # local platform): neither takes the other's events, not even when republishing.
    mine, theirs = DEFAULT.with_suffix(".mine"), DEFAULT
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, turn(1), ordering_key="s1", topology=mine)
        await outbox.enqueue(conn, turn(2), ordering_key="s1", topology=theirs)
        await outbox.enqueue(conn, turn(3), ordering_key="s1", topology=mine)
    their_bus, my_bus = RecordingBus(theirs), RecordingBus(mine)
    theirs_relay = outbox.OutboxRelay(pool, their_bus, service="test")
    mine_relay = outbox.OutboxRelay(pool, my_bus, service="test")
    assert await theirs_relay.publish_pending() == 1
    assert await mine_relay.publish_pending() == 2
    assert their_bus.published == [("ConversationTurn", "t2")]
    assert my_bus.published == [("ConversationTurn", "t1"), ("ConversationTurn", "t3")]
    my_bus.lost_state = True
    assert await mine_relay.republish_if_broker_lost_state() == 2
    assert await theirs_relay.publish_pending() == 0 and await mine_relay.publish_pending() == 2


class _Undeclared:
    """A message type no topic is declared for."""

    class DESCRIPTOR:  # noqa: N801 - mimics a protobuf message
        full_name = "workplace.events.v1.NotAnEvent"


async def test_a_failing_topic_backs_off_without_holding_up_the_others(pool):
    await write(pool, turn(0), ready(0), turn(1))
    bus = RecordingBus()
    bus.failing["ConversationTurn"] = gexc.ServiceUnavailable("broker down")
    relay = outbox.OutboxRelay(pool, bus, service="test")
    assert await relay.publish_pending() == 3
    assert bus.published == [("FeedbackReady", "r0")]
    waiting = await pool.fetch(
        "SELECT attempts, last_error, next_attempt_at > now() AS later, dead_at FROM outbox WHERE published_at IS NULL"
    )
    assert len(waiting) == 2
    assert all(r["later"] and "broker down" in r["last_error"] and r["dead_at"] is None for r in waiting)
    assert await relay.publish_pending() == 0  # not due yet

    # A probe while the broker is down takes the oldest waiting row despite its backoff.
    assert relay._broker_trouble
    assert await relay.publish_pending(probe=True) == 1
    assert [e for _, e in bus.published] == ["r0"]
    # Once a probe gets through, what waits goes at once instead of after its backoff.
    del bus.failing["ConversationTurn"]
    assert await relay.publish_pending(probe=True) == 1
    assert await relay.publish_pending() == 1
    assert not await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
    assert [e for _, e in bus.published] == ["r0", "t0", "t1"]


async def test_rows_that_can_never_be_published_are_set_aside_as_dead(pool):
    await write(pool, turn(0), ready(0))
    await pool.execute("UPDATE outbox SET type_name = 'workplace.events.v1.Gone' WHERE topic = 'feedback.ready'")
    bus = RecordingBus()
    bus.failing["ConversationTurn"] = gexc.InvalidArgument("message too large")
    relay = outbox.OutboxRelay(pool, bus, service="test", max_permanent_attempts=3)
    for _ in range(3):
        await relay.publish_pending()
        await pool.execute("UPDATE outbox SET next_attempt_at = now()")
    dead = await pool.fetch("SELECT topic, attempts FROM outbox WHERE dead_at IS NOT NULL ORDER BY id")
    assert [(r["topic"], r["attempts"]) for r in dead] == [("conversation.turns", 3), ("feedback.ready", 1)]
    await relay.housekeeping()
    assert outbox.OUTBOX_DEAD.labels("test")._value.get() == 2
    # A transient error never kills a row, however often it happens.
    await write(pool, turn(1))
    bus.failing["ConversationTurn"] = gexc.ServiceUnavailable("down")
    for _ in range(6):
        await relay.publish_pending()
        await pool.execute("UPDATE outbox SET next_attempt_at = now() WHERE dead_at IS NULL")
    row = await pool.fetchrow("SELECT attempts, dead_at FROM outbox WHERE dead_at IS NULL AND published_at IS NULL")
    assert row["attempts"] == 6 and row["dead_at"] is None


async def test_two_relays_never_take_the_same_row(pool):
    await write(pool, *(turn(i) for i in range(200)))
    bus = RecordingBus()
    relays = [outbox.OutboxRelay(pool, bus, service="test", batch=7) for _ in range(3)]

    async def drain(relay):
        while await relay.publish_pending():
            pass

    await asyncio.gather(*(drain(r) for r in relays))
    ids = [e for _, e in bus.published]
    assert sorted(ids) == sorted(f"t{i}" for i in range(200)) and len(ids) == len(set(ids))


async def test_a_claim_left_by_a_crashed_relay_expires_and_the_row_goes_out(pool):
    await write(pool, turn(0))
    # A relay took the row and died before publishing it.
    await pool.execute("UPDATE outbox SET claimed_until = now() - interval '1 second', attempts = 1")
    bus = RecordingBus()
    assert await outbox.OutboxRelay(pool, bus, service="test").publish_pending() == 1
    assert bus.published == [("ConversationTurn", "t0")]


async def test_when_the_broker_lost_its_state_retained_events_go_out_again(pool):
    await write(pool, turn(0), ready(0))
    bus = RecordingBus()
    relay = outbox.OutboxRelay(pool, bus, service="test")
    await relay.publish_pending()
    bus.lost_state = True
    assert await relay.republish_if_broker_lost_state() == 2
    assert await relay.republish_if_broker_lost_state() == 0
    await relay.publish_pending()
    assert sorted(e for _, e in bus.published) == ["r0", "r0", "t0", "t0"]
    # Older than the retention: purged, not published again.
    await pool.execute("UPDATE outbox SET published_at = now() - interval '2 hours'")
    await outbox.OutboxRelay(pool, bus, service="test", retention_s=3600).housekeeping()
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


async def test_inbox_records_an_event_once(pool):
    async with pool.acquire() as conn, conn.transaction():
        assert await inbox.record(conn, "feedback.turns", "e1") is True
        assert await inbox.record(conn, "feedback.turns", "e1") is False
        assert await inbox.record(conn, "other.consumer", "e1") is True
    assert await inbox.already_handled(pool, "feedback.turns", "e1")
    assert not await inbox.already_handled(pool, "feedback.turns", "e2")
    # A transaction that rolls back records nothing: the event is handled again later.
    with pytest.raises(RuntimeError):
        async with pool.acquire() as conn, conn.transaction():
            await inbox.record(conn, "feedback.turns", "e2")
            raise RuntimeError("the result could not be stored")
    assert not await inbox.already_handled(pool, "feedback.turns", "e2")
    with pytest.raises(ValueError):
        async with pool.acquire() as conn:
            await inbox.record(conn, "feedback.turns", "")


async def test_the_migrations_job_migrates_and_a_service_that_does_not_migrate_checks(tmp_path):
    """`python -m workplace_kit.db migrate` (the chart's migrations Job) applies a service's
    migrations and the kit's; a service started with migrate_on_start=false refuses a schema
    with migrations pending, and starts once the Job has run."""
    import subprocess
    import sys
    from contextlib import AsyncExitStack

    from workplace_kit.db import pending_migrations
    from workplace_kit.resources import open_resources

    schema = f"jobtest_{uuid.uuid4().hex[:8]}"
    url = os.environ["WP_DATABASE_URL"]
    folder = Path(__import__("chat_service").__file__).parent / "migrations"
    settings = ServiceSettings(service_name="chat", migrate_on_start=False, pubsub_name_suffix=f".{schema}")
    try:
        assert await pending_migrations(url, schema=schema, migrations_dir=folder)
        async with AsyncExitStack() as stack:
            with pytest.raises(RuntimeError, match="migrations job"):
                await open_resources(stack, settings, schema=schema, migrations_dir=folder)
        job = [sys.executable, "-m", "workplace_kit.db"]
        pending = await asyncio.to_thread(
            subprocess.run,
            [*job, "pending", "--schema", schema, "--package", "chat_service"],
            capture_output=True,
            text=True,
        )
        assert pending.returncode == 1 and "kit_0003_outbox_namespace" in pending.stdout
        done = await asyncio.to_thread(
            subprocess.run,
            [*job, "migrate", "--schema", schema, "--package", "chat_service"],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0 and f"{schema}: " in done.stdout, done.stderr
        assert await pending_migrations(url, schema=schema, migrations_dir=folder) == []
        async with AsyncExitStack() as stack:
            resources = await open_resources(stack, settings, schema=schema, migrations_dir=folder)
            assert await resources.pool.fetchval("SELECT count(*) FROM outbox") == 0
    finally:
        conn = await asyncpg.connect(url)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


class SlowBus(RecordingBus):
    """A broker that takes a while to answer, and says when a publish has started."""

    def __init__(self) -> None:
        super().__init__()
        self.publishing = asyncio.Event()

    async def publish_batch(self, items: list[Outgoing]) -> list[str]:
        self.publishing.set()
        await asyncio.sleep(0.5)
        return await super().publish_batch(items)


async def test_a_relay_that_is_stopped_mid_publish_finishes_the_batch_under_way(pool):
    """SIGTERM reaches the relay (its task is cancelled) while a batch is being published: the
    batch is published and marked, not left claimed for another relay to publish again."""
    await write(pool, *(turn(i) for i in range(3)))
    bus = SlowBus()
    relay = outbox.OutboxRelay(pool, bus, service="test", poll_interval_s=0.05)
    task = asyncio.create_task(relay.run())
    await asyncio.wait_for(bus.publishing.wait(), timeout=10)
    await write(pool, turn(3))  # written while stopping: left for the next relay
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bus.published == [("ConversationTurn", f"t{i}") for i in range(3)]
    rows = await pool.fetch("SELECT published_at IS NOT NULL AS done, claimed_until FROM outbox ORDER BY id")
    assert [r["done"] for r in rows] == [True, True, True, False]
    assert all(r["claimed_until"] is None for r in rows)


# --------------------------------------------------------------------------- the standalone relay

OBSERVER = "test.relay-turns-observer"


async def _get(url: str) -> httpx.Response | None:
    async with httpx.AsyncClient(timeout=2) as client:
        try:
            return await client.get(url)
        except httpx.HTTPError:
            return None


async def _until(condition, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return  # the assertions that follow say what is missing
        await asyncio.sleep(0.1)


async def test_a_standalone_relay_publishes_what_a_service_without_its_relay_wrote(tmp_path):
    """The chart's <service>-outbox-relay: the service runs with WP_OUTBOX_RELAY=false (its workers
    may be scaled to zero), so what its repository writes stays in the outbox; then
    `python -m workplace_kit.outbox relay --schema chat` publishes every event exactly once, on
    the real emulator, sealed payloads opened with the service's own keys; then stops on SIGTERM."""
    from chat_service.app import build as build_chat
    from chat_service.repository import Session
    from chat_service.settings import ChatSettings
    from support.services import free_port, running_service
    from workplace_kit.bus import EventBus
    from workplace_kit.topology import SUBSCRIPTIONS, SubscriptionSpec

    suffix = f".relay{uuid.uuid4().hex[:8]}"
    observed = Topology(
        subscriptions=SUBSCRIPTIONS + (SubscriptionSpec(OBSERVER, "conversation.turns", consumer="test"),),
        suffix=suffix,
    )
    observer = EventBus("workplace-local", service_name="test-observer", topology=observed)
    await observer.provision(topics=["conversation.turns"])
    received: list[str] = []

    async def on_turn(event: events_pb2.ConversationTurn, _envelope) -> None:
        received.append(event.event_id)

    subscription = await observer.subscribe(OBSERVER, events_pb2.ConversationTurn, on_turn)
    # Gemini configured but never called: no offline engine to load for a test of the outbox.
    settings = ChatSettings(
        pubsub_name_suffix=suffix, outbox_relay=False, ai_provider="gemini", gemini_api_keys=["unused"]
    )
    written: list[str] = []

    async def store_turns(repository, count: int) -> None:
        for _ in range(count):
            session = Session(uuid.uuid4(), "relay-test-learner", "colleague", "small-talk", "ja")
            event = events_pb2.ConversationTurn(
                event_id=uuid.uuid4().hex, session_id=str(session.session_id), learner_text="秘密の話です"
            )
            await repository.store_exchange(
                session,
                is_new=True,
                expected_index=0,
                user_turn_id=uuid.uuid4(),
                user_text="秘密の話です",
                reply_turn_id=uuid.uuid4(),
                reply_text="そうなんですね。",
                engine_id="test",
                event=event,
            )
            written.append(event.event_id)

    relay_process = None
    try:
        async with running_service(build_chat, settings) as chat:
            service = chat.app.state.service
            pool = service.repository.pool
            await store_turns(service.repository, 3)
            service.events_written()  # what the service does after a commit: wakes no relay here
            await asyncio.sleep(3)  # longer than a relay's poll interval (2 s)
            assert received == []
            pending = "SELECT count(*) FROM outbox WHERE namespace = $1 AND published_at IS NULL"
            assert await pool.fetchval(pending, suffix) == 3
            sealed = await pool.fetchval("SELECT bool_and(sealed) FROM outbox WHERE namespace = $1", suffix)
            assert sealed, "chat seals its events: the relay must open them with chat's keys"

            port = free_port()
            env = {
                **os.environ,
                "WP_SERVICE_NAME": "chat",
                "WP_HTTP_PORT": str(port),
                "WP_PUBSUB_NAME_SUFFIX": suffix,
                "WP_OUTBOX_RELAY": "false",  # the service's own setting: the relay command runs regardless
            }
            log_file = (tmp_path / "relay.log").open("w")
            relay_process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "workplace_kit.outbox", "relay", "--schema", "chat",
                env=env, stdout=log_file, stderr=log_file,
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while (answer := await _get(url + "/readyz")) is None or answer.status_code != 200:
                assert relay_process.returncode is None, (tmp_path / "relay.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the relay did not become ready"
                await asyncio.sleep(0.2)
            await _until(lambda: len(received) >= 3, within_s=30)
            # Written while the relay runs: no kick reaches it, its polling finds the event.
            await store_turns(service.repository, 1)
            await _until(lambda: len(received) >= 4, within_s=30)
            await asyncio.sleep(3)  # time for a duplicate to show up, if there were one
            assert sorted(received) == sorted(written) and len(received) == 4, (received, written)
            assert await pool.fetchval(pending, suffix) == 0
            metrics = (await _get(url + "/metrics")).text
            assert 'outbox_pending_events{service="chat"} 0.0' in metrics
            assert 'outbox_dead_events{service="chat"} 0.0' in metrics

            relay_process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(relay_process.wait(), timeout=20) == 0
    finally:
        if relay_process is not None and relay_process.returncode is None:
            relay_process.kill()
            await relay_process.wait()
        await subscription.close()
        await observer.close()
