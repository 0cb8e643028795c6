"""PostgreSQL: an asyncpg pool with pgvector registered, and SQL migrations per service schema.

Each service owns one schema (chat, feedback, ...) and keeps plain SQL migrations in its
package; yoyo applies them, tracking what ran in that schema's own yoyo tables, so services
migrate independently of one another. The kit's own tables (outbox, inbox) come from the
kit's migrations, applied to every service schema after the service's.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from pgvector.asyncpg import register_vector

log = logging.getLogger(__name__)
KIT_MIGRATIONS = Path(__file__).parent / "migrations"
_SCHEMA_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


async def _init_connection(conn: asyncpg.Connection) -> None:
    await register_vector(conn)


async def create_pool(
    database_url: str, *, schema: str, max_size: int = 10, command_timeout_s: float = 30.0
) -> asyncpg.Pool:
    """A pool whose connections see the service schema first, then public (pgvector's types).

    Every query has a time limit: a connection left half-open by a database restart must end
    in an error (a dependency outage, retried) rather than hang a request or an event."""
    _check_schema(schema)
    return await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=max_size,
        command_timeout=command_timeout_s,
        timeout=10,  # connecting
        init=_init_connection,
        server_settings={"search_path": f"{schema},public", "application_name": schema},
    )


def _check_schema(schema: str) -> None:
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"invalid schema name {schema!r}")


def _yoyo_url(database_url: str, schema: str) -> str:
    parts = urlsplit(database_url)
    scheme = "postgresql+psycopg"
    query = f"schema={schema},public"
    return urlunsplit((scheme, parts.netloc, parts.path, query, ""))


def _apply_sync(database_url: str, schema: str, migrations_dir: Path) -> list[str]:
    import psycopg
    from yoyo import get_backend, read_migrations

    with psycopg.connect(database_url, autocommit=True) as conn:
        # Serialise concurrent starters (several replicas) on a per-schema advisory lock.
        conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"migrate:{schema}",))
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            backend = get_backend(_yoyo_url(database_url, schema))
            applied: list[str] = []
            # The service's own migrations first, then the kit's tables (outbox, inbox), which
            # are written to apply after whatever a service created before the kit owned them.
            for folder in (migrations_dir, KIT_MIGRATIONS):
                todo = backend.to_apply(read_migrations(str(folder)))
                with backend.lock():
                    backend.apply_migrations(todo)
                applied += [m.id for m in todo]
            return applied
        finally:
            conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"migrate:{schema}",))


async def apply_migrations(database_url: str, *, schema: str, migrations_dir: Path) -> list[str]:
    """Create the schema if needed and apply pending migrations; returns the ids applied."""
    _check_schema(schema)
    applied = await asyncio.to_thread(_apply_sync, database_url, schema, Path(migrations_dir))
    if applied:
        log.info("migrations applied", extra={"schema": schema, "migrations": applied})
    return applied


def _pending_sync(database_url: str, schema: str, migrations_dir: Path) -> list[str]:
    import psycopg
    from yoyo import get_backend, read_migrations

    with psycopg.connect(database_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    pending: list[str] = []
    for folder in (migrations_dir, KIT_MIGRATIONS):
        migrations = read_migrations(str(folder))
        if not exists:
            pending += [m.id for m in migrations]
            continue
        backend = get_backend(_yoyo_url(database_url, schema))
        pending += [m.id for m in backend.to_apply(migrations)]
    return pending


async def pending_migrations(database_url: str, *, schema: str, migrations_dir: Path) -> list[str]:
    """The ids of the migrations not applied yet (all of them when the schema does not exist)."""
    _check_schema(schema)
    return await asyncio.to_thread(_pending_sync, database_url, schema, Path(migrations_dir))


def main(argv: list[str] | None = None) -> None:
    """`python -m workplace_kit.db migrate --schema chat --package chat_service`: apply a service's
    migrations (its package's `migrations/` folder, then the kit's) and exit: the chart's
    migrations Job, run once before a rollout with a role that may change the schema."""
    import argparse
    import importlib.util

    from .config import ServiceSettings, load_settings

    parser = argparse.ArgumentParser(prog="python -m workplace_kit.db")
    parser.add_argument("command", choices=["migrate", "pending"])
    parser.add_argument("--schema", required=True)
    parser.add_argument("--package", required=True, help="the service's package, e.g. chat_service")
    args = parser.parse_args(argv)
    spec = importlib.util.find_spec(args.package)
    if spec is None or spec.origin is None:
        raise SystemExit(f"no package {args.package!r}")
    folder = Path(spec.origin).parent / "migrations"
    if not folder.is_dir():
        raise SystemExit(f"{args.package} has no migrations/ folder")
    settings = load_settings(ServiceSettings, service_name=f"{args.schema}-migrations")
    if args.command == "pending":
        ids = asyncio.run(pending_migrations(settings.database_url, schema=args.schema, migrations_dir=folder))
        print("\n".join(ids) or "none pending")
        raise SystemExit(1 if ids else 0)
    ids = asyncio.run(apply_migrations(settings.database_url, schema=args.schema, migrations_dir=folder))
    print(f"{args.schema}: {len(ids)} applied" + (f" ({', '.join(ids)})" if ids else ""))


if __name__ == "__main__":
    main()
