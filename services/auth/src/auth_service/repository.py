"""Users and refresh tokens in PostgreSQL (schema "auth")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from workplace_kit.crypto import Cipher, SealedColumn

# Personal data stored encrypted; `python -m auth_service reencrypt` rewrites it (keys.py has
# the signing keys'). Emails are found by their blind index.
EMAIL = SealedColumn(
    table="users", column="email", key="user_id", sealed="email_sealed", plain="email", index="email_index"
)
DISPLAY_NAME = SealedColumn(
    table="users", column="display_name", key="user_id", sealed="display_name_sealed", plain="display_name"
)


@dataclass(frozen=True)
class User:
    user_id: uuid.UUID
    email: str | None
    display_name: str
    guest: bool
    preferred_language: str
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class RefreshRow:
    family_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


class EmailTaken(Exception):
    pass


_USER_COLUMNS = (
    "user_id, email, email_sealed, display_name, display_name_sealed, guest, preferred_language, "
    "created_at, last_seen_at"
)
# A row with this address: by its blind index under any of the service's keys, or in plaintext
# (a row from before encryption). $1: the indexes, $2: the address.
_EMAIL_MATCH = "(email_index = ANY($1::bytea[]) OR email = $2)"


class AuthRepository:
    """Emails and display names are sealed here, on the way in and out."""

    def __init__(self, pool: asyncpg.Pool, cipher: Cipher):
        self.pool = pool
        self.cipher = cipher

    async def _user(self, row: asyncpg.Record) -> User:
        uid = row["user_id"]
        email, name = await self.cipher.open_texts(
            [
                (row["email_sealed"], row["email"], EMAIL.field(uid)),
                (row["display_name_sealed"], row["display_name"], DISPLAY_NAME.field(uid)),
            ]
        )
        return User(
            user_id=uid,
            email=email,
            display_name=name or "",
            guest=row["guest"],
            preferred_language=row["preferred_language"],
            created_at=row["created_at"],
            last_seen_at=row["last_seen_at"],
        )

    def _sealed_email(self, user_id: uuid.UUID, email: str | None) -> tuple[bytes | None, bytes | None]:
        if email is None:
            return None, None
        return self.cipher.seal(email, EMAIL.field(user_id)), self.cipher.blind_index(EMAIL.purpose, email)

    def _email_match_args(self, email: str | None) -> tuple[list[bytes] | None, str | None]:
        if email is None:
            return None, None
        return self.cipher.blind_indexes(EMAIL.purpose, email), email

    async def create_user(
        self, *, email: str | None, password_hash: str | None, display_name: str, guest: bool, language: str
    ) -> User:
        user_id = uuid.uuid4()
        email_sealed, email_index = self._sealed_email(user_id, email)
        try:
            # The unique blind index refuses a second account under the current key; the
            # match also finds rows under an older key or in plaintext (not re-encrypted yet).
            row = await self.pool.fetchrow(
                "INSERT INTO users (user_id, email_sealed, email_index, password_hash, display_name_sealed, guest, "
                "preferred_language) SELECT $3, $4, $5, $6, $7, $8, $9 "
                f"WHERE $1::bytea[] IS NULL OR NOT EXISTS (SELECT 1 FROM users WHERE {_EMAIL_MATCH}) "
                f"RETURNING {_USER_COLUMNS}",
                *self._email_match_args(email),
                user_id,
                email_sealed,
                email_index,
                password_hash,
                self.cipher.seal(display_name, DISPLAY_NAME.field(user_id)),
                guest,
                language,
            )
        except asyncpg.UniqueViolationError:
            raise EmailTaken(email) from None
        if row is None:
            raise EmailTaken(email)
        return await self._user(row)

    async def upgrade_guest(
        self, user_id: uuid.UUID, *, email: str, password_hash: str | None, display_name: str
    ) -> User | None:
        """The guest becomes a full account (same id, so every session stays theirs); no
        password_hash: it signs in with an identity provider only."""
        email_sealed, email_index = self._sealed_email(user_id, email)
        try:
            row = await self.pool.fetchrow(
                "UPDATE users SET email = NULL, email_sealed = $4, email_index = $5, password_hash = $6, "
                "display_name = NULL, display_name_sealed = $7, guest = false WHERE user_id = $3 AND guest "
                f"AND NOT EXISTS (SELECT 1 FROM users WHERE {_EMAIL_MATCH} AND user_id <> $3) "
                f"RETURNING {_USER_COLUMNS}",
                *self._email_match_args(email),
                user_id,
                email_sealed,
                email_index,
                password_hash,
                self.cipher.seal(display_name, DISPLAY_NAME.field(user_id)),
            )
        except asyncpg.UniqueViolationError:
            raise EmailTaken(email) from None
        if row is None:
            # Not a guest, or the address is another account's (only this path pays for asking).
            if await self.pool.fetchval(
                f"SELECT 1 FROM users WHERE {_EMAIL_MATCH} AND user_id <> $3", *self._email_match_args(email), user_id
            ):
                raise EmailTaken(email)
            return None
        return await self._user(row)

    async def user(self, user_id: uuid.UUID) -> User | None:
        row = await self.pool.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = $1", user_id)
        return await self._user(row) if row else None

    async def credentials(self, email: str) -> tuple[User, str | None] | None:
        row = await self.pool.fetchrow(
            f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE {_EMAIL_MATCH}", *self._email_match_args(email)
        )
        if row is None:
            return None
        return await self._user(row), row["password_hash"]

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        await self.pool.execute("UPDATE users SET password_hash = $2 WHERE user_id = $1", user_id, password_hash)

    async def seen(self, user_id: uuid.UUID) -> None:
        await self.pool.execute("UPDATE users SET last_seen_at = now() WHERE user_id = $1", user_id)

    async def add_refresh_token(
        self, token_hash: bytes, *, family_id: uuid.UUID, user_id: uuid.UUID, expires_at: datetime
    ) -> None:
        await self.pool.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) VALUES ($1, $2, $3, $4)",
            token_hash,
            family_id,
            user_id,
            expires_at,
        )

    async def rotate_refresh_token(
        self, token_hash: bytes, new_hash: bytes, *, expires_at: datetime
    ) -> tuple[RefreshRow | None, bool]:
        """Use a refresh token once: (its row, True) when it was fresh and the new token of its
        family is stored; (row, False) when it was not usable, the family then being revoked
        if the token had been used before (reuse: it was stolen); (None, False) if unknown."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT family_id, user_id, expires_at, used_at, revoked_at, expires_at <= now() AS expired "
                "FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
                token_hash,
            )
            if row is None:
                return None, False
            values = dict(row)
            expired = values.pop("expired")
            found = RefreshRow(**values)
            if found.used_at is not None:
                await conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
                    found.family_id,
                )
                return found, False
            if found.revoked_at is not None or expired:
                return found, False
            await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE token_hash = $1", token_hash)
            await conn.execute(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at) VALUES ($1, $2, $3, $4)",
                new_hash,
                found.family_id,
                found.user_id,
                expires_at,
            )
            return found, True

    async def revoke_family_of(self, token_hash: bytes) -> bool:
        result = await self.pool.execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND family_id = "
            "(SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
            token_hash,
        )
        return not result.endswith(" 0")

    async def revoke_all(self, user_id: uuid.UUID) -> None:
        await self.pool.execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", user_id
        )
