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


# What a service's own database role may do in its schema: read and write rows, never change the
# schema. Its migrations' bookkeeping (yoyo's tables) stays read-only to it: a service checks
# that nothing is pending, only the migrations role marks a migration applied.
_RUNTIME_GRANTS = (
    "GRANT USAGE ON SCHEMA {schema} TO {role}",
    # pgvector's types and operators live in public.
    "GRANT USAGE ON SCHEMA public TO {role}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}",
    "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {role}",
    "REVOKE INSERT, UPDATE, DELETE ON TABLE {yoyo_tables} FROM {role}",
    # Tables and sequences later migrations create (as this same migrations role) follow.
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {role}",
)
_YOYO_TABLES = ("_yoyo_migration", "_yoyo_log", "_yoyo_version", "yoyo_lock")


class MissingDatabaseRole(RuntimeError):
    """A role to grant to does not exist (on Cloud SQL: the service's IAM user is not created)."""


def _grant_sync(database_url: str, schema: str, roles: list[str]) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(database_url, autocommit=True) as conn:
        missing = [r for r in roles if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (r,)).fetchone()]
        if missing:
            raise MissingDatabaseRole(
                f"database role(s) {', '.join(missing)} do not exist: create each service's database user "
                "first (on Cloud SQL the IAM user of its Google service account, deploy/cloud/config-connector)"
            )
        present = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename = ANY(%s)",
                (schema, list(_YOYO_TABLES)),
            )
        }
        yoyo_tables = sql.SQL(", ").join(sql.Identifier(schema, t) for t in sorted(present))
        with conn.transaction():
            for role in roles:
                for statement in _RUNTIME_GRANTS:
                    if "{yoyo_tables}" in statement and not present:
                        continue
                    conn.execute(
                        sql.SQL(statement).format(
                            schema=sql.Identifier(schema), role=sql.Identifier(role), yoyo_tables=yoyo_tables
                        )
                    )


async def grant_service_access(database_url: str, *, schema: str, roles: list[str]) -> None:
    """Let each of `roles` (the service's own database users) read and write the rows of `schema`,
    today's tables and those later migrations add, without any right to change the schema. Run
    by the migrations role, which owns the schema's objects; safe to run again."""
    _check_schema(schema)
    if roles:
        await asyncio.to_thread(_grant_sync, database_url, schema, list(roles))
        log.info("schema access granted", extra={"schema": schema, "roles": list(roles)})


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
    parser.add_argument(
        "--grant-to",
        action="append",
        default=[],
        metavar="ROLE",
        help="after migrating, let this database role (the service's own user) read and write the schema; repeatable",
    )
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
    try:
        asyncio.run(grant_service_access(settings.database_url, schema=args.schema, roles=args.grant_to))
    except MissingDatabaseRole as exc:
        raise SystemExit(f"{args.schema}: {exc}") from None
    if args.grant_to:
        print(f"{args.schema}: read and write granted to {', '.join(args.grant_to)}")


if __name__ == "__main__":
    main()
