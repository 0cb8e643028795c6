"""Request bodies over the limit are refused with 413 before they are read."""

from __future__ import annotations

from fastapi.testclient import TestClient
from workplace_kit.config import ServiceSettings
from workplace_kit.service import create_http_app


def _app() -> TestClient:
    app = create_http_app(ServiceSettings(service_name="limits", http_max_body_bytes=4096), title="t")

    @app.post("/echo")
    async def echo(body: dict[str, str]) -> dict[str, int]:
        return {"keys": len(body)}

    return TestClient(app)


def test_a_body_over_the_limit_is_a_413_in_the_json_error_format():
    client = _app()
    big = b'{"a":"' + b"x" * 10 * 1024 * 1024 + b'"}'  # 10 MB, as an attacker sent
    r = client.post("/echo", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json() == {"error": "too_large", "message": "the request body is over 4096 bytes"}


def test_a_chunked_body_that_grows_past_the_limit_is_refused_too():
    client = _app()

    def chunks():
        for _ in range(10):
            yield b"x" * 1024

    r = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"


def test_bodies_within_the_limit_and_a_bad_length_header():
    client = _app()
    assert client.post("/echo", json={"a": "b"}).json() == {"keys": 1}
    r = client.post("/echo", content=b"{}", headers={"content-type": "application/json", "content-length": "abc"})
    assert r.status_code == 413 and r.json()["error"] == "too_large"
