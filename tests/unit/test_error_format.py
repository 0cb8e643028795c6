"""Every way a request can be malformed is answered in the one JSON error format
({"error", "message"[, "problems"]}), never FastAPI's default body or a 500."""

from __future__ import annotations

from typing import Annotated

from fastapi.testclient import TestClient
from pydantic import AfterValidator, BaseModel, ConfigDict
from workplace_kit.config import ServiceSettings
from workplace_kit.service import create_http_app
from workplace_kit.validation import storable


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, AfterValidator(storable)]
    count: int = 0


def _client() -> TestClient:
    app = create_http_app(ServiceSettings(service_name="errors"), title="t")

    @app.post("/notes")
    async def add(note: Note) -> dict[str, str]:
        return {"text": note.text}

    return TestClient(app, raise_server_exceptions=False)


def _post(raw: bytes, content_type: str = "application/json"):
    return _client().post("/notes", content=raw, headers={"content-type": content_type})


def test_invalid_json_names_the_body_and_where_reading_stopped():
    r = _post(b'{"text": "a",')
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_request" and body["problems"][0]["field"] == "body"
    assert body["problems"][0]["message"].startswith("not valid JSON") and "character 13" in body["message"]


def test_bytes_that_are_not_utf8_are_a_clear_4xx():
    r = _post(b'{"text": "\xff\xfe"}')
    assert 400 <= r.status_code < 500 and r.json()["error"] == "invalid_request"
    assert "Traceback" not in r.text and set(r.json()) <= {"error", "message", "problems"}


def test_nul_and_lone_surrogates_are_refused_at_validation():
    for raw in (b'{"text": "a\\u0000b"}', b'{"text": "a\\ud800b"}'):
        r = _post(raw)
        assert r.status_code == 422 and r.json()["problems"][0]["field"] == "text", raw


def test_wrong_types_unknown_fields_and_wrong_content_type():
    assert _post(b'{"text": "a", "count": "many"}').json()["problems"][0]["field"] == "count"
    assert _post(b'{"text": "a", "admin": true}').json()["problems"][0]["field"] == "admin"
    r = _post(b"text=a", "application/x-www-form-urlencoded")
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"


def test_unknown_routes_and_methods_use_the_same_format():
    client = _client()
    assert client.get("/nowhere").json() == {"error": "not_found", "message": "Not Found"}
    assert client.get("/notes").json()["error"] == "method_not_allowed"
