"""The Cloud KMS key-encryption key (workplace_kit.crypto.GcpKmsKeys) through the real
google-cloud-kms client, against a local stand-in of KMS's gRPC service: the requests it sends
are the ones KMS documents (name, plaintext/ciphertext, additional authenticated data), a data
key wrapped under one primary version still unwraps after a rotation, and a wrong context or a
tampered ciphertext fails. There is no real KMS here; the stand-in seals with AES-GCM per
key version."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.cloud import kms_v1
from google.cloud.kms_v1.services.key_management_service.transports.grpc import KeyManagementServiceGrpcTransport
from workplace_kit.crypto import GcpKmsKeys

KEY = "projects/p/locations/asia-northeast1/keyRings/workplace/cryptoKeys/text"
SERVICE = "google.cloud.kms.v1.KeyManagementService"


class KmsStandIn:
    """Encrypt / Decrypt / GetCryptoKey of one symmetric key with rotatable versions."""

    def __init__(self) -> None:
        self.versions: dict[str, bytes] = {}
        self.requests: list[tuple[str, object]] = []
        self.rotate()

    def rotate(self) -> str:
        self.primary = f"{KEY}/cryptoKeyVersions/{len(self.versions) + 1}"
        self.versions[self.primary] = AESGCM.generate_key(bit_length=256)
        return self.primary

    def encrypt(self, request: kms_v1.EncryptRequest, context) -> kms_v1.EncryptResponse:
        self.requests.append(("encrypt", request))
        if request.name != KEY:
            context.abort(grpc.StatusCode.NOT_FOUND, "no such key")
        version = self.primary
        nonce = os.urandom(12)
        sealed = nonce + AESGCM(self.versions[version]).encrypt(
            nonce, request.plaintext, request.additional_authenticated_data
        )
        number = version.rsplit("/", 1)[1].encode()
        return kms_v1.EncryptResponse(name=version, ciphertext=number + b":" + sealed)

    def decrypt(self, request: kms_v1.DecryptRequest, context) -> kms_v1.DecryptResponse:
        self.requests.append(("decrypt", request))
        number, _, sealed = request.ciphertext.partition(b":")
        key = self.versions.get(f"{KEY}/cryptoKeyVersions/{number.decode(errors='replace')}")
        try:
            assert key is not None
            plain = AESGCM(key).decrypt(sealed[:12], sealed[12:], request.additional_authenticated_data)
        except Exception:  # noqa: BLE001 - KMS answers INVALID_ARGUMENT for any bad ciphertext
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Decryption failed")
        return kms_v1.DecryptResponse(plaintext=plain)

    def get_crypto_key(self, request: kms_v1.GetCryptoKeyRequest, context) -> kms_v1.CryptoKey:
        self.requests.append(("get", request))
        return kms_v1.CryptoKey(name=KEY, primary=kms_v1.CryptoKeyVersion(name=self.primary))

    def handlers(self) -> grpc.GenericRpcHandler:
        def method(fn, request_type, response_type):
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=request_type.deserialize, response_serializer=response_type.serialize
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Encrypt": method(self.encrypt, kms_v1.EncryptRequest, kms_v1.EncryptResponse),
                "Decrypt": method(self.decrypt, kms_v1.DecryptRequest, kms_v1.DecryptResponse),
                "GetCryptoKey": method(self.get_crypto_key, kms_v1.GetCryptoKeyRequest, kms_v1.CryptoKey),
            },
        )


@pytest.fixture
def kms() -> Iterator[tuple[KmsStandIn, GcpKmsKeys]]:
    standin = KmsStandIn()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([standin.handlers()])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    transport = KeyManagementServiceGrpcTransport(channel=channel, credentials=AnonymousCredentials())
    client = kms_v1.KeyManagementServiceClient(transport=transport)
    try:
        yield standin, GcpKmsKeys(KEY, client=client)
    finally:
        channel.close()
        server.stop(None)


def test_wraps_with_the_primary_version_and_unwraps_after_a_rotation(kms):
    standin, keys = kms
    dek = AESGCM.generate_key(bit_length=256)
    first = keys.current_id()
    assert first == f"{KEY}/cryptoKeyVersions/1" and keys.knows(first)
    version, wrapped = keys.wrap(dek, b"chat")
    assert version == first and dek not in wrapped
    kind, request = standin.requests[-1]
    assert kind == "encrypt" and request.name == KEY and request.additional_authenticated_data == b"chat"

    standin.rotate()
    assert keys.current_id() == f"{KEY}/cryptoKeyVersions/2"
    assert keys.unwrap(version, wrapped, b"chat") == dek  # the old version still decrypts
    version2, wrapped2 = keys.wrap(dek, b"chat")
    assert version2.endswith("/2") and keys.unwrap(version2, wrapped2, b"chat") == dek


def test_a_wrong_context_or_a_tampered_key_is_refused(kms):
    _, keys = kms
    dek = AESGCM.generate_key(bit_length=256)
    version, wrapped = keys.wrap(dek, b"chat")
    with pytest.raises(gexc.InvalidArgument):
        keys.unwrap(version, wrapped, b"feedback")  # another service's context
    with pytest.raises(gexc.InvalidArgument):
        keys.unwrap(version, wrapped[:-1] + bytes([wrapped[-1] ^ 1]), b"chat")
    assert not keys.knows("projects/p/locations/l/keyRings/r/cryptoKeys/other/cryptoKeyVersions/1")
