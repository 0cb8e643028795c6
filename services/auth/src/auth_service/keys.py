"""ES256 signing keys: created, rotated and published (JWKS) through the database, so every
replica of the auth service signs with the same key and publishes the same set."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from workplace_kit.crypto import Cipher, SealedColumn

# The private keys are stored sealed (`python -m auth_service reencrypt` rewrites them).
PRIVATE_PEM = SealedColumn(
    table="signing_keys",
    column="private_pem",
    key="kid",
    sealed="private_pem_sealed",
    plain="private_pem",
    plain_is_bytes=True,
)


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: ec.EllipticCurvePrivateKey


def _new_key() -> tuple[str, bytes, dict[str, Any]]:
    private = ec.generate_private_key(ec.SECP256R1())
    public_der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    kid = base64.urlsafe_b64encode(hashlib.sha256(public_der).digest()[:12]).decode().rstrip("=")
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": "ES256"})
    return kid, pem, jwk


class KeyStore:
    def __init__(self, pool: asyncpg.Pool, *, cipher: Cipher, token_ttl_s: int, publish_lead_s: float = 60):
        self.pool = pool
        self.cipher = cipher
        # A superseded key stays published this long: every token it signed has expired by then.
        self.publish_after_rotation = timedelta(seconds=token_ttl_s + 300)
        # A new key is published this long before it signs: longer than a verifier waits
        # between two JWKS fetches (the kit's refetch_min_interval_s, 30 s).
        self.publish_lead = timedelta(seconds=publish_lead_s)
        self._current: SigningKey | None = None

    async def ensure_key(self) -> None:
        """At start: a first key if there is none (two replicas starting together make one)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('auth:signing_keys'))")
            if not await conn.fetchval("SELECT 1 FROM signing_keys WHERE superseded_at IS NULL"):
                await self._insert(conn, datetime.now(UTC))  # nobody has cached a JWKS yet

    async def rotate(self) -> str:
        """A new key, published now and signing after the lead time; the key it replaces signs
        until then and stays in the JWKS until the last token it signed has expired."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('auth:signing_keys'))")
            switch = datetime.now(UTC) + self.publish_lead
            await conn.execute(
                "UPDATE signing_keys SET superseded_at = $1, retire_at = $2 WHERE superseded_at IS NULL",
                switch,
                switch + self.publish_after_rotation,
            )
            kid = await self._insert(conn, switch)
        self._current = None
        return kid

    async def _insert(self, conn: asyncpg.Connection, signs_from: datetime) -> str:
        kid, pem, jwk = _new_key()
        await conn.execute(
            "INSERT INTO signing_keys (kid, private_pem_sealed, public_jwk, signs_from) VALUES ($1, $2, $3::jsonb, $4)",
            kid,
            self.cipher.seal(pem, PRIVATE_PEM.field(kid)),
            json.dumps(jwk),
            signs_from,
        )
        return kid

    async def current(self) -> SigningKey:
        """The key that signs now: the newest whose time to sign has come."""
        row = await self.pool.fetchrow(
            "SELECT kid, private_pem, private_pem_sealed FROM signing_keys WHERE signs_from <= now() "
            "ORDER BY signs_from DESC LIMIT 1"
        )
        if row is None:
            await self.ensure_key()
            return await self.current()
        if self._current is None or self._current.kid != row["kid"]:
            sealed = row["private_pem_sealed"]
            if sealed is not None:
                await self.cipher.ensure_keys([sealed])
                pem = self.cipher.open(sealed, PRIVATE_PEM.field(row["kid"]))
            else:
                pem = bytes(row["private_pem"])  # from before encryption, not re-encrypted yet
            private = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(private, ec.EllipticCurvePrivateKey)
            self._current = SigningKey(row["kid"], private)
        return self._current

    async def jwks(self) -> dict[str, list[dict[str, Any]]]:
        rows = await self.pool.fetch(
            "SELECT public_jwk FROM signing_keys WHERE retire_at IS NULL OR retire_at > now() ORDER BY created_at DESC"
        )
        return {"keys": [json.loads(r["public_jwk"]) for r in rows]}
