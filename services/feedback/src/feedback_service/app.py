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
from workplace_kit.warmup import WarmUp
from workplace_kit.workers import pubsub_consumer

from .coaching.gemini_report import GeminiReportWriter
from .domain import FeedbackService
from .emotion import build_emotion_analysers
from .grpc_api import grpc_service
from .http_api import build_router
from .repository import FeedbackRepository
from .settings import FeedbackSettings

MIGRATIONS = Path(__file__).parent / "migrations"
# The subscriptions it reads (declared in workplace_kit.topology).
TURNS_SUBSCRIPTION = "feedback.conversation-turns"
ENDED_SUBSCRIPTION = "feedback.session-ended"


async def build(stack: AsyncExitStack, settings: FeedbackSettings) -> ServiceParts:
    res = await open_resources(stack, settings, schema="feedback", migrations_dir=MIGRATIONS)
    cipher = await open_cipher(res.pool, settings)
    relay = OutboxRelay(res.pool, res.bus, service=settings.service_name, cipher=cipher)
    analyser, fallback = build_emotion_analysers(settings)
    service = FeedbackService(
        settings,
        FeedbackRepository(res.pool, cipher, topology=res.bus.topology),
        analyser,
        relay.kick,
        fallback,
        consumer=TURNS_SUBSCRIPTION,
        reports_consumer=ENDED_SUBSCRIPTION,
        report_writer=GeminiReportWriter(settings) if settings.gemini_enabled else None,
    )

    # Not ready until the analysers' dictionaries are loaded: the first turn then waits for nothing.
    warm = WarmUp(
        {
            **{
                f"emotion analyser ({a.engine})": a.warm_up
                for a in (analyser, fallback)
                if a is not None and hasattr(a, "warm_up")
            },
            "register checker": service.register.warm_up,
        }
    )
    app = create_http_app(
        settings,
        title="Workplace Roleplay feedback API",
        description="Emotion analysis of each learner turn, reports and strengths.",
        readiness=[res.check_database, warm.check],
    )
    verifier = TokenVerifier.from_settings(settings)
    app.include_router(build_router(service, principal_dependency(verifier, settings.auth_cookie_name)))
    app.state.service = service
    consumer = warm.after_warm_up(
        pubsub_consumer(
            res.bus,
            TURNS_SUBSCRIPTION,
            events_pb2.ConversationTurn,
            service.handle_turn,
            max_messages=settings.pubsub_flow_max_messages,
            healthy=res.check_database,  # while the database is down, no event spends an attempt
        )
    )  # pulls only once the analysers are warm
    # Coaching reports, from session.ended (the report reads the analyses the consumer above wrote).
    reports = warm.after_warm_up(
        pubsub_consumer(
            res.bus,
            ENDED_SUBSCRIPTION,
            events_pb2.SessionEnded,
            service.handle_session_ended,
            healthy=res.check_database,
        )
    )
    return ServiceParts(
        http_app=app,
        grpc_services=[grpc_service(service, verifier)],
        workers=[consumer, reports],
        outbox_relay=relay.run,
        warm_up=warm,
    )
