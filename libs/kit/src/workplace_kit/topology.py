"""Where every event goes: one table from event type to topic, and every subscription.

Topics and subscriptions are declared here once. `EventBus.provision()` creates them, and
runs up front: `task up` and the test run (scripts/localrt.py), each service at start on the
emulator, the provisioning job (`python -m workplace_kit.pubsub provision`). On Pub/Sub in
production they are Config Connector resources generated from this table
(scripts/cloud_resources.py), and the services only check them at start. The bus re-runs
provisioning on the emulator when the broker answers NOT_FOUND, so a broker that lost its state (the emulator after a
restart) gets every topic back *with* its subscriptions: no event is ever published into a
topic that no subscription keeps.

Every subscription has its own dead-letter topic and an inspection subscription on it, both
named ``<subscription>.dlq``; `task dlq:replay` republishes what lands there.

Subscriptions are unordered: every consumer here handles events independently (idempotently,
by event id), and the emulator never dead-letters an ordered subscription. Publishers still
set the ordering key (the session id) so that a consumer that needs order can ask for it.

A name suffix (``WP_PUBSUB_NAME_SUFFIX``) is appended to every topic and subscription name,
so test runs sharing one emulator never see each other's events.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from google.protobuf.message import Message
from workplace.events.v1 import events_pb2

DLQ_SUFFIX = ".dlq"
# A dead-letter inspection subscription: nobody pulls it until someone replays, so a long ack
# deadline, and its messages kept as long as Pub/Sub allows.
DLQ_ACK_DEADLINE_S = 60
DLQ_RETENTION_S = 7 * 24 * 3600
# A subscription per producing service on this topic tells whether the broker lost its state
# (see EventBus.broker_state_lost). No event is ever published to it.
BROKER_EPOCH_TOPIC = "workplace.broker-epoch"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    event_type: type[Message]
    publishers: tuple[str, ...] = ()  # the services that publish it (registry names)


@dataclass(frozen=True)
class SubscriptionSpec:
    name: str
    topic: str
    consumer: str  # the service that reads it
    # A consumer that dies holding a message gives it back after this long (the bus extends
    # it while a handler runs). 10 s is Pub/Sub's minimum.
    ack_deadline_s: int = 10
    # Retries back off from min to max (doubling); with 15 attempts a message is retried for
    # about ten minutes before it is dead-lettered.
    max_delivery_attempts: int = 15
    min_backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    # A handler still running after this is cancelled and its event retried later.
    handler_timeout_s: float = 120.0

    @property
    def dead_letter_topic(self) -> str:
        return self.name + DLQ_SUFFIX

    @property
    def dead_letter_subscription(self) -> str:
        return self.name + DLQ_SUFFIX


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("conversation.turns", events_pb2.ConversationTurn, publishers=("chat", "scenario")),
    TopicSpec("feedback.ready", events_pb2.FeedbackReady, publishers=("feedback",)),
    TopicSpec("session.ended", events_pb2.SessionEnded, publishers=("chat", "scenario")),
    TopicSpec("user.events", events_pb2.UserEvent),
    TopicSpec("tts.requests", events_pb2.TtsRequest, publishers=("watch",)),
    TopicSpec("tts.ready", events_pb2.TtsReady, publishers=("tts",)),
    TopicSpec("watch.turn-requests", events_pb2.WatchTurnRequest, publishers=("watch",)),
    TopicSpec("legacy.chat-histories", events_pb2.LegacyChatHistory, publishers=("auth",)),
)

SUBSCRIPTIONS: tuple[SubscriptionSpec, ...] = (
    SubscriptionSpec("feedback.conversation-turns", "conversation.turns", consumer="feedback"),
    SubscriptionSpec("web.feedback-ready", "feedback.ready", consumer="web"),
    SubscriptionSpec("chat.legacy-chat-histories", "legacy.chat-histories", consumer="chat"),
    SubscriptionSpec("feedback.session-ended", "session.ended", consumer="feedback"),
    # One message per turn to generate: KEDA scales the watch workers on this backlog.
    SubscriptionSpec("watch.turn-requests", "watch.turn-requests", consumer="watch", max_backoff_s=10.0),
    SubscriptionSpec("tts.requests", "tts.requests", consumer="tts"),
    SubscriptionSpec("watch.tts-ready", "tts.ready", consumer="watch"),
)


class TopologyError(LookupError):
    """An event type, topic or subscription that the topology does not declare."""


@dataclass(frozen=True)
class Topology:
    """The declared topics and subscriptions, with the name suffix applied on the way out."""

    topics: tuple[TopicSpec, ...] = TOPICS
    subscriptions: tuple[SubscriptionSpec, ...] = SUBSCRIPTIONS
    suffix: str = ""
    _by_type: dict[str, TopicSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_type: dict[str, TopicSpec] = {}
        names = set()
        for topic in self.topics:
            full_name = topic.event_type.DESCRIPTOR.full_name
            if full_name in by_type:
                raise TopologyError(f"{full_name} is mapped to two topics")
            by_type[full_name] = topic
            names.add(topic.name)
        for sub in self.subscriptions:
            if sub.topic not in names:
                raise TopologyError(f"subscription {sub.name} reads undeclared topic {sub.topic}")
        object.__setattr__(self, "_by_type", by_type)

    def with_suffix(self, suffix: str) -> Topology:
        return replace(self, suffix=suffix)

    def name(self, base: str) -> str:
        """The broker name of a topic or subscription."""
        return base + self.suffix

    def topic_for(self, message: Message | type[Message]) -> TopicSpec:
        full_name = message.DESCRIPTOR.full_name
        try:
            return self._by_type[full_name]
        except KeyError:
            raise TopologyError(f"no topic is declared for {full_name} (workplace_kit.topology.TOPICS)") from None

    def topic(self, name: str) -> TopicSpec:
        for topic in self.topics:
            if topic.name == name:
                return topic
        raise TopologyError(f"undeclared topic {name!r}")

    def subscription(self, name: str) -> SubscriptionSpec:
        for sub in self.subscriptions:
            if sub.name == name:
                return sub
        known = ", ".join(s.name for s in self.subscriptions)
        raise TopologyError(f"undeclared subscription {name!r} (declared: {known})")

    def subscriptions_of(self, topic: str) -> tuple[SubscriptionSpec, ...]:
        return tuple(s for s in self.subscriptions if s.topic == topic)

    def needs_of(self, service: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """What `service` must be allowed on the broker: (topics it publishes to, subscriptions
        it pulls). Its own subscriptions' dead-letter topics are among the topics: the bus
        dead-letters an undecodable or permanently failing event itself. Declared names, without
        the suffix. The services' Google accounts get exactly these roles
        (scripts/cloud_resources.py), and they check them at start (EventBus.verify)."""
        consumed = tuple(s for s in self.subscriptions if s.consumer == service)
        topics = [t.name for t in self.topics if service in t.publishers]
        topics += [s.dead_letter_topic for s in consumed]
        return tuple(topics), tuple(s.name for s in consumed)


DEFAULT = Topology()
