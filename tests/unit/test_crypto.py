"""workplace_kit.crypto without a database: sealing, opening, KEKs, blind indexes, rotation."""

from __future__ import annotations

import base64
import os
import timeit

import pytest
from workplace_kit.config import ConfigError, ServiceSettings
from workplace_kit.crypto import (
    Cipher,
    DecryptionError,
    GcpKmsKeys,
    LocalKeys,
    cipher_from_rows,
    field_of,
    key_id_of,
    keys_from_settings,
    main,
    parse_local_keys,
)

FIELD = field_of("messages", "text", "7f1c0a4e-0000-4000-8000-000000000001")


def _b64() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _cipher(keks: LocalKeys, rows: list[tuple[int, str, bytes]] | None = None, context: str = "chat") -> Cipher:
    """A cipher as a service builds it: a DEK per KEK, wrapped, then unwrapped from the rows."""
    rows = list(rows or [])
    if not any(kek_id == keks.current_id() for _, kek_id, _ in rows):
        kek_id, wrapped = keks.wrap(os.urandom(32), context.encode())
        rows.append((len(rows) + 1, kek_id, wrapped))
    return cipher_from_rows(rows, keks, context, keks.current_id())


@pytest.fixture
def v1() -> LocalKeys:
    return LocalKeys(parse_local_keys(f"v1:{_b64()}"))


def test_round_trip_text_and_bytes(v1):
    cipher = _cipher(v1)
    sealed = cipher.seal("社内の秘密: 来週やめます", FIELD)
    assert "来週".encode() not in sealed and sealed[:1] == b"\x01"
    assert cipher.open_text(sealed, FIELD) == "社内の秘密: 来週やめます"
    assert cipher.open(cipher.seal(b"\x00\xffpem", FIELD), FIELD) == b"\x00\xffpem"
    # A fresh nonce each time: the same value never seals to the same bytes.
    assert cipher.seal("same", FIELD) != cipher.seal("same", FIELD)
    assert key_id_of(sealed) == cipher.current.dek_id


def test_tampering_fails(v1):
    cipher = _cipher(v1)
    sealed = bytearray(cipher.seal("hello", FIELD))
    for position in (len(sealed) - 1, 10, 20):  # tag, nonce, ciphertext
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptionError):
            cipher.open(bytes(tampered), FIELD)
    with pytest.raises(DecryptionError):
        cipher.open(bytes(sealed[:-1]), FIELD)
    with pytest.raises(DecryptionError, match="format"):
        cipher.open(b"\x02" + bytes(sealed[1:]), FIELD)
    with pytest.raises(DecryptionError, match="format"):
        cipher.open(b"plain text from before", FIELD)


def test_a_value_moved_to_another_row_or_column_does_not_open(v1):
    cipher = _cipher(v1)
    sealed = cipher.seal("hello", FIELD)
    with pytest.raises(DecryptionError):
        cipher.open(sealed, field_of("messages", "text", "another-row"))
    with pytest.raises(DecryptionError):
        cipher.open(sealed, field_of("turn_analyses", "text", "7f1c0a4e-0000-4000-8000-000000000001"))


def test_wrong_key_fails(v1):
    sealed = _cipher(v1).seal("hello", FIELD)
    other = _cipher(LocalKeys(parse_local_keys(f"v1:{_b64()}")))  # same DEK id, another key
    assert other.current.dek_id == key_id_of(sealed)
    with pytest.raises(DecryptionError):
        other.open(sealed, FIELD)


def test_dek_wrapped_for_one_service_does_not_unwrap_for_another(v1):
    kek_id, wrapped = v1.wrap(os.urandom(32), b"chat")
    with pytest.raises(DecryptionError):
        v1.unwrap(kek_id, wrapped, b"feedback")


def test_rotation_reads_old_values_and_seals_under_the_new_key():
    old_key, new_key = _b64(), _b64()
    before = LocalKeys(parse_local_keys(f"v1:{old_key}"))
    kek_id, wrapped = before.wrap(os.urandom(32), b"chat")
    rows = [(1, kek_id, wrapped)]
    old_sealed = cipher_from_rows(rows, before, "chat", before.current_id()).seal("old words", FIELD)

    both = LocalKeys(parse_local_keys(f"v2:{new_key},v1:{old_key}"))
    assert both.current_id() == "local:v2"
    rotated = _cipher(both, rows)
    assert rotated.key_ids == [1, 2] and rotated.current.dek_id == 2
    assert rotated.open_text(old_sealed, FIELD) == "old words"
    assert not rotated.is_current(old_sealed)
    new_sealed = rotated.seal("old words", FIELD)
    assert rotated.is_current(new_sealed)

    # Without v1 and before re-wrapping, DEK 1 is gone: its values name it in the error.
    only_new = LocalKeys(parse_local_keys(f"v2:{new_key}"))
    dek2 = (2, *both.wrap(os.urandom(32), b"chat"))
    without_old = cipher_from_rows([*rows, dek2], only_new, "chat", only_new.current_id())
    with pytest.raises(DecryptionError, match="data key 1 is not available"):
        without_old.open(old_sealed, FIELD)


def test_blind_index_is_keyed_and_stable():
    cipher = _cipher(LocalKeys(parse_local_keys(f"v1:{_b64()}")))
    index = cipher.blind_index("users.email", "ann@example.com")
    assert index == cipher.blind_index("users.email", "ann@example.com") and len(index) == 32
    assert index != cipher.blind_index("users.email", "bob@example.com")
    assert index != cipher.blind_index("users.other", "ann@example.com")
    assert cipher.blind_indexes("users.email", "ann@example.com") == [index]
    other = _cipher(LocalKeys(parse_local_keys(f"v1:{_b64()}")))
    assert other.blind_index("users.email", "ann@example.com") != index


class FakeKms:
    """Our KeyEncryptionKeys interface as a KMS key behaves: versions named like Cloud KMS's,
    the primary wrapping new DEKs, every version still unwrapping."""

    name = "projects/p/locations/global/keyRings/r/cryptoKeys/k"

    def __init__(self) -> None:
        self.versions: dict[str, LocalKeys] = {}
        self.calls: list[str] = []
        self.rotate()

    def rotate(self) -> None:
        version = f"{self.name}/cryptoKeyVersions/{len(self.versions) + 1}"
        self.versions[version] = LocalKeys({"k": os.urandom(32)})
        self.primary = version

    def current_id(self) -> str:
        return self.primary

    def knows(self, kek_id: str) -> bool:
        return kek_id in self.versions

    def wrap(self, dek: bytes, context: bytes) -> tuple[str, bytes]:
        self.calls.append("encrypt")
        return self.primary, self.versions[self.primary].wrap(dek, context)[1]

    def unwrap(self, kek_id: str, wrapped: bytes, context: bytes) -> bytes:
        self.calls.append("decrypt")
        return self.versions[kek_id].unwrap("local:k", wrapped, context)


def test_a_kms_key_wraps_the_data_keys():
    kms = FakeKms()
    rows: list[tuple[int, str, bytes]] = [(1, *kms.wrap(os.urandom(32), b"auth"))]
    first = cipher_from_rows(rows, kms, "auth", kms.current_id())
    sealed = first.seal("ann@example.com", FIELD)
    kms.rotate()  # a new primary version: the service makes a DEK under it
    rows.append((2, *kms.wrap(os.urandom(32), b"auth")))
    kms.calls.clear()
    second = cipher_from_rows(rows, kms, "auth", kms.current_id())
    assert second.current.dek_id == 2 and kms.calls == ["decrypt", "decrypt"]  # one KMS call per DEK, at start
    assert second.open_text(sealed, FIELD) == "ann@example.com"
    assert kms.calls == ["decrypt", "decrypt"]  # values never go to KMS


def test_kms_settings_are_checked_before_any_call():
    with pytest.raises(ConfigError, match="WP_ENCRYPTION_KMS_KEY"):
        keys_from_settings(ServiceSettings(encryption_kek="gcp-kms"))
    with pytest.raises(ConfigError, match="cryptoKeys"):
        GcpKmsKeys("projects/p/keyRings/r")


def test_local_keys_from_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("WP_ENCRYPTION_KEYS", raising=False)
    monkeypatch.delenv("WP_ENCRYPTION_KEYS_FILE", raising=False)
    with pytest.raises(ConfigError, match="WP_ENCRYPTION_KEYS"):
        keys_from_settings(ServiceSettings())
    key_file = tmp_path / "keys"
    assert main(["new-key", "--version", "v1", "--prepend-to", str(key_file)]) == 0
    assert main(["new-key", "--version", "v2", "--prepend-to", str(key_file)]) == 0
    assert key_file.stat().st_mode & 0o777 == 0o600
    keks = keys_from_settings(ServiceSettings(encryption_keys_file=str(key_file)))
    assert keks.current_id() == "local:v2" and keks.knows("local:v1") and not keks.knows("local:v3")
    monkeypatch.setenv("WP_ENCRYPTION_KEYS", f"v7:{_b64()}")
    assert keys_from_settings(ServiceSettings()).current_id() == "local:v7"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "none given"),
        ("v1", "<version>:<base64"),
        ("v1:not base64!", "not valid base64"),
        (f"v1:{base64.b64encode(b'short').decode()}", "32 expected"),
        (f"v1:{_b64()},v1:{_b64()}", "twice"),
    ],
)
def test_bad_local_keys_are_refused(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_local_keys(spec)


def test_sealing_costs_microseconds(v1):
    """AES-GCM adds little to a chat turn (two seals per stored exchange)."""
    cipher = _cipher(v1)
    text = "今日の会議で提案した内容について、もう少し詳しく説明してもいいですか？" * 4
    sealed = cipher.seal(text, FIELD)
    runs = 2000
    seal_us = timeit.timeit(lambda: cipher.seal(text, FIELD), number=runs) / runs * 1e6
    open_us = timeit.timeit(lambda: cipher.open_text(sealed, FIELD), number=runs) / runs * 1e6
    print(f"seal {seal_us:.1f} µs, open {open_us:.1f} µs for {len(text.encode())} bytes")
    assert seal_us < 200 and open_us < 200
