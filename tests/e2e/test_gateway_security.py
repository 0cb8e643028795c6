"""What the public gateway lets through, tried as an attacker would (the platform of `task up`)."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
from auth_service.keys import KeyStore
from auth_service.settings import AuthSettings
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support.tokens import attack_tokens
from workplace.auth.v1 import auth_pb2, auth_pb2_grpc
from workplace.chat.v1 import chat_pb2, chat_pb2_grpc
from workplace.feedback.v1 import feedback_pb2  # noqa: F401 - registers its service for the allow-list check
from workplace.scenario.v1 import scenario_pb2  # noqa: F401
from workplace.tts.v1 import tts_pb2  # noqa: F401
from workplace.watch.v1 import watch_pb2  # noqa: F401
from workplace_kit import registry
from workplace_kit.crypto import open_cipher
from workplace_kit.db import create_pool

GATEWAY = "http://127.0.0.1:8080"
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"])
def test_internal_endpoints_are_not_public(platform, path):
    r = httpx.get(GATEWAY + path, timeout=10)
    assert r.status_code == 404 and r.json()["error"] == "not_found", path


def test_service_ports_still_serve_metrics_and_documents(platform):
    """Prometheus and developers reach them on the service ports, not through the gateway."""
    assert httpx.get("http://127.0.0.1:8101/metrics", timeout=10).status_code == 200
    assert httpx.get("http://127.0.0.1:8103/openapi.json", timeout=10).status_code == 200


def test_a_huge_body_is_refused_with_413_and_nothing_else_happens(platform):
    token = httpx.post(GATEWAY + "/api/v2/auth/guest", json={}, timeout=30).json()["access_token"]
    body = b'{"message":"' + b"x" * (10 * 1024 * 1024) + b'"}'
    for path in ("/api/v2/chat", "/api/v2/auth/login", "/api/v2/auth/guest"):
        r = httpx.post(
            GATEWAY + path,
            content=body,
            headers={"content-type": "application/json", "Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert r.status_code == 413 and r.json()["error"] == "too_large", path


def test_an_identity_header_from_the_client_is_dropped(platform):
    for header in ("X-User-Id", "X-Verified-User-Id"):
        r = httpx.post(GATEWAY + "/api/v2/chat", json={"message": "やあ"}, headers={header: "admin"}, timeout=30)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), header
        assert r.json()["error"] == "unauthenticated"


def _guest_token() -> str:
    return httpx.post(GATEWAY + "/api/v2/auth/guest", json={}, timeout=30).json()["access_token"]


@pytest.fixture(scope="module")
def attacks(platform) -> dict[str, str]:
    """Forged and altered tokens; the ones signed with the platform's real key are made with
    the auth service's own key store (its database)."""

    async def real_key():
        pool = await create_pool(os.environ["WP_DATABASE_URL"], schema="auth", max_size=1)
        try:
            cipher = await open_cipher(pool, AuthSettings())
            return await KeyStore(pool, cipher=cipher, token_ttl_s=900).current()
        finally:
            await pool.close()

    key = asyncio.run(real_key())
    return attack_tokens(_guest_token(), key.private_key, key.kid)


def test_bad_tokens_are_refused_by_the_gateway_before_any_service(attacks):
    """401 from Envoy itself (its reason names the JWT), for a header and for the pages' cookie."""
    for name, token in attacks.items():
        for how in ({"headers": {"Authorization": f"Bearer {token}"}}, {"cookies": {"wp_access": token}}):
            r = httpx.get(GATEWAY + "/api/v2/chat/situations", timeout=10, **how)
            # Envoy answers a token meant for another audience with 403, any other with 401.
            expected = (403, "forbidden") if name == "wrong audience" else (401, "unauthenticated")
            assert (r.status_code, r.json()["error"]) == expected, (name, how, r.text)
            assert "Jwt" in r.json()["message"], name
    assert httpx.get(GATEWAY + "/api/v2/chat/situations", timeout=10).json()["message"].endswith("(Jwt is missing)")


def test_bad_tokens_are_refused_by_the_service_itself_when_the_gateway_is_bypassed(attacks):
    """Defence in depth: chat's own port (HTTP and gRPC) refuses every one too."""
    chat = registry.load().get("chat")
    for name, token in attacks.items():
        r = httpx.get(
            f"http://127.0.0.1:{chat.http_port}/api/v2/chat/sessions/{uuid.uuid4()}",
            timeout=10,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated", (name, r.text)
    with grpc.insecure_channel(f"127.0.0.1:{chat.grpc_port}") as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        for name, token in attacks.items():
            with pytest.raises(grpc.RpcError) as refused:
                stub.GetHistory(
                    chat_pb2.GetHistoryRequest(session_id=str(uuid.uuid4())),
                    metadata=(("authorization", f"Bearer {token}"),),
                    timeout=10,
                )
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, name


def test_grpc_through_the_gateway_needs_a_token_and_a_public_method(attacks):
    token = _guest_token()
    with grpc.insecure_channel(GATEWAY.removeprefix("http://")) as channel:
        chat = chat_pb2_grpc.ChatServiceStub(channel)
        good = chat.ListSituations(
            chat_pb2.ListSituationsRequest(), metadata=(("authorization", f"Bearer {token}"),), timeout=10
        )
        assert good.situations
        for name, bad in [("no token", None), *attacks.items()]:
            metadata = () if bad is None else (("authorization", f"Bearer {bad}"),)
            with pytest.raises(grpc.RpcError) as refused:
                chat.ListSituations(chat_pb2.ListSituationsRequest(), metadata=metadata, timeout=10)
            expected = (
                grpc.StatusCode.PERMISSION_DENIED if name == "wrong audience" else grpc.StatusCode.UNAUTHENTICATED
            )
            assert refused.value.code() == expected, name
        # Internal methods, reflection and health are not routed at all, even with a good token.
        signed = (("authorization", f"Bearer {token}"),)
        internal = [
            lambda: auth_pb2_grpc.AuthServiceStub(channel).GetUser(
                auth_pb2.GetUserRequest(user_id=str(uuid.uuid4())), metadata=signed, timeout=10
            ),
            lambda: auth_pb2_grpc.AuthServiceStub(channel).VerifyToken(
                auth_pb2.VerifyTokenRequest(token=token), metadata=signed, timeout=10
            ),
            lambda: health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), metadata=signed, timeout=10
            ),
            lambda: list(
                reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                    iter([reflection_pb2.ServerReflectionRequest(list_services="")]), metadata=signed, timeout=10
                )
            ),
        ]
        for call in internal:
            with pytest.raises(grpc.RpcError) as hidden:
                call()
            assert hidden.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_every_public_grpc_method_exists_and_the_gateway_routes_only_those(platform):
    """The allow-list names real methods; Envoy's config routes exactly those."""
    envoy = (REPO / "deploy" / "envoy" / "envoy.yaml").read_text()
    routed = set(re.findall(r"path: /([\w.]+/\w+), grpc: \{\}", envoy))
    listed = set()
    for service in registry.load().services:
        if service.grpc_service:
            methods = {m.name for m in descriptor_pool.Default().FindServiceByName(service.grpc_service).methods}
            assert set(service.public_rpcs) <= methods, service.name
            listed |= {f"{service.grpc_service}/{rpc}" for rpc in service.public_rpcs}
    assert routed == listed and not any(name.startswith("workplace.auth") for name in routed)


def test_gateway_refusals_are_json_in_the_services_format(platform):
    r = httpx.get(GATEWAY + "/api/v2/feedback/sessions/x/analyses", timeout=10)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/json")
    assert set(r.json()) == {"error", "message"}
