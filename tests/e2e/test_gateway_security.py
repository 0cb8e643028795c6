"""What the public gateway lets through, tried as an attacker would (the platform of `task up`)."""

from __future__ import annotations

import httpx
import pytest

GATEWAY = "http://127.0.0.1:8080"


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
    r = httpx.post(GATEWAY + "/api/v2/chat", json={"message": "やあ"}, headers={"X-User-Id": "admin"}, timeout=30)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
