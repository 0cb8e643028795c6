"""Accounts and tokens: guests, registration, sign-in, refresh with rotation, sign-out.

Access tokens are ES256 JWTs of `access_token_ttl_s` that every service verifies against the
published keys. Refresh tokens are random, stored only as hashes, and used once: each use
gives a new one of the same family, and a token presented a second time (it was copied) ends
every session of that family.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import time
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from workplace_kit.accounts import DISPLAY_NAME_MAX_CHARS, EMAIL_MAX_CHARS, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS
from workplace_kit.errors import DomainError, InvalidInput, NotFound

from .keys import KeyStore
from .repository import AuthRepository, EmailTaken, User
from .settings import AuthSettings

log = logging.getLogger(__name__)

# Read the same by Python and by JSON Schema (ECMA) regexes: control characters are spelled out,
# as the two disagree on which of them \s matches.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f.]+(\.[^@\s\x00-\x1f\x7f-\x9f.]+)+$"
_EMAIL = re.compile(EMAIL_PATTERN)
# No control characters (tabs, line breaks, NUL...) in a name shown to others.
NAME_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
LANGUAGES = ("ja", "en")
GUEST_NAME = {"ja": "ゲスト", "en": "Guest"}


class AuthFailed(DomainError):
    """Wrong credentials or a refresh token that cannot be used: 401 / UNAUTHENTICATED (no
    WWW-Authenticate: these are not bearer-token failures)."""

    http_status = 401
    grpc_code_name = "UNAUTHENTICATED"
    error_code = "unauthenticated"


class Conflict(DomainError):
    http_status = 409
    grpc_code_name = "ALREADY_EXISTS"
    error_code = "conflict"


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires_in: int
    refresh_token: str
    user: User


def _hash_refresh(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _clean_name(raw: str, default: str) -> str:
    name = unicodedata.normalize("NFC", raw).strip()
    if not name:
        return default
    if len(name) > DISPLAY_NAME_MAX_CHARS or any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInput(
            f"display_name must be at most {DISPLAY_NAME_MAX_CHARS} characters, without control characters",
            field="display_name",
        )
    return name


class AuthService:
    def __init__(self, settings: AuthSettings, repository: AuthRepository, keys: KeyStore):
        self.settings = settings
        self.repository = repository
        self.keys = keys
        self.hasher = PasswordHasher()  # argon2id with the library's current parameters
        # Checked when an email is unknown, so a wrong email costs as long as a wrong password.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))

    # -- validation

    def _email(self, raw: str) -> str:
        if len(raw) > EMAIL_MAX_CHARS or not _EMAIL.match(raw):
            raise InvalidInput("email is not a valid address", field="email")
        return raw.lower()

    @staticmethod
    def _password(raw: str) -> str:
        if not PASSWORD_MIN_CHARS <= len(raw) <= PASSWORD_MAX_CHARS:
            raise InvalidInput(
                f"password must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters long", field="password"
            )
        return raw

    @staticmethod
    def _language(raw: str) -> str:
        if raw and raw not in LANGUAGES:
            raise InvalidInput("language must be 'ja' or 'en'", field="language")
        return raw or "ja"

    # -- tokens

    async def _access_token(self, user: User) -> str:
        key = await self.keys.current()
        now = int(time.time())
        claims = {
            "iss": self.settings.auth_issuer,
            "aud": self.settings.auth_audience,
            "sub": str(user.user_id),
            "iat": now,
            "nbf": now,
            "exp": now + self.settings.access_token_ttl_s,
            "jti": uuid.uuid4().hex,
            "guest": user.guest,
            "scope": "learner",
        }
        return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})

    async def _issue(self, user: User) -> Tokens:
        """Tokens of a new sign-in: an access token and the first refresh token of a family."""
        refresh = secrets.token_urlsafe(32)
        await self.repository.add_refresh_token(
            _hash_refresh(refresh),
            family_id=uuid.uuid4(),
            user_id=user.user_id,
            expires_at=datetime.now(UTC) + timedelta(seconds=self.settings.refresh_token_ttl_s),
        )
        return Tokens(await self._access_token(user), self.settings.access_token_ttl_s, refresh, user)

    # -- use cases

    async def guest(self, *, display_name: str = "", language: str = "") -> Tokens:
        lang = self._language(language)
        user = await self.repository.create_user(
            email=None,
            password_hash=None,
            display_name=_clean_name(display_name, GUEST_NAME[lang]),
            guest=True,
            language=lang,
        )
        return await self._issue(user)

    async def register(self, *, email: str, password: str, display_name: str, language: str = "") -> Tokens:
        lang = self._language(language)
        address = self._email(email)
        name = _clean_name(display_name, address.split("@")[0][:40])
        password_hash = await asyncio.to_thread(self.hasher.hash, self._password(password))
        try:
            user = await self.repository.create_user(
                email=address, password_hash=password_hash, display_name=name, guest=False, language=lang
            )
        except EmailTaken:
            raise Conflict("an account with this email already exists; sign in instead", field="email") from None
        return await self._issue(user)

    async def upgrade(self, user_id: str, *, email: str, password: str, display_name: str) -> Tokens:
        """A guest keeps their id, and so every session and analysis, as a full account."""
        address = self._email(email)
        password_hash = await asyncio.to_thread(self.hasher.hash, self._password(password))
        current = await self._user(user_id)
        if not current.guest:
            raise Conflict("this account is already registered")
        try:
            user = await self.repository.upgrade_guest(
                current.user_id,
                email=address,
                password_hash=password_hash,
                display_name=_clean_name(display_name, current.display_name),
            )
        except EmailTaken:
            raise Conflict("an account with this email already exists; sign in instead", field="email") from None
        if user is None:
            raise Conflict("this account is already registered")
        await self.repository.revoke_all(user.user_id)  # the guest's refresh tokens said guest
        return await self._issue(user)

    async def login(self, *, email: str, password: str) -> Tokens:
        found = await self.repository.credentials(email.strip().lower())
        stored = found[1] if found else None
        try:
            await asyncio.to_thread(self.hasher.verify, stored or self._dummy_hash, password)
            ok = found is not None and stored is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or found is None or stored is None:
            raise AuthFailed("the email or the password is wrong")
        user = found[0]
        if self.hasher.check_needs_rehash(stored):
            await self.repository.set_password_hash(user.user_id, await asyncio.to_thread(self.hasher.hash, password))
        await self.repository.seen(user.user_id)
        return await self._issue(user)

    async def refresh(self, refresh_token: str) -> Tokens:
        new = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(seconds=self.settings.refresh_token_ttl_s)
        row, rotated = await self.repository.rotate_refresh_token(
            _hash_refresh(refresh_token), _hash_refresh(new), expires_at=expires
        )
        if row is None:
            raise AuthFailed("the refresh token is not valid; sign in again")
        if not rotated:
            if row.used_at is not None:
                log.warning("refresh token reused: its family is revoked", extra={"user_id": str(row.user_id)})
                raise AuthFailed("this sign-in was used from somewhere else and has been ended; sign in again")
            raise AuthFailed("the sign-in has expired or was ended; sign in again")
        user = await self.repository.user(row.user_id)
        if user is None:
            raise AuthFailed("the account no longer exists")
        await self.repository.seen(user.user_id)
        return Tokens(await self._access_token(user), self.settings.access_token_ttl_s, new, user)

    async def sign_in_as(self, user: User) -> Tokens:
        """Tokens for an account whose owner proved who they are elsewhere (an identity provider)."""
        await self.repository.seen(user.user_id)
        return await self._issue(user)

    async def logout(self, refresh_token: str) -> None:
        """Ends the sign-in the token belongs to (its whole family); unknown tokens: no-op."""
        await self.repository.revoke_family_of(_hash_refresh(refresh_token))

    async def _user(self, raw_id: str) -> User:
        try:
            user_id = uuid.UUID(raw_id)
        except ValueError:
            raise NotFound("no such user") from None
        user = await self.repository.user(user_id)
        if user is None:
            raise NotFound("no such user")
        return user

    async def get_user(self, user_id: str) -> User:
        return await self._user(user_id)
