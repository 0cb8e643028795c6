"""Wire the watch service: resources, domain, HTTP and gRPC adapters, the outbox relay, and the
two consumers (the turn requests that produce the dialogues, and the speech-ready events)."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from workplace.events.v1 import events_pb2
from workplace_content import content
from workplace_kit.ai.dialogue import build_dialogue_engine
from workplace_kit.ai.embeddings import get_embedder
from workplace_kit.ai.types import DialogueEngine
from workplace_kit.auth import TokenVerifier, principal_dependency
from workplace_kit.crypto import open_cipher
from workplace_kit.outbox import OutboxRelay
from workplace_kit.ratelimit import Limiter
from workplace_kit.resources import open_resources
from workplace_kit.service import ServiceParts, create_http_app
from workplace_kit.warmup import WarmUp
from workplace_kit.workers import pubsub_consumer

from .domain import AUDIO_SUBSCRIPTION, TURNS_SUBSCRIPTION, WatchService
from .grpc_api import grpc_service
from .http_api import build_router
from .live import LiveChannel
from .repository import WatchRepository
from .scenario_search import CatalogueFinder, FallbackFinder, GrpcScenarioFinder
from .settings import WatchSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def generative_engine(settings: WatchSettings) -> DialogueEngine | None:
    """Gemini (or the opt-in local model) when configured; None: the scenario's authored lines."""
    if settings.ai_provider == "local" or settings.gemini_enabled:
        return build_dialogue_engine(settings, None)
    return None


async def build(stack: AsyncExitStack, settings: WatchSettings) -> ServiceParts:
    res = await open_resources(stack, settings, schema="watch", migrations_dir=MIGRATIONS, redis=True)
    assert res.pool is not None
    cipher = await open_cipher(res.pool, settings)
    relay = OutboxRelay(res.pool, res.bus, service=settings.service_name, cipher=cipher)
    live = LiveChannel(res.redis)
    stack.push_async_callback(live.aclose)
    catalogue, embedder = content(), get_embedder()
    finder = FallbackFinder(
        GrpcScenarioFinder(settings.watch_scenario_grpc_addr, timeout_s=settings.watch_scenario_timeout_s),
        CatalogueFinder(catalogue, embedder),
    )
    stack.push_async_callback(finder.aclose)
    service = WatchService(
        settings,
        catalogue,
        WatchRepository(res.pool, cipher, topology=res.bus.topology),
        embedder,
        generative_engine(settings),
        finder,
        live,
        relay.kick,
        Limiter.from_settings(settings),
    )
    # Not ready until e5 is loaded: the first intervention is then read at once.
    warm = WarmUp({"e5 (the scenario scripts)": service.warm_up})
    app = create_http_app(
        settings,
        title="Workplace Roleplay watch API",
        description=(
            "Model dialogues between two AI characters that the learner watches, pauses and steps into. "
            "The dialogue itself streams from GET /api/v2/watch/{watch_id}/events?after=<turn index> "
            "(text/event-stream: turn, state, audio, ended), which this document does not list."
        ),
        readiness=[res.check_database, warm.check],
    )
    verifier = TokenVerifier.from_settings(settings)
    app.include_router(
        build_router(service, principal_dependency(verifier, settings.auth_cookie_name), settings.auth_cookie_name)
    )
    app.state.service = service  # for in-process tests
    turns = warm.after_warm_up(
        pubsub_consumer(
            res.bus,
            TURNS_SUBSCRIPTION,
            events_pb2.WatchTurnRequest,
            service.handle_turn_request,
            max_messages=settings.pubsub_flow_max_messages,
            healthy=res.check_database,
        )
    )
    audio = pubsub_consumer(
        res.bus, AUDIO_SUBSCRIPTION, events_pb2.TtsReady, service.handle_tts_ready, healthy=res.check_database
    )
    return ServiceParts(
        http_app=app,
        grpc_services=[grpc_service(service, verifier)],
        workers=[turns, audio],
        outbox_relay=relay.run,
        warm_up=warm,
    )
