"""Moving the legacy Flask app's sessions to accounts (strangler fig: the old app keeps running
while its visitors arrive here).

A legacy session moves once: it is recorded here under the SHA-256 of its id, in the same
transaction as the histories kept here and the event that hands its free chat to the chat
service (outbox; chat stores it once per event id). Moving it again finds that record and
moves nothing, whatever Redis holds by then. The legacy store is only read, never changed:
the old app goes on working for anyone still on it.

Where things go (legacy_format says what the old app kept):
- the free chat: a chat session of the user (event legacy.chat-histories);
- scenario and watch histories: legacy_histories here, in a documented plain form, until the
  scenario and watch services exist to take them.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import Counter
from workplace.events.v1 import events_pb2
from workplace_kit import outbox
from workplace_kit.crypto import Cipher, SealedColumn
from workplace_kit.errors import DomainError
from workplace_kit.topology import DEFAULT, Topology

from .legacy_format import (
    LegacyContent,
    LegacySessionRefused,
    convert,
    decode_session,
    plain_histories,
    session_id_from_cookie,
)
from .repository import AuthRepository, User
from .settings import AuthSettings

log = logging.getLogger(__name__)

LEGACY_SESSIONS = Counter(
    "auth_legacy_sessions_total", "Legacy (Flask) sessions looked at, by what became of them", ["outcome"]
)
# Ids derived from a legacy session (its chat session, its event) are UUIDv5 in this namespace,
# so the same session always gives the same ones.
_NAMESPACE = uuid.UUID("0b9f6c55-2f1e-4a43-9c57-3d1f51c0d7a2")
LEGACY_LANGUAGE = "ja"  # the legacy app spoke Japanese
LEGACY_GUEST_NAME = "ゲスト"


class Outcome(StrEnum):
    MIGRATED = "migrated"
    ALREADY_MIGRATED = "already_migrated"
    SKIPPED_UNSAFE = "skipped_unsafe"  # the session names code, not only data: refused
    SKIPPED_EMPTY = "skipped_empty"  # no conversation in it: nothing to move
    FAILED = "failed"  # unreadable, malformed or too large (details in the log)
    NOT_FOUND = "not_found"  # no such session in the legacy store (expired, or never was)


@dataclass(frozen=True)
class MigrationResult:
    outcome: Outcome
    user_id: uuid.UUID | None = None
    created_user: bool = False
    session_count: int = 0
    message_count: int = 0
    detail: str = ""


def legacy_key(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


class LegacySessionStore:
    """The legacy app's sessions in Redis: `<prefix><session id>`, read only."""

    def __init__(self, client: aioredis.Redis, prefix: str, max_bytes: int):
        self.client = client
        self.prefix = prefix
        self.max_bytes = max_bytes

    async def get(self, session_id: str) -> bytes | None:
        key = self.prefix + session_id
        size = await self.client.strlen(key)
        if not size:
            return None
        if size > self.max_bytes:
            raise LegacySessionRefused("unreadable", f"{size} bytes, more than the {self.max_bytes} accepted")
        data = await self.client.get(key)
        return data.encode() if isinstance(data, str) else data  # bytes: the client decodes nothing

    async def session_ids(self) -> AsyncIterator[str]:
        """Every session id under the prefix (SCAN: the store keeps serving meanwhile)."""
        pattern = "".join("\\" + c if c in "*?[]\\" else c for c in self.prefix) + "*"
        async for key in self.client.scan_iter(match=pattern, count=500):
            raw = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
            yield raw[len(self.prefix) :]


@dataclass(frozen=True)
class MigrationRecord:
    user_id: uuid.UUID
    session_count: int
    message_count: int


# Sealed like every learner's words here (`reencrypt` rewrites it with the others).
LEGACY_HISTORY_ENTRIES = SealedColumn(
    table="legacy_histories", column="entries", key="history_id", sealed="entries_sealed"
)


class LegacyRepository:
    def __init__(self, pool: asyncpg.Pool, cipher: Cipher, *, topology: Topology = DEFAULT):
        # Events are written for this topology (its name suffix is the outbox namespace).
        self.topology = topology
        self.pool = pool
        self.cipher = cipher

    async def histories(self, user_id: uuid.UUID) -> list[tuple[str, str, str]]:
        """(kind, name, entries as JSON) of the histories kept here for a user."""
        rows = await self.pool.fetch(
            "SELECT history_id, kind, name, entries_sealed FROM legacy_histories WHERE user_id = $1 "
            "ORDER BY kind, name",
            user_id,
        )
        texts = await self.cipher.open_texts(
            [(bytes(r["entries_sealed"]), None, LEGACY_HISTORY_ENTRIES.field(r["history_id"])) for r in rows]
        )
        return [(r["kind"], r["name"], text or "[]") for r, text in zip(rows, texts, strict=True)]

    async def find(self, key: bytes) -> MigrationRecord | None:
        row = await self.pool.fetchrow(
            "SELECT user_id, session_count, message_count FROM legacy_migrations WHERE legacy_key = $1", key
        )
        return MigrationRecord(**dict(row)) if row else None

    async def record(
        self,
        key: bytes,
        *,
        user_id: uuid.UUID,
        created_user: bool,
        content: LegacyContent,
        chat_session_id: uuid.UUID | None,
        event: events_pb2.LegacyChatHistory | None,
    ) -> bool:
        """The migration, the histories kept here and the chat's event, all or nothing; False
        if the session was recorded first by someone else (nothing is written then)."""
        async with self.pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetchval(
                "INSERT INTO legacy_migrations "
                "(legacy_key, user_id, created_user, session_count, message_count, chat_session_id) "
                "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (legacy_key) DO NOTHING RETURNING true",
                key,
                user_id,
                created_user,
                content.session_count,
                content.message_count,
                chat_session_id,
            )
            if not inserted:
                return False
            rows = []
            for kind, name, entries in plain_histories(content):
                history_id = uuid.uuid4()
                sealed = self.cipher.seal(entries, LEGACY_HISTORY_ENTRIES.field(history_id))
                rows.append((history_id, key, kind, name, user_id, sealed))
            await conn.executemany(
                "INSERT INTO legacy_histories (history_id, legacy_key, kind, name, user_id, entries_sealed) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                rows,
            )
            if event is not None:
                await outbox.enqueue(
                    conn, event, ordering_key=event.session_id, cipher=self.cipher, topology=self.topology
                )
            return True

    async def remove_unused_guest(self, user_id: uuid.UUID) -> None:
        """A guest made for a migration that another request recorded first."""
        await self.pool.execute(
            "DELETE FROM users WHERE user_id = $1 AND guest "
            "AND NOT EXISTS (SELECT 1 FROM legacy_migrations WHERE user_id = $1)",
            user_id,
        )


def _already(done: MigrationRecord) -> MigrationResult:
    return MigrationResult(Outcome.ALREADY_MIGRATED, done.user_id, False, done.session_count, done.message_count)


def chat_session_id(key: bytes) -> uuid.UUID:
    """The chat session a legacy session's free chat becomes."""
    return uuid.uuid5(_NAMESPACE, "chat-session:" + key.hex())


def chat_event(key: bytes, user_id: uuid.UUID, content: LegacyContent) -> events_pb2.LegacyChatHistory:
    event = events_pb2.LegacyChatHistory(
        event_id=str(uuid.uuid5(_NAMESPACE, "chat-history:" + key.hex())),
        user_id=str(user_id),
        session_id=str(chat_session_id(key)),
        partner=content.chat_partner,
        situation=content.chat_situation,
    )
    for exchange in content.chat:
        item = event.exchanges.add(learner_text=exchange.learner, reply_text=exchange.reply)
        if exchange.at is not None:
            item.occurred_at.FromDatetime(exchange.at)
    event.occurred_at.FromDatetime(datetime.now(UTC))
    return event


class LegacyNotMoved(DomainError):
    """The legacy session named cannot be moved (none, empty, refused): FAILED_PRECONDITION."""

    http_status = 409
    grpc_code_name = "FAILED_PRECONDITION"
    error_code = "legacy_session_not_moved"


class LegacyElsewhere(DomainError):
    """The legacy session was moved to an account other than the caller's."""

    http_status = 409
    grpc_code_name = "ALREADY_EXISTS"
    error_code = "legacy_session_moved_elsewhere"


class SignInRequired(DomainError):
    """The account the legacy session moved to has its own sign-in now."""

    http_status = 403
    grpc_code_name = "PERMISSION_DENIED"
    error_code = "sign_in_required"


@dataclass(frozen=True)
class Visit:
    """What a browser's legacy cookie comes to: the guest to sign in as (None: sign in as
    without it), and whether the cookie has served its purpose (the page clears it)."""

    user: User | None
    settled: bool


class LegacyMigrator:
    def __init__(
        self,
        store: LegacySessionStore,
        repository: LegacyRepository,
        users: AuthRepository,
        *,
        secret_key: str,
        timezone: str,
        events_written: Callable[[], None] = lambda: None,
    ):
        self.store = store
        self.repository = repository
        self.users = users
        self.secret_key = secret_key
        self.timezone = timezone
        # Called after a migration wrote its event to the outbox (the relay publishes at once).
        self.events_written = events_written

    async def migrate(self, session_id: str, *, to_user: User | None = None, dry_run: bool = False) -> MigrationResult:
        """Move one legacy session to `to_user`, or to a new guest; moving it again changes
        nothing. A dry run reads and converts, and writes nothing."""
        key = legacy_key(session_id)
        try:
            result = await self._migrate(key, session_id, to_user, dry_run)
        except LegacySessionRefused as refused:
            outcome = Outcome.SKIPPED_UNSAFE if refused.reason == "unsafe" else Outcome.FAILED
            # The id is a credential: the log names the session by a prefix of its hash.
            log.warning(
                "legacy session not moved",
                extra={"legacy_key": key.hex()[:16], "outcome": outcome.value, "detail": str(refused)},
            )
            result = MigrationResult(outcome, detail=str(refused))
        if not dry_run:
            LEGACY_SESSIONS.labels(result.outcome.value).inc()
        return result

    async def _migrate(self, key: bytes, session_id: str, to_user: User | None, dry_run: bool) -> MigrationResult:
        done = await self.repository.find(key)
        if done is not None:
            return _already(done)
        data = await self.store.get(session_id)
        if data is None:
            return MigrationResult(Outcome.NOT_FOUND)
        content = convert(decode_session(data), self.timezone)
        if content.empty:
            return MigrationResult(Outcome.SKIPPED_EMPTY)
        sessions, messages = content.session_count, content.message_count
        if dry_run:
            user_id = to_user.user_id if to_user else None
            return MigrationResult(Outcome.MIGRATED, user_id, to_user is None, sessions, messages)
        user = to_user or await self.users.create_user(
            email=None, password_hash=None, display_name=LEGACY_GUEST_NAME, guest=True, language=LEGACY_LANGUAGE
        )
        event = chat_event(key, user.user_id, content) if content.chat else None
        recorded = await self.repository.record(
            key,
            user_id=user.user_id,
            created_user=to_user is None,
            content=content,
            chat_session_id=uuid.UUID(event.session_id) if event else None,
            event=event,
        )
        if not recorded:  # moved at the same moment by another request: that one counts
            if to_user is None:
                await self.repository.remove_unused_guest(user.user_id)
            done = await self.repository.find(key)
            assert done is not None  # recorded, and records are only removed with their user
            return _already(done)
        if event is not None:
            self.events_written()
        return MigrationResult(Outcome.MIGRATED, user.user_id, to_user is None, sessions, messages)

    def session_id(self, cookie: str) -> str | None:
        return session_id_from_cookie(cookie[:4096], self.secret_key)

    async def visit(self, cookie: str, signed_in: User | None) -> Visit:
        """A page load with the legacy cookie: its session moves to the signed-in user, or to a
        guest the browser then signs in as (the same guest every time). Anything that stops it
        (no such session, refused, the legacy store down) leaves the visit as it would be
        without the cookie, and the cookie in place for a later try."""
        session_id = self.session_id(cookie)
        if session_id is None:
            return Visit(None, settled=False)
        try:
            result = await self.migrate(session_id, to_user=signed_in)
        except aioredis.RedisError:
            # Signing in does not wait for the legacy store (the database's errors do stop it).
            log.warning("legacy store unavailable: the session moves on a later visit", exc_info=True)
            return Visit(None, settled=False)
        if result.outcome not in (Outcome.MIGRATED, Outcome.ALREADY_MIGRATED):
            return Visit(None, settled=False)
        if signed_in is not None or result.user_id is None:
            return Visit(None, settled=True)
        user = await self.users.user(result.user_id)
        # A legacy cookie signs in to its guest only: an account with its own sign-in now
        # (registered since) is not opened by an old cookie.
        return Visit(user if user is not None and user.guest else None, settled=True)

    async def migrate_for_caller(self, cookie: str, caller: User | None) -> MigrationResult:
        """MigrateLegacySession: the session moves to the caller, or to a new guest without
        one; errors say why it did not."""
        session_id = self.session_id(cookie)
        if session_id is None:
            raise LegacyNotMoved("legacy_session_id is not a legacy session cookie (or its signature is wrong)")
        result = await self.migrate(session_id, to_user=caller)
        if result.outcome is Outcome.ALREADY_MIGRATED:
            if caller is not None and result.user_id != caller.user_id:
                raise LegacyElsewhere("this legacy session was moved to another account")
            if caller is None:
                owner = await self.users.user(result.user_id) if result.user_id else None
                if owner is None or not owner.guest:
                    raise SignInRequired("this legacy session was moved to an account: sign in to it")
            return result
        if result.outcome is Outcome.MIGRATED:
            return result
        raise LegacyNotMoved(
            {
                Outcome.NOT_FOUND: "no such legacy session (it expired, or never was)",
                Outcome.SKIPPED_EMPTY: "the legacy session holds no conversation",
                Outcome.SKIPPED_UNSAFE: "the legacy session holds something other than plain data: refused",
            }.get(result.outcome, "the legacy session cannot be read")
        )


def build_migrator(
    settings: AuthSettings,
    pool: asyncpg.Pool,
    cipher: Cipher,
    users: AuthRepository,
    legacy_redis: aioredis.Redis,
    events_written: Callable[[], None] = lambda: None,
) -> LegacyMigrator:
    return LegacyMigrator(
        LegacySessionStore(legacy_redis, settings.legacy_session_key_prefix, settings.legacy_session_max_bytes),
        # The batch job writes for the namespace the running service's relay publishes.
        LegacyRepository(pool, cipher, topology=DEFAULT.with_suffix(settings.pubsub_name_suffix)),
        users,
        secret_key=settings.legacy_secret_key.get_secret_value(),
        timezone=settings.legacy_timezone,
        events_written=events_written,
    )
