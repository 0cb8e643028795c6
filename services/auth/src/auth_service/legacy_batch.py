"""`python -m auth_service migrate-legacy [--dry-run]`: move every legacy (Flask) session in the
legacy store to an account (a guest each), with a progress bar and a summary.

Safe to run again, and while the services run: a session already moved is counted as such
and left alone (legacy.py records each one). A dry run reads and converts every session and
writes nothing. The events for the chat service go out through the running auth service's
outbox relay. Exit status 1 when a session failed (see the summary and the log).
"""

from __future__ import annotations

import argparse
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from workplace_kit.cache import create_redis
from workplace_kit.crypto import open_cipher
from workplace_kit.db import apply_migrations, create_pool

from .legacy import MigrationResult, Outcome, build_migrator
from .repository import AuthRepository
from .settings import AuthSettings

LABELS = {
    Outcome.MIGRATED: "migrated",
    Outcome.ALREADY_MIGRATED: "already migrated",
    Outcome.SKIPPED_UNSAFE: "skipped: not plain data (refused)",
    Outcome.SKIPPED_EMPTY: "skipped: empty",
    Outcome.FAILED: "failed",
    Outcome.NOT_FOUND: "gone meanwhile (expired)",
}


@dataclass
class Summary:
    dry_run: bool
    counts: Counter[Outcome] = field(default_factory=Counter)
    messages: int = 0
    # (Redis key, why) of the sessions that were refused or failed.
    problems: list[tuple[str, str]] = field(default_factory=list)

    def add(self, key: str, result: MigrationResult) -> None:
        self.counts[result.outcome] += 1
        if result.outcome is Outcome.MIGRATED:
            self.messages += result.message_count
        if result.outcome in (Outcome.SKIPPED_UNSAFE, Outcome.FAILED):
            self.problems.append((key, result.detail))


async def migrate_all(settings: AuthSettings, *, dry_run: bool, console: Console | None = None) -> Summary:
    from .app import MIGRATIONS

    console = console or Console(stderr=True)
    summary = Summary(dry_run)
    async with AsyncExitStack() as stack:
        await apply_migrations(settings.database_url, schema="auth", migrations_dir=MIGRATIONS)
        pool = await create_pool(settings.database_url, schema="auth")
        stack.push_async_callback(pool.close)
        cipher = await open_cipher(pool, settings)
        legacy_redis = create_redis(settings.legacy_redis_url or settings.redis_url, settings.redis_ca_file)
        stack.push_async_callback(legacy_redis.aclose)
        migrator = build_migrator(settings, pool, cipher, AuthRepository(pool, cipher), legacy_redis)
        session_ids = [sid async for sid in migrator.store.session_ids()]
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(
                "legacy sessions (dry run)" if dry_run else "legacy sessions", total=len(session_ids)
            )
            for session_id in session_ids:
                key = settings.legacy_session_key_prefix + session_id
                try:
                    result = await migrator.migrate(session_id, dry_run=dry_run)
                except Exception as exc:  # noqa: BLE001 - counted and listed; the others go on
                    result = MigrationResult(Outcome.FAILED, detail=f"{type(exc).__name__}: {exc}"[:300])
                summary.add(key, result)
                progress.advance(task)
    return summary


def print_summary(summary: Summary, console: Console) -> None:
    table = Table(title="legacy sessions: what a run would do (dry run)" if summary.dry_run else "legacy sessions")
    table.add_column("outcome")
    table.add_column("sessions", justify="right")
    for outcome, label in LABELS.items():
        if outcome is Outcome.MIGRATED and summary.dry_run:
            label = "would migrate"
        table.add_row(label, str(summary.counts[outcome]))
    console.print(table)
    verb = "would move" if summary.dry_run else "moved"
    console.print(f"{verb} {summary.messages} messages")
    for key, why in summary.problems:
        console.print(f"  {key}: {why}", markup=False)


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m auth_service migrate-legacy", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="read and convert every session, write nothing")
    args = parser.parse_args(argv)
    from workplace_kit.config import load_settings

    console = Console()
    summary = await migrate_all(load_settings(AuthSettings), dry_run=args.dry_run, console=console)
    print_summary(summary, console)
    return 1 if summary.counts[Outcome.FAILED] else 0
