"""Wire the feedback service: resources, the conversation-turn consumer, HTTP and gRPC."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from workplace.events.v1 import events_pb2
from workplace_kit.auth import TokenVerifier, principal_dependency
from workplace_kit.crypto import open_cipher
from workplace_kit.outbox import OutboxRelay
from workplace_kit.resources import open_resources
from workplace_kit.service import ServiceParts, create_http_app
from workplace_kit.workers import pubsub_consumer

from .domain import FeedbackService
from .emotion import build_emotion_analysers
from .grpc_api import grpc_service
from .http_api import build_router
from .repository import FeedbackRepository
from .settings import FeedbackSettings

MIGRATIONS = Path(__file__).parent / "migrations"
# The subscription it reads (declared in workplace_kit.topology).
TURNS_SUBSCRIPTION = "feedback.conversation-turns"


async def build(stack: AsyncExitStack, settings: FeedbackSettings) -> ServiceParts:
    res = await open_resources(stack, settings, schema="feedback", migrations_dir=MIGRATIONS)
    cipher = await open_cipher(res.pool, settings)
    relay = OutboxRelay(res.pool, res.bus, service=settings.service_name, cipher=cipher)
    analyser, fallback = build_emotion_analysers(settings)
    service = FeedbackService(
        settings, FeedbackRepository(res.pool, cipher), analyser, relay.kick, fallback, consumer=TURNS_SUBSCRIPTION
    )

    app = create_http_app(
        settings,
        title="Workplace Roleplay feedback API",
        description="Emotion analysis of each learner turn, reports and strengths.",
        readiness=[res.check_database],
    )
    verifier = TokenVerifier.from_settings(settings)
    app.include_router(build_router(service, principal_dependency(verifier, settings.auth_cookie_name)))
    app.state.service = service
    consumer = pubsub_consumer(
        res.bus,
        TURNS_SUBSCRIPTION,
        events_pb2.ConversationTurn,
        service.handle_turn,
        max_messages=settings.pubsub_flow_max_messages,
        healthy=res.check_database,  # while the database is down, no event spends an attempt
    )
    workers = [relay.run, consumer]
    for a in (analyser, fallback):
        if a is not None and hasattr(a, "warm_up"):
            workers.append(a.warm_up)  # load dictionaries before the first turn arrives
    return ServiceParts(http_app=app, grpc_services=[grpc_service(service, verifier)], workers=workers)
