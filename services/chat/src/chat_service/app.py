"""Wire the chat service: resources, domain, HTTP and gRPC adapters, outbox relay."""

from __future__ import annotations

from contextlib import AsyncExitStack
from functools import lru_cache
from pathlib import Path

from workplace.events.v1 import events_pb2
from workplace_content import FREE_CHAT_DIR, content
from workplace_content.dialogue import free_chat_cast
from workplace_kit.ai.dialogue import build_dialogue_engine
from workplace_kit.ai.offline_dialogue import Catalogue, load_catalogue
from workplace_kit.auth import TokenVerifier, principal_dependency
from workplace_kit.cache import AIResponseCache
from workplace_kit.crypto import open_cipher
from workplace_kit.outbox import OutboxRelay
from workplace_kit.ratelimit import Limiter
from workplace_kit.resources import open_resources
from workplace_kit.service import ServiceParts, create_http_app
from workplace_kit.warmup import WarmUp
from workplace_kit.workers import pubsub_consumer

from .domain import ChatService
from .grpc_api import grpc_service
from .http_api import build_router
from .legacy_import import SUBSCRIPTION as LEGACY_SUBSCRIPTION
from .legacy_import import LegacyChatImport
from .repository import ChatRepository
from .settings import ChatSettings

MIGRATIONS = Path(__file__).parent / "migrations"
# What chat serves is content in the shared catalogue: the free-chat partners, situations and
# lines (workplace_content: free_chat/, characters/).
CONTENT = FREE_CHAT_DIR


@lru_cache(maxsize=1)
def chat_catalogue() -> Catalogue:
    return load_catalogue(CONTENT, free_chat_cast(content()))


async def build(stack: AsyncExitStack, settings: ChatSettings) -> ServiceParts:
    # Redis only holds the AI-response cache and the rate limits' counters here: chat works
    # without it, so it is not part of readiness (a Redis outage must not take healthy pods out of service).
    res = await open_resources(stack, settings, schema="chat", migrations_dir=MIGRATIONS, redis=True)
    assert res.redis is not None  # asked for above
    cipher = await open_cipher(res.pool, settings)
    relay = OutboxRelay(res.pool, res.bus, service=settings.service_name, cipher=cipher)
    catalogue = chat_catalogue()
    engine = build_dialogue_engine(settings, catalogue)
    service = ChatService(
        settings,
        catalogue,
        ChatRepository(res.pool, cipher, topology=res.bus.topology),
        engine,
        AIResponseCache(res.redis),
        relay.kick,
        Limiter.from_settings(settings),
    )
    # Not ready until the offline engine's index and model are loaded (the generative engines have nothing to load).
    warm = WarmUp({f"dialogue engine ({engine.info.id})": engine.warm_up} if hasattr(engine, "warm_up") else {})
    app = create_http_app(
        settings,
        title="Workplace Roleplay chat API",
        description="Free-chat practice (雑談練習) with an AI colleague, senior or boss.",
        readiness=[res.check_database, warm.check],
    )
    verifier = TokenVerifier.from_settings(settings)
    app.include_router(build_router(service, principal_dependency(verifier, settings.auth_cookie_name)))
    app.state.service = service  # for in-process tests
    # Free chats of the legacy app, handed over by auth as events (legacy_import.py).
    legacy = LegacyChatImport(service.repository, catalogue)
    legacy_consumer = pubsub_consumer(
        res.bus, LEGACY_SUBSCRIPTION, events_pb2.LegacyChatHistory, legacy.handle, healthy=res.check_database
    )
    return ServiceParts(
        http_app=app,
        grpc_services=[grpc_service(service, verifier)],
        workers=[legacy_consumer],
        outbox_relay=relay.run,
        warm_up=warm,
    )
