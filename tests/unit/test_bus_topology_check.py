"""On Pub/Sub the services create no topic or subscription: they check at start that what they
publish to and pull from is there (and granted), and refuse to start naming what is not. On the
emulator they still create it. No broker: the bus's two clients are fakes of our own."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from google.api_core import exceptions as gexc
from workplace_kit import bus as bus_module
from workplace_kit import topology
from workplace_kit.bus import EventBus, TopologyMissing
from workplace_kit.config import ServiceSettings
from workplace_kit.resources import open_resources

PROJECT = "workplace-prod"


class FakeClient:
    """Answers TestIamPermissions from a set of (path, permission) grants; records creations."""

    def __init__(self, granted: set[tuple[str, str]]) -> None:
        self.granted = granted
        self.created: list[str] = []
        self.asked: list[str] = []

    async def test_iam_permissions(self, request, timeout=None):
        self.asked.append(request["resource"])
        perms = [p for p in request["permissions"] if (request["resource"], p) in self.granted]
        return SimpleNamespace(permissions=perms)

    async def create_topic(self, request, timeout=None):
        self.created.append(request["name"])

    async def create_subscription(self, request, timeout=None):
        self.created.append(request["name"])


def _bus(monkeypatch, service: str, granted: set[tuple[str, str]], **kwargs) -> tuple[EventBus, FakeClient]:
    fake = FakeClient(granted)
    monkeypatch.setattr(bus_module, "PublisherAsyncClient", lambda: fake)
    monkeypatch.setattr(bus_module, "SubscriberAsyncClient", lambda: fake)
    return EventBus(PROJECT, service_name=service, **kwargs), fake


def _all_granted(bus: EventBus, service: str) -> set[tuple[str, str]]:
    topics, subscriptions = bus.topology.needs_of(service)
    return {(bus.topic_path(t), "pubsub.topics.publish") for t in topics} | {
        (bus.subscription_path(s), "pubsub.subscriptions.consume") for s in subscriptions
    }


def test_needs_follow_the_topology() -> None:
    topics, subscriptions = topology.DEFAULT.needs_of("watch")
    assert set(subscriptions) == {"watch.turn-requests", "watch.tts-ready"}
    # What it publishes, and the dead-letter topics of what it pulls (it dead-letters itself).
    assert set(topics) == {"tts.requests", "watch.turn-requests", "watch.turn-requests.dlq", "watch.tts-ready.dlq"}
    assert topology.DEFAULT.needs_of("nobody") == ((), ())


async def test_on_pubsub_a_complete_topology_passes_and_nothing_is_created(monkeypatch) -> None:
    bus, fake = _bus(monkeypatch, "feedback", set(), create_missing=False)
    fake.granted = _all_granted(bus, "feedback")
    assert await bus.ensure_topology() == []
    assert fake.created == []
    assert f"projects/{PROJECT}/subscriptions/feedback.session-ended" in fake.asked
    assert f"projects/{PROJECT}/topics/feedback.ready" in fake.asked


async def test_on_pubsub_what_is_missing_is_named(monkeypatch) -> None:
    bus, fake = _bus(monkeypatch, "feedback", set(), create_missing=False)
    fake.granted = _all_granted(bus, "feedback") - {
        (bus.subscription_path("feedback.session-ended"), "pubsub.subscriptions.consume"),
        (bus.topic_path("feedback.ready"), "pubsub.topics.publish"),
    }
    with pytest.raises(TopologyMissing) as raised:
        await bus.ensure_topology()
    message = str(raised.value)
    assert f"projects/{PROJECT}/subscriptions/feedback.session-ended (pubsub.subscriptions.consume)" in message
    assert f"projects/{PROJECT}/topics/feedback.ready (pubsub.topics.publish)" in message
    assert "feedback.conversation-turns " not in message, "only what is missing"
    assert "deploy/cloud/config-connector" in message and "pubsub provision" in message
    assert fake.created == []


async def test_on_pubsub_a_missing_topic_on_publish_is_not_created(monkeypatch) -> None:
    bus, fake = _bus(monkeypatch, "feedback", set(), create_missing=False)

    async def publish(request, retry=None, timeout=None):
        raise gexc.NotFound("Resource not found (resource=feedback.ready).")

    fake.publish = publish  # type: ignore[attr-defined]
    with pytest.raises(gexc.NotFound):
        await bus._publish_raw("feedback.ready", [])
    assert fake.created == []


async def test_on_the_emulator_the_bus_creates_the_topology(monkeypatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
    bus, fake = _bus(monkeypatch, "feedback", set())
    assert bus.create_missing, "the default under PUBSUB_EMULATOR_HOST"
    created = await bus.ensure_topology()
    assert f"projects/{PROJECT}/topics/feedback.ready" in fake.created
    assert "feedback.session-ended.dlq" in created
    assert fake.asked == []


def test_only_the_emulator_gets_a_bus_that_creates(monkeypatch) -> None:
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", "127.0.0.1:9")
    assert _bus(monkeypatch, "chat", set())[0].create_missing is True
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST")
    assert _bus(monkeypatch, "chat", set())[0].create_missing is False
    # Set explicitly (WP_PUBSUB_CREATE_MISSING), it wins either way.
    assert _bus(monkeypatch, "chat", set(), create_missing=True)[0].create_missing is True
    assert ServiceSettings().pubsub_create_missing is None


async def test_a_service_refuses_to_start_without_its_topology(monkeypatch) -> None:
    from contextlib import AsyncExitStack

    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    _, fake = _bus(monkeypatch, "tts", set())  # patches the clients open_resources makes
    settings = ServiceSettings(service_name="tts", pubsub_project=PROJECT)
    async with AsyncExitStack() as stack:
        with pytest.raises(TopologyMissing, match=r"subscriptions/tts\.requests \(pubsub.subscriptions.consume\)"):
            await open_resources(stack, settings)
    assert fake.created == [] and fake.asked
