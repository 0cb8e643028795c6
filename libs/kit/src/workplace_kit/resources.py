"""Open the shared resources a service needs (database, Redis, event bus) on an exit stack,
so every service starts and stops them the same way."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from .bus import EventBus
from .cache import create_redis
from .config import ServiceSettings
from .db import apply_migrations, create_pool


@dataclass
class Resources:
    redis: aioredis.Redis
    bus: EventBus
    pool: asyncpg.Pool | None = None

    async def check_database(self) -> None:
        if self.pool is not None:
            await self.pool.fetchval("SELECT 1")

    async def check_redis(self) -> None:
        await self.redis.ping()


async def open_resources(
    stack: AsyncExitStack,
    settings: ServiceSettings,
    *,
    schema: str | None = None,
    migrations_dir: Path | None = None,
) -> Resources:
    """Redis and the bus always; the database (migrated first) when `schema` is given."""
    redis = create_redis(settings.redis_url)
    stack.push_async_callback(redis.aclose)
    bus = EventBus(settings.pubsub_project, redis=redis, service_name=settings.service_name)
    stack.push_async_callback(bus.close)
    pool = None
    if schema is not None:
        if migrations_dir is not None:
            await apply_migrations(settings.database_url, schema=schema, migrations_dir=migrations_dir)
        pool = await create_pool(settings.database_url, schema=schema, max_size=settings.database_pool_max)
        stack.push_async_callback(pool.close)
    return Resources(redis=redis, bus=bus, pool=pool)
