"""CSRF protection and security headers of every service's app (workplace_kit.web_security)."""

from __future__ import annotations

import pytest
from fastapi import Response
from fastapi.responses import StreamingResponse
from fastapi.testclient import TestClient
from workplace_kit.config import ServiceSettings
from workplace_kit.service import create_http_app
from workplace_kit.web_security import (
    CONTENT_SECURITY_POLICY,
    CSRF_COOKIE_NAME,
    CSRF_HEADER_NAME,
    SECURITY_HEADERS,
    clear_csrf_cookie,
    same_origin,
    set_csrf_cookie,
)

SETTINGS = ServiceSettings(service_name="csrf-test", auth_cookie_secure=False)
HOST = "testserver"  # TestClient's Host


def _client() -> TestClient:
    app = create_http_app(SETTINGS, title="t")
    state: dict[str, int] = {"changes": 0}

    @app.post("/change")
    async def change(body: dict[str, str]) -> dict[str, int]:
        state["changes"] += 1
        return state

    @app.delete("/change")
    async def delete() -> dict[str, int]:
        state["changes"] += 1
        return state

    @app.get("/read")
    async def read() -> dict[str, int]:
        return state

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks():
            yield b"data: 1\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    @app.get("/own-csp")
    async def own_csp() -> Response:
        return Response("x", headers={"Content-Security-Policy": "default-src 'none'"})

    @app.post("/token")
    async def token() -> Response:
        response = Response(status_code=204)
        set_csrf_cookie(response, SETTINGS, "fixed")
        return response

    @app.post("/logout")
    async def logout() -> Response:
        response = Response(status_code=204)
        clear_csrf_cookie(response, SETTINGS)
        return response

    return TestClient(app)


def _cookies(**values: str) -> str:
    return "; ".join(f"{name}={value}" for name, value in values.items())


@pytest.mark.parametrize("auth_cookie", ["wp_access", "wp_refresh"])
def test_a_cookie_request_without_the_token_or_with_a_wrong_one_is_refused(auth_cookie):
    client = _client()
    cookie = _cookies(**{auth_cookie: "t0ken", CSRF_COOKIE_NAME: "right"})
    for headers in ({}, {CSRF_HEADER_NAME: "wrong"}, {CSRF_HEADER_NAME: ""}, {CSRF_HEADER_NAME: "righ"}):
        r = client.post("/change", json={}, headers={"Cookie": cookie, **headers})
        assert r.status_code == 403, headers
        assert r.json()["error"] == "csrf" and CSRF_HEADER_NAME in r.json()["message"]
        assert r.headers["content-type"] == "application/json"
    r = client.delete("/change", headers={"Cookie": cookie})
    assert r.status_code == 403
    assert client.get("/read").json() == {"changes": 0}, "nothing refused reached the endpoint"


def test_a_cookie_request_with_the_token_but_no_csrf_cookie_is_refused():
    client = _client()
    r = client.post("/change", json={}, headers={"Cookie": "wp_access=t0ken", CSRF_HEADER_NAME: "anything"})
    assert r.status_code == 403 and r.json()["error"] == "csrf"


def test_a_cookie_request_with_the_matching_token_goes_through():
    client = _client()
    cookie = _cookies(wp_access="t0ken", **{CSRF_COOKIE_NAME: "right"})
    r = client.post("/change", json={}, headers={"Cookie": cookie, CSRF_HEADER_NAME: "right"})
    assert r.status_code == 200 and r.json() == {"changes": 1}
    r = client.post(
        "/change", json={}, headers={"Cookie": cookie, CSRF_HEADER_NAME: "right", "Origin": "http://testserver"}
    )
    assert r.status_code == 200 and r.json() == {"changes": 2}


def test_bearer_requests_and_requests_without_our_cookies_are_not_checked():
    client = _client()
    assert client.post("/change", json={}, headers={"Authorization": "Bearer abc"}).status_code == 200
    both = {"Authorization": "Bearer abc", "Cookie": "wp_access=t0ken"}
    assert client.post("/change", json={}, headers=both).status_code == 200
    assert client.post("/change", json={}).status_code == 200  # no cookie of ours: nothing to abuse
    assert client.post("/change", json={}, headers={"Cookie": "wp_lang=en"}).status_code == 200
    assert client.post("/change", json={}, headers={"Cookie": "wp_access="}).status_code == 200  # a cleared cookie


def test_another_authorization_scheme_does_not_exempt_a_cookie_request():
    # The kit reads the cookie when the Authorization header is not Bearer, so it must be checked.
    client = _client()
    for authorization in ("Basic dXNlcjpwYXNz", "Bearer ", "Bearer"):
        headers = {"Authorization": authorization, "Cookie": "wp_access=t0ken"}
        assert client.post("/change", json={}, headers=headers).status_code == 403, authorization


def test_safe_methods_are_never_checked():
    client = _client()
    headers = {"Cookie": "wp_access=t0ken", "Origin": "https://evil.example"}
    assert client.get("/read", headers=headers).status_code == 200
    for method in ("HEAD", "OPTIONS"):  # not routed here: 405, never 403
        assert client.request(method, "/read", headers=headers).status_code == 405, method


def test_a_state_changing_request_from_another_origin_is_refused_even_with_the_token():
    client = _client()
    cookie = _cookies(wp_access="t0ken", **{CSRF_COOKIE_NAME: "right"})
    for origin in ("https://evil.example", "null", "http://testserver.evil.example", "http://testserver:8443"):
        headers = {"Cookie": cookie, CSRF_HEADER_NAME: "right", "Origin": origin}
        r = client.post("/change", json={}, headers=headers)
        assert r.status_code == 403 and r.json()["error"] == "csrf" and "origin" in r.json()["message"], origin
    # Without cookies too: a page elsewhere must not sign the browser in to the attacker's account.
    r = client.post("/change", json={}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert client.get("/read").json() == {"changes": 0}


def test_same_origin_compares_host_and_port_not_the_scheme():
    assert same_origin("http://127.0.0.1:8080", "127.0.0.1:8080")
    assert same_origin("https://learn.example.com", "learn.example.com")
    assert same_origin("https://learn.example.com", "learn.example.com:443")
    assert same_origin("https://Learn.Example.com", "learn.example.com")
    assert same_origin("http://[::1]:8080", "[::1]:8080")
    assert not same_origin("http://127.0.0.1:8081", "127.0.0.1:8080")
    assert not same_origin("https://learn.example.com.evil.example", "learn.example.com")
    assert not same_origin("null", "learn.example.com")
    assert not same_origin("file://", "learn.example.com")
    assert not same_origin("https://learn.example.com", "")
    assert not same_origin("https://learn.example.com:99999", "learn.example.com")
    assert not same_origin("https://[::1", "learn.example.com")


def test_the_csrf_cookie_is_readable_by_the_page_strict_and_cleared_on_logout():
    client = _client()
    set_cookie = client.post("/token").headers["set-cookie"]
    assert set_cookie.startswith(f"{CSRF_COOKIE_NAME}=fixed;")
    assert "HttpOnly" not in set_cookie and "SameSite=strict" in set_cookie and "Path=/" in set_cookie
    assert "Secure" not in set_cookie  # auth_cookie_secure=False here, as in the local runtime
    cleared = client.post("/logout").headers["set-cookie"]
    assert cleared.startswith(f'{CSRF_COOKIE_NAME}=""') and "Max-Age=0" in cleared


def test_the_csrf_cookie_is_secure_when_the_auth_cookies_are():
    response = Response()
    token = set_csrf_cookie(response, ServiceSettings(service_name="x"))
    assert len(token) >= 40 and "Secure" in response.headers["set-cookie"]
    assert set_csrf_cookie(Response(), SETTINGS) != token  # random each time


@pytest.mark.parametrize("path", ["/read", "/stream", "/healthz", "/nowhere"])
def test_every_response_carries_the_security_headers(path):
    r = _client().get(path)
    for name, value in SECURITY_HEADERS:
        assert r.headers.get_list(name) == [value], (path, name)
    assert "unsafe-inline" not in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert "microphone=(self)" in r.headers["permissions-policy"] and "camera=()" in r.headers["permissions-policy"]


def test_errors_of_the_middlewares_carry_the_headers_too():
    client = _client()
    refused = client.post("/change", json={}, headers={"Cookie": "wp_access=t0ken"})
    too_large = client.post("/change", content=b"x" * (SETTINGS.http_max_body_bytes + 1))
    for r in (refused, too_large):
        assert (
            r.headers["x-frame-options"] == "DENY" and r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        )


def test_a_header_the_endpoint_sets_itself_is_kept_and_not_doubled():
    r = _client().get("/own-csp")
    assert r.headers.get_list("content-security-policy") == ["default-src 'none'"]
    assert r.headers["x-content-type-options"] == "nosniff"
