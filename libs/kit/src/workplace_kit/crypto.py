"""Encryption of stored personal data: AES-256-GCM with envelope keys.

Each service encrypts values with a data-encryption key (DEK) of its own, kept in its schema's
``data_keys`` table wrapped (encrypted) by a key-encryption key (KEK) that never enters the
database: a 256-bit key from configuration (``local``) or a Cloud KMS key (``gcp-kms``). A
service starts by unwrapping its DEKs; the current one is the newest wrapped by the current
KEK, made on the spot when there is none (a new KEK means a new DEK).

A sealed value is ``b"\\x01" + DEK id (4 bytes) + nonce (12) + ciphertext and tag``. The
associated data binds it to its place, ``table.column:row id``: a value copied into another
row or column does not decrypt. Lookups of a secret (an email address) go through a blind
index: HMAC-SHA256 under a key derived (HKDF) from each DEK, so an index row tells nothing
without the key.

Rotation (``reencrypt``): every sealed column is rewritten under the current DEK in batches,
one transaction each, plaintext left over from before encryption included; then DEKs of
other KEKs are wrapped again by the current KEK, so the old KEK can leave the configuration.

Writes no primitive: AES-GCM, HKDF and HMAC are the ``cryptography`` package's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import struct
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .config import ConfigError, ServiceSettings

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger(__name__)

FORMAT_VERSION = b"\x01"
_HEADER = struct.Struct(">cI")  # format version, DEK id
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_VERSION = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class CryptoError(Exception):
    """A value cannot be sealed or opened; the message says why (never the value)."""


class NoDataKey(ConfigError):
    """The service has made no data key under the current key-encryption key yet."""


class DecryptionError(CryptoError):
    """Tampered with, moved to another row, or sealed under a key this process does not have."""


# --------------------------------------------------------------------------- KEKs


class KeyEncryptionKeys(Protocol):
    """Wraps and unwraps DEKs. `context` is associated data (the service), so a DEK wrapped
    for one service is refused by another."""

    def current_id(self) -> str:
        """The id of the KEK that wraps new DEKs."""
        ...

    def knows(self, kek_id: str) -> bool: ...

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]:
        """(the id of the KEK used, the wrapped DEK)."""
        ...

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes: ...


def parse_local_keys(spec: str) -> dict[str, bytes]:
    """``v2:<base64>,v1:<base64>`` -> {"v2": key, "v1": key}, the first being current."""
    keys: dict[str, bytes] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        version, sep, encoded = part.partition(":")
        if not sep or not _KEY_VERSION.match(version):
            raise ConfigError("encryption keys: each entry is <version>:<base64 of 32 bytes>")
        try:
            key = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"encryption key {version}: not valid base64") from None
        if len(key) != KEY_BYTES:
            raise ConfigError(f"encryption key {version}: {len(key)} bytes, 32 expected")
        if version in keys:
            raise ConfigError(f"encryption key {version} is listed twice")
        keys[version] = key
    if not keys:
        raise ConfigError("encryption keys: none given")
    return keys


def new_local_key(version: str) -> str:
    """A fresh ``<version>:<base64>`` entry for WP_ENCRYPTION_KEYS."""
    return f"{version}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


class LocalKeys:
    """KEKs from configuration: versioned 256-bit keys, the first current."""

    def __init__(self, keys: dict[str, bytes]):
        if not keys:
            raise ConfigError("encryption keys: none given")
        self._keys = {version: AESGCM(key) for version, key in keys.items()}
        self._current = next(iter(keys))

    def current_id(self) -> str:
        return f"local:{self._current}"

    def knows(self, kek_id: str) -> bool:
        return kek_id.removeprefix("local:") in self._keys and kek_id.startswith("local:")

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        kek_id = self.current_id()
        return kek_id, nonce + self._keys[self._current].encrypt(nonce, dek, context + b"|" + kek_id.encode())

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        if not self.knows(kek_id):
            raise DecryptionError(f"key-encryption key {kek_id} is not configured")
        aead = self._keys[kek_id.removeprefix("local:")]
        try:
            return aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context + b"|" + kek_id.encode())
        except InvalidTag:
            raise DecryptionError(f"data key wrapped by {kek_id} does not open (wrong key or tampered)") from None


class GcpKmsKeys:
    """KEK in Cloud KMS: DEKs are wrapped and unwrapped by the KMS Encrypt and Decrypt calls on
    a symmetric key (``projects/p/locations/l/keyRings/r/cryptoKeys/k``). KMS keeps every key
    version: Decrypt finds the version from the ciphertext, Encrypt uses the primary one.

    Tested through the real google-cloud-kms client against a local stand-in of KMS's gRPC
    service (tests/contract/test_kms_wire.py); never against Cloud KMS itself from here."""

    def __init__(self, key_name: str, client: Any = None):
        if not re.match(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", key_name):
            raise ConfigError("WP_ENCRYPTION_KMS_KEY: projects/<p>/locations/<l>/keyRings/<r>/cryptoKeys/<k> expected")
        self.key_name = key_name
        if client is None:
            from google.cloud import kms  # type: ignore[import-untyped,unused-ignore]  # only where KMS is used

            client = kms.KeyManagementServiceClient()
        self._client = client

    def current_id(self) -> str:
        # The primary version wraps new DEKs: a KMS rotation makes a new primary, hence a new DEK.
        return str(self._client.get_crypto_key(request={"name": self.key_name}).primary.name)

    def knows(self, kek_id: str) -> bool:
        return kek_id.startswith(self.key_name + "/cryptoKeyVersions/")

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]:
        response = self._client.encrypt(
            request={"name": self.key_name, "plaintext": dek, "additional_authenticated_data": context}
        )
        return str(response.name), bytes(response.ciphertext)

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        if not self.knows(kek_id):
            raise DecryptionError(f"data key wrapped by {kek_id}, not by {self.key_name}")
        response = self._client.decrypt(
            request={"name": self.key_name, "ciphertext": wrapped, "additional_authenticated_data": context}
        )
        return bytes(response.plaintext)


def keys_from_settings(settings: ServiceSettings) -> KeyEncryptionKeys:
    """The KEKs the settings name; a ConfigError naming the variable when they are missing."""
    if settings.encryption_kek == "gcp-kms":
        if not settings.encryption_kms_key:
            raise ConfigError("WP_ENCRYPTION_KMS_KEY is required when WP_ENCRYPTION_KEK is gcp-kms")
        return GcpKmsKeys(settings.encryption_kms_key)
    spec = settings.encryption_keys.get_secret_value() if settings.encryption_keys else ""
    if not spec and settings.encryption_keys_file:
        try:
            spec = Path(settings.encryption_keys_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"WP_ENCRYPTION_KEYS_FILE: cannot read {settings.encryption_keys_file}: {exc}") from None
    if not spec:
        raise ConfigError(
            "WP_ENCRYPTION_KEYS (or WP_ENCRYPTION_KEYS_FILE) is required: stored personal data is encrypted; "
            "`python -m workplace_kit.crypto new-key` makes a key"
        )
    return LocalKeys(parse_local_keys(spec))


# --------------------------------------------------------------------------- DEKs, values


@dataclass(frozen=True)
class DataKey:
    dek_id: int
    kek_id: str
    aead: AESGCM
    index_key: bytes  # for blind indexes, derived from the DEK


def _data_key(dek_id: int, kek_id: str, dek: bytes) -> DataKey:
    index_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"workplace blind index v1").derive(dek)
    return DataKey(dek_id, kek_id, AESGCM(dek), index_key)


def key_id_of(sealed: bytes) -> int:
    """The id of the DEK a sealed value was made with (DecryptionError if not a sealed value)."""
    if len(sealed) < _HEADER.size + NONCE_BYTES + 16 or sealed[:1] != FORMAT_VERSION:
        raise DecryptionError("not a sealed value of a known format")
    return int(_HEADER.unpack_from(sealed)[1])


class Cipher:
    """Seals and opens values of one service with its DEKs. Sealing always uses the current
    DEK; opening uses whichever the value names, loading DEKs made since start (by another
    replica after a key change) when one is not known yet."""

    def __init__(
        self,
        keys: dict[int, DataKey],
        current: int,
        *,
        reload: Callable[[], Any] | None = None,
    ):
        if current not in keys:
            raise ValueError("the current data key must be among the keys")
        self._keys = dict(keys)
        self.current = keys[current]
        self._reload = reload
        self._reload_lock = asyncio.Lock()
        self._last_reload = 0.0

    @property
    def key_ids(self) -> list[int]:
        return sorted(self._keys)

    @staticmethod
    def _aad(header: bytes, field: str) -> bytes:
        return header + field.encode()

    def seal(self, value: str | bytes, field: str) -> bytes:
        """Encrypt `value` for `field` (``table.column:row id``) under the current DEK."""
        data = value.encode() if isinstance(value, str) else value
        header = _HEADER.pack(FORMAT_VERSION, self.current.dek_id)
        nonce = os.urandom(NONCE_BYTES)
        return header + nonce + self.current.aead.encrypt(nonce, data, self._aad(header, field))

    def open(self, sealed: bytes, field: str) -> bytes:
        dek_id = key_id_of(sealed)
        key = self._keys.get(dek_id)
        if key is None:
            raise DecryptionError(f"data key {dek_id} is not available (its key-encryption key is not configured?)")
        header = sealed[: _HEADER.size]
        nonce = sealed[_HEADER.size : _HEADER.size + NONCE_BYTES]
        try:
            return key.aead.decrypt(nonce, sealed[_HEADER.size + NONCE_BYTES :], self._aad(header, field))
        except InvalidTag:
            raise DecryptionError(f"value for {field.partition(':')[0]} does not open (tampered or moved)") from None

    def open_text(self, sealed: bytes, field: str) -> str:
        return self.open(sealed, field).decode()

    def is_current(self, sealed: bytes) -> bool:
        return key_id_of(sealed) == self.current.dek_id

    def blind_index(self, purpose: str, value: str) -> bytes:
        """The lookup key of `value` under the current DEK (store this one)."""
        return self._index(self.current, purpose, value)

    def blind_indexes(self, purpose: str, value: str) -> list[bytes]:
        """Its lookup keys under every DEK (search with these: rows not yet re-encrypted carry
        an older DEK's)."""
        return [self._index(key, purpose, value) for key in self._keys.values()]

    @staticmethod
    def _index(key: DataKey, purpose: str, value: str) -> bytes:
        return hmac.new(key.index_key, purpose.encode() + b"\x00" + value.encode(), hashlib.sha256).digest()

    async def ensure_keys(self, sealed_values: Iterable[bytes | None]) -> None:
        """Load DEKs these values need that this process has not seen yet (made by another
        replica after a key change); at most one reload a second."""
        missing = {key_id_of(v) for v in sealed_values if v is not None} - self._keys.keys()
        if not missing or self._reload is None:
            return
        async with self._reload_lock:
            if missing - self._keys.keys() and time.monotonic() - self._last_reload > 1.0:
                self._last_reload = time.monotonic()
                fresh: Cipher = await self._reload()
                self._keys.update(fresh._keys)

    async def open_texts(self, items: Sequence[tuple[bytes | None, str | None, str]]) -> list[str | None]:
        """Each (sealed, plaintext from before encryption, field) as text: the sealed value
        opened, else the plaintext (a row the re-encryption has not reached yet)."""
        await self.ensure_keys(sealed for sealed, _, _ in items)
        return [self.open_text(sealed, f) if sealed is not None else plain for sealed, plain, f in items]


def field_of(table: str, column: str, row_id: object) -> str:
    """The associated data of a stored value: which table, column and row it belongs to."""
    return f"{table}.{column}:{row_id}"


_DEK_LOCK = "hashtext('workplace:data_keys')"


def cipher_from_rows(
    rows: Sequence[tuple[int, str, bytes]],
    keks: KeyEncryptionKeys,
    context: str,
    current_kek: str,
    *,
    reload: Callable[[], Any] | None = None,
) -> Cipher:
    """A cipher from the stored DEKs (id, KEK id, wrapped): those whose KEK is configured are
    unwrapped; the current DEK is the newest wrapped by the current KEK."""
    keys: dict[int, DataKey] = {}
    for dek_id, kek_id, wrapped in rows:
        if not keks.knows(kek_id):
            log.warning("data key %s is wrapped by %s, which is not configured", dek_id, kek_id)
            continue
        keys[dek_id] = _data_key(dek_id, kek_id, keks.unwrap(kek_id, wrapped, context.encode()))
    current = [k.dek_id for k in keys.values() if k.kek_id == current_kek]
    if not current:
        raise NoDataKey(f"no data key under the current key-encryption key {current_kek} (run the service once)")
    return Cipher(keys, max(current), reload=reload)


async def _load_cipher(pool: asyncpg.Pool, keks: KeyEncryptionKeys, context: str, *, create: bool) -> Cipher:
    current_kek = await asyncio.to_thread(keks.current_id)  # a KMS call for gcp-kms
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT dek_id, kek_id, wrapped FROM data_keys ORDER BY dek_id")
        if create and not any(r["kek_id"] == current_kek for r in rows):
            async with conn.transaction():
                # Replicas starting together make one DEK, not one each.
                await conn.execute(f"SELECT pg_advisory_xact_lock({_DEK_LOCK})")
                if not await conn.fetchval("SELECT 1 FROM data_keys WHERE kek_id = $1", current_kek):
                    kek_id, wrapped = await asyncio.to_thread(keks.wrap, os.urandom(KEY_BYTES), context.encode())
                    await conn.execute("INSERT INTO data_keys (kek_id, wrapped) VALUES ($1, $2)", kek_id, wrapped)
                    log.info("new data-encryption key", extra={"kek_id": kek_id, "context": context})
            rows = await conn.fetch("SELECT dek_id, kek_id, wrapped FROM data_keys ORDER BY dek_id")
    stored = [(r["dek_id"], r["kek_id"], bytes(r["wrapped"])) for r in rows]
    return await asyncio.to_thread(
        cipher_from_rows,
        stored,
        keks,
        context,
        current_kek,
        reload=lambda: _load_cipher(pool, keks, context, create=False),
    )


async def open_cipher(
    pool: asyncpg.Pool, settings: ServiceSettings, *, context: str | None = None, create: bool = True
) -> Cipher:
    """The service's cipher: its DEKs unwrapped, a DEK under the current KEK made if needed.
    create=False (a process that only opens what its service sealed: a standalone outbox relay):
    a ConfigError instead when there is no DEK under the current KEK yet."""
    return await _load_cipher(pool, keys_from_settings(settings), context or settings.service_name, create=create)


# --------------------------------------------------------------------------- rotation


@dataclass(frozen=True)
class SealedColumn:
    """A sealed column of a service: rewritten by `reencrypt`.

    key: the row id column (also in the associated data); plain: the column that held the
    value before encryption (NULLed once sealed), if any; index: a blind-index column kept
    in step with the value (purpose ``table.column``)."""

    table: str
    column: str
    key: str
    sealed: str
    plain: str | None = None
    index: str | None = None
    plain_is_bytes: bool = False

    def field(self, row_id: object) -> str:
        return field_of(self.table, self.column, row_id)

    @property
    def purpose(self) -> str:
        return f"{self.table}.{self.column}"


@dataclass
class ReencryptSummary:
    rows: dict[str, int] = field(default_factory=dict)  # rewritten per table.column
    rewrapped_keys: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        parts = [f"{name}: {n} rows" for name, n in self.rows.items()]
        return (
            f"re-encrypted under the current key in {self.seconds:.1f}s — "
            + ", ".join(parts)
            + f"; data keys wrapped again by the current key-encryption key: {self.rewrapped_keys}"
        )


def _stale_condition(col: SealedColumn) -> str:
    """Rows not sealed under the current DEK ($1: its 5-byte header)."""
    plain = f"{col.plain} IS NOT NULL OR " if col.plain else ""
    return f"({plain}({col.sealed} IS NOT NULL AND substring({col.sealed} from 1 for 5) <> $1))"


async def reencrypt_column(
    pool: asyncpg.Pool,
    cipher: Cipher,
    col: SealedColumn,
    *,
    batch: int = 500,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Seal every row of `col` not yet under the current DEK; one transaction per batch, rows
    locked while rewritten (a concurrent write waits, then writes under the current DEK).
    Idempotent and resumable: a rerun takes only what is left. Returns the rows rewritten."""
    header = _HEADER.pack(FORMAT_VERSION, cipher.current.dek_id)
    stale = _stale_condition(col)
    total = await pool.fetchval(f"SELECT count(*) FROM {col.table} WHERE {stale}", header)
    plain_sel = col.plain if col.plain else "NULL"
    select = f"SELECT {col.key} AS k, {col.sealed} AS sealed, {plain_sel} AS plain FROM {col.table} WHERE {stale}"
    # Keyset pagination in key order; FOR UPDATE waits for a row being written (and then sees
    # it under the current DEK, so it is passed over) instead of skipping it.
    first = f"{select} ORDER BY {col.key} LIMIT $2 FOR UPDATE"
    following = f"{select} AND {col.key} > $3 ORDER BY {col.key} LIMIT $2 FOR UPDATE"
    done = 0
    after: Any = None
    while True:
        async with pool.acquire() as conn, conn.transaction():
            if after is None:
                rows = await conn.fetch(first, header, batch)
            else:
                rows = await conn.fetch(following, header, batch, after)
            if not rows:
                break
            await cipher.ensure_keys(r["sealed"] for r in rows)
            updates = []
            for r in rows:
                f = col.field(r["k"])
                if r["sealed"] is not None:
                    value: bytes = cipher.open(bytes(r["sealed"]), f)
                else:
                    value = bytes(r["plain"]) if col.plain_is_bytes else str(r["plain"]).encode()
                index = cipher.blind_index(col.purpose, value.decode()) if col.index else None
                updates.append((r["k"], cipher.seal(value, f), index))
            sets = [f"{col.sealed} = $2"]
            if col.plain:
                sets.append(f"{col.plain} = NULL")
            if col.index:
                sets.append(f"{col.index} = $3")
            await conn.executemany(
                f"UPDATE {col.table} SET {', '.join(sets)} WHERE {col.key} = $1",
                [u if col.index else u[:2] for u in updates],
            )
            after = rows[-1]["k"]
        done += len(rows)
        if progress:
            progress(f"{col.purpose}: {done}/{max(total, done)}")
    return done


async def rewrap_keys(pool: asyncpg.Pool, keks: KeyEncryptionKeys, context: str) -> int:
    """Wrap every DEK whose KEK is not the current one again by the current one, so that the
    old KEK can leave the configuration while older values stay readable."""
    ctx = context.encode()
    current_kek = await asyncio.to_thread(keks.current_id)
    rewrapped = 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SELECT pg_advisory_xact_lock({_DEK_LOCK})")
        for row in await conn.fetch("SELECT dek_id, kek_id, wrapped FROM data_keys WHERE kek_id <> $1", current_kek):
            if not keks.knows(row["kek_id"]):
                log.warning("data key %s: its key-encryption key %s is gone; left as is", row["dek_id"], row["kek_id"])
                continue
            dek = await asyncio.to_thread(keks.unwrap, row["kek_id"], bytes(row["wrapped"]), ctx)
            kek_id, wrapped = await asyncio.to_thread(keks.wrap, dek, ctx)
            await conn.execute(
                "UPDATE data_keys SET kek_id = $2, wrapped = $3 WHERE dek_id = $1", row["dek_id"], kek_id, wrapped
            )
            rewrapped += 1
    return rewrapped


async def reencrypt(
    pool: asyncpg.Pool,
    settings: ServiceSettings,
    columns: Sequence[SealedColumn],
    *,
    batch: int = 500,
    progress: Callable[[str], None] | None = None,
) -> ReencryptSummary:
    """Key rotation for one service: every column under the current DEK, then the old DEKs
    wrapped by the current KEK."""
    started = time.monotonic()
    keks = keys_from_settings(settings)
    cipher = await _load_cipher(pool, keks, settings.service_name, create=True)
    summary = ReencryptSummary()
    for col in columns:
        summary.rows[col.purpose] = await reencrypt_column(pool, cipher, col, batch=batch, progress=progress)
    summary.rewrapped_keys = await rewrap_keys(pool, keks, settings.service_name)
    summary.seconds = time.monotonic() - started
    return summary


async def run_reencrypt(
    settings: ServiceSettings, schema: str, columns: Sequence[SealedColumn], migrations_dir: Path
) -> ReencryptSummary:
    """The command behind `python -m <service> reencrypt`: the schema migrated first (the
    command may run before the new version of the service has), progress on one line."""
    from .db import apply_migrations, create_pool

    await apply_migrations(settings.database_url, schema=schema, migrations_dir=migrations_dir)
    pool = await create_pool(settings.database_url, schema=schema, max_size=2)
    try:
        tty = sys.stdout.isatty()

        def show(line: str) -> None:
            print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)

        summary = await reencrypt(pool, settings, columns, progress=show)
        if tty:
            print()
        return summary
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workplace_kit.crypto", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new-key", help="print a new local key-encryption key (<version>:<base64>)")
    new.add_argument("--version", default=None, help="its version label (default: v<unix time>)")
    new.add_argument("--prepend-to", type=Path, help="make it the current key of this keys file (mode 0600)")
    args = parser.parse_args(argv)
    if args.command == "new-key":
        entry = new_local_key(args.version or f"v{int(time.time())}")
        if args.prepend_to:
            path: Path = args.prepend_to
            old = path.read_text().strip() if path.exists() else ""
            fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(entry + ("," + old if old else "") + "\n")
            path.with_suffix(".tmp").replace(path)
            print(f"{entry.partition(':')[0]} is now the current key in {path}")
        else:
            print(entry)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
