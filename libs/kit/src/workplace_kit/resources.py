"""Open the shared resources a service needs (database, Redis, event bus) on an exit stack,
so every service starts and stops them the same way."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .bus import EventBus, TopologyMissing
from .config import ServiceSettings
from .topology import DEFAULT

if TYPE_CHECKING:  # extras: workplace-kit[db] and [redis], imported only by the services that use them
    import asyncpg
    import redis.asyncio as aioredis

log = logging.getLogger(__name__)


@dataclass
class Resources:
    bus: EventBus
    redis: aioredis.Redis | None = None
    pool: asyncpg.Pool | None = None

    async def check_database(self) -> None:
        if self.pool is not None:
            await self.pool.fetchval("SELECT 1")


async def open_resources(
    stack: AsyncExitStack,
    settings: ServiceSettings,
    *,
    schema: str | None = None,
    migrations_dir: Path | None = None,
    redis: bool = False,
) -> Resources:
    """The bus always (its topology provisioned, or checked where the bus creates nothing); the
    database (migrated first) when `schema` is given; Redis when asked for. Only what a service
    cannot work without belongs in its readiness check: Redis is an optimisation for chat and a
    live channel for web."""
    bus = EventBus(
        settings.pubsub_project,
        service_name=settings.service_name,
        topology=DEFAULT.with_suffix(settings.pubsub_name_suffix),
        create_missing=settings.pubsub_create_missing,
    )
    stack.push_async_callback(bus.close)
    # Declared (emulator) or checked (Pub/Sub) before anything is published or pulled. If the
    # broker is down the service still starts; on the emulator the bus declares the topology
    # again when the broker answers NOT_FOUND. What is missing on Pub/Sub stops the start.
    try:
        await bus.ensure_topology()
    except TopologyMissing:
        raise
    except Exception:  # noqa: BLE001 - logged; retried on NOT_FOUND
        log.warning("could not provision or check Pub/Sub now", exc_info=True)
    client = None
    if redis:
        from .cache import create_redis

        client = create_redis(settings.redis_url, settings.redis_ca_file)
        stack.push_async_callback(client.aclose)
    pool = None
    if schema is not None:
        from .db import apply_migrations, create_pool, pending_migrations

        if migrations_dir is not None and settings.migrate_on_start:
            await apply_migrations(settings.database_url, schema=schema, migrations_dir=migrations_dir)
        elif migrations_dir is not None:
            pending = await pending_migrations(settings.database_url, schema=schema, migrations_dir=migrations_dir)
            if pending:
                raise RuntimeError(
                    f"schema {schema!r} lacks migrations {', '.join(pending)}: the migrations job "
                    f"(python -m workplace_kit.db migrate --schema {schema} ...) must run first"
                )
        pool = await create_pool(
            settings.database_url,
            schema=schema,
            max_size=settings.database_pool_max,
            command_timeout_s=settings.database_command_timeout_s,
        )
        stack.push_async_callback(pool.close)
    return Resources(bus=bus, redis=client, pool=pool)
