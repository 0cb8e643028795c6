"""Wire the auth service: database, signing keys, domain, HTTP and gRPC adapters."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import httpx
from workplace_kit.auth import TokenVerifier, principal_dependency
from workplace_kit.cache import create_redis
from workplace_kit.crypto import open_cipher
from workplace_kit.outbox import OutboxRelay
from workplace_kit.ratelimit import Limiter
from workplace_kit.resources import open_resources
from workplace_kit.service import ServiceParts, create_http_app

from .domain import AuthService
from .grpc_api import grpc_service
from .http_api import build_router, sign_in_limit
from .keys import KeyStore
from .legacy import build_migrator
from .oidc import HTTP_TIMEOUT_S, build_oidc_router
from .repository import AuthRepository
from .settings import AuthSettings

MIGRATIONS = Path(__file__).parent / "migrations"


async def build(stack: AsyncExitStack, settings: AuthSettings) -> ServiceParts:
    res = await open_resources(stack, settings, schema="auth", migrations_dir=MIGRATIONS)
    assert res.pool is not None
    cipher = await open_cipher(res.pool, settings)
    keys = KeyStore(res.pool, cipher=cipher, token_ttl_s=settings.access_token_ttl_s)
    await keys.ensure_key()
    service = AuthService(settings, AuthRepository(res.pool, cipher), keys)
    # Sessions of the legacy Flask app move to accounts on a visit with its cookie (legacy.py);
    # their free chat goes to the chat service as an event (outbox).
    relay = OutboxRelay(res.pool, res.bus, service=settings.service_name, cipher=cipher)
    legacy_redis = create_redis(settings.legacy_redis_url or settings.redis_url, settings.redis_ca_file)
    stack.push_async_callback(legacy_redis.aclose)
    legacy = build_migrator(settings, res.pool, cipher, service.repository, legacy_redis, relay.kick)
    # The auth service checks its own tokens against its own keys (no HTTP round trip to itself).
    verifier = TokenVerifier(settings.auth_jwks_url, settings.auth_issuer, settings.auth_audience, fetch_jwks=keys.jwks)
    app = create_http_app(
        settings,
        title="Workplace Roleplay auth API",
        description="Accounts, guest accounts, access and refresh tokens, the public signing keys.",
        readiness=[res.check_database],
    )
    current_principal = principal_dependency(verifier, settings.auth_cookie_name)
    limiter = Limiter.from_settings(settings)
    app.include_router(build_router(service, current_principal, limiter, legacy=legacy))
    # Sign-in with Google (OIDC): the routes answer 404 unless WP_AUTH_OIDC_CLIENT_ID is set.
    provider_http = await stack.enter_async_context(httpx.AsyncClient(timeout=HTTP_TIMEOUT_S))
    app.include_router(
        build_oidc_router(service, res.pool, current_principal, provider_http, sign_in_limit(settings, limiter))
    )
    app.state.service = service  # for in-process tests
    app.state.legacy = legacy
    return ServiceParts(http_app=app, grpc_services=[grpc_service(service, verifier, legacy)], outbox_relay=relay.run)
