"""Redis as production has it (Memorystore with AUTH and in-transit encryption): a real
redis-server with TLS and a password, a CA of the test's own. The kit's client and the rate
limiter reach it through rediss:// with the CA file (WP_REDIS_CA_FILE), and refuse a server
whose certificate does not verify, before the AUTH string is sent."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.exceptions import ConnectionError as RedisConnectionError
from support.services import free_port
from workplace_kit.cache import create_redis
from workplace_kit.ratelimit import Limiter, RateLimited, Rule

PASSWORD = "auth-string-of-the-test"


def _key_and_cert(subject: str, issuer_key=None, issuer_name=None, *, ca: bool) -> tuple:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return key, builder.sign(issuer_key or key, hashes.SHA256())


def _write(path: Path, key=None, cert=None) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return path


@dataclass
class TlsRedis:
    url: str
    ca_file: str
    other_ca_file: str


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory) -> Iterator[TlsRedis]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: scripts/setup.sh installs it"
    folder = tmp_path_factory.mktemp("redis-tls")
    ca_key, ca_cert = _key_and_cert("workplace test CA", ca=True)
    server_key, server_cert = _key_and_cert("redis", ca_key, ca_cert.subject, ca=False)
    _, other_ca = _key_and_cert("some other CA", ca=True)
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            *("--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"),
            *("--tls-cert-file", str(_write(folder / "server.pem", cert=server_cert))),
            *("--tls-key-file", str(_write(folder / "server.key", key=server_key))),
            *("--tls-ca-cert-file", str(_write(folder / "ca.pem", cert=ca_cert))),
            *("--tls-auth-clients", "no", "--requirepass", PASSWORD),
            *("--save", "", "--appendonly", "no", "--dir", str(folder)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 10
    while True:
        assert process.poll() is None, f"redis-server with TLS did not start: {process.stdout.read()}"  # type: ignore[union-attr]
        try:
            with __import__("socket").create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            assert time.monotonic() < deadline, "redis-server with TLS never listened"
            time.sleep(0.05)
    try:
        yield TlsRedis(
            url=f"rediss://:{PASSWORD}@127.0.0.1:{port}/0",
            ca_file=str(folder / "ca.pem"),
            other_ca_file=str(_write(folder / "other-ca.pem", cert=other_ca)),
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_the_kits_client_reaches_redis_over_tls_with_auth(tls_redis: TlsRedis) -> None:
    client = create_redis(tls_redis.url, tls_redis.ca_file)
    try:
        await client.set("wp-tls-check", b"ok", ex=60)
        assert await client.get("wp-tls-check") == b"ok"
    finally:
        await client.aclose()


async def test_a_server_that_does_not_verify_is_refused(tls_redis: TlsRedis) -> None:
    for ca_file in (tls_redis.other_ca_file, ""):  # another CA; the system's CAs
        client = create_redis(tls_redis.url, ca_file)
        try:
            with pytest.raises(RedisConnectionError, match="(?i)certificate"):
                await client.ping()
        finally:
            await client.aclose()


async def test_the_rate_limiter_counts_in_the_tls_redis(tls_redis: TlsRedis) -> None:
    limiter = Limiter(tls_redis.url, ca_file=tls_redis.ca_file, key_prefix=f"wp-tls-{os.getpid()}")
    rule = Rule("tls-check", "2/minute", "too many")
    await limiter.hit(rule, "learner")
    await limiter.hit(rule, "learner")
    with pytest.raises(RateLimited):
        await limiter.hit(rule, "learner")
