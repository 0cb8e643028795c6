"""Wire the scenario service: resources, catalogue sync, domain, HTTP and gRPC adapters, outbox relay."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

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

from .catalogue_store import CatalogueStore
from .domain import ScenarioService
from .grpc_api import grpc_service
from .http_api import build_router
from .repository import SessionRepository
from .settings import ScenarioSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def generative_engine(settings: ScenarioSettings) -> DialogueEngine | None:
    """Gemini (or the opt-in local model) when configured; None: the scenario scripts answer."""
    if settings.ai_provider == "local" or settings.gemini_enabled:
        return build_dialogue_engine(settings, None)
    return None


async def build(stack: AsyncExitStack, settings: ScenarioSettings) -> ServiceParts:
    res = await open_resources(stack, settings, schema="scenario", migrations_dir=MIGRATIONS, redis=True)
    assert res.pool is not None and res.redis is not None
    cipher = await open_cipher(res.pool, settings)
    relay = OutboxRelay(res.pool, res.bus, service=settings.service_name, cipher=cipher)
    catalogue = content()
    embedder = get_embedder()
    store = CatalogueStore(res.pool, [s.id for s in catalogue.scenarios])
    service = ScenarioService(
        settings,
        catalogue,
        store,
        SessionRepository(res.pool, cipher, topology=res.bus.topology),
        embedder,
        generative_engine(settings),
        relay.kick,
        Limiter.from_settings(settings),
    )

    async def sync_catalogue() -> float:
        # Not ready until the catalogue is in the database (search reads it there) and e5 is loaded.
        result = await store.sync(catalogue, embedder)
        await embedder.aembed_query("warm-up")
        return float(result.total)

    warm = WarmUp({"scenario catalogue": sync_catalogue})
    app = create_http_app(
        settings,
        title="Workplace Roleplay scenario API",
        description="The scenario catalogue (search by meaning) and roleplay sessions against an AI character.",
        readiness=[res.check_database, warm.check],
    )
    verifier = TokenVerifier.from_settings(settings)
    app.include_router(build_router(service, principal_dependency(verifier, settings.auth_cookie_name)))
    app.state.service = service  # for in-process tests
    return ServiceParts(
        http_app=app,
        grpc_services=[grpc_service(service, verifier)],
        outbox_relay=relay.run,
        warm_up=warm,
    )
