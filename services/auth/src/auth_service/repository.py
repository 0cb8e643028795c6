"""Users and refresh tokens in PostgreSQL (schema "auth")."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import asyncpg


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


_USER_COLUMNS = "user_id, email, display_name, guest, preferred_language, created_at, last_seen_at"


class AuthRepository:
    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def create_user(
        self, *, email: str | None, password_hash: str | None, display_name: str, guest: bool, language: str
    ) -> User:
        try:
            row = await self.pool.fetchrow(
                f"INSERT INTO users (user_id, email, password_hash, display_name, guest, preferred_language) "
                f"VALUES ($1, $2, $3, $4, $5, $6) RETURNING {_USER_COLUMNS}",
                uuid.uuid4(),
                email,
                password_hash,
                display_name,
                guest,
                language,
            )
        except asyncpg.UniqueViolationError:
            raise EmailTaken(email) from None
        return User(**dict(row))

    async def upgrade_guest(
        self, user_id: uuid.UUID, *, email: str, password_hash: str | None, display_name: str
    ) -> User | None:
        """The guest becomes a full account (same id, so every session stays theirs); no
        password_hash: it signs in with an identity provider only."""
        try:
            row = await self.pool.fetchrow(
                f"UPDATE users SET email = $2, password_hash = $3, display_name = $4, guest = false "
                f"WHERE user_id = $1 AND guest RETURNING {_USER_COLUMNS}",
                user_id,
                email,
                password_hash,
                display_name,
            )
        except asyncpg.UniqueViolationError:
            raise EmailTaken(email) from None
        return User(**dict(row)) if row else None

    async def user(self, user_id: uuid.UUID) -> User | None:
        row = await self.pool.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE user_id = $1", user_id)
        return User(**dict(row)) if row else None

    async def credentials(self, email: str) -> tuple[User, str | None] | None:
        row = await self.pool.fetchrow(f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE email = $1", email)
        if row is None:
            return None
        values = dict(row)
        password_hash = values.pop("password_hash")
        return User(**values), password_hash

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
