"""The shared kit's generic parts: settings, HTTP and gRPC error mapping, AI cache."""

from __future__ import annotations

import asyncpg
import grpc
import httpx
import pytest
from support.services import free_port
from workplace.chat.v1 import chat_pb2, chat_pb2_grpc
from workplace_kit.ai.types import DialogueRequest, EngineInfo, Turn
from workplace_kit.cache import AIResponseCache, create_redis
from workplace_kit.config import ConfigError, ServiceSettings, load_settings
from workplace_kit.errors import InvalidInput, NotFound, Unavailable, is_dependency_outage
from workplace_kit.grpc_server import GRPC_HANDLED, GrpcService, start_grpc_server
from workplace_kit.service import create_http_app


def test_settings_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv("WP_HTTP_PORT", "eighty")
    monkeypatch.setenv("WP_DATABASE_POOL_MAX", "0")
    with pytest.raises(ConfigError) as err:
        load_settings(ServiceSettings)
    assert "WP_HTTP_PORT" in str(err.value) and "'eighty'" in str(err.value)
    assert "WP_DATABASE_POOL_MAX" in str(err.value)


def test_gemini_keys_and_provider_choice(monkeypatch):
    monkeypatch.setenv("WP_GEMINI_API_KEYS", " k1, k2 ,")
    settings = load_settings(ServiceSettings)
    assert settings.gemini_api_keys == ["k1", "k2"] and settings.gemini_enabled
    assert not load_settings(ServiceSettings, ai_provider="offline").gemini_enabled
    monkeypatch.delenv("WP_GEMINI_API_KEYS")
    assert not load_settings(ServiceSettings).gemini_enabled


def test_secrets_come_from_files_named_as_their_variables(monkeypatch, tmp_path):
    """Secret Manager's values mounted as files (the chart's global.gemini.secretManager): one key
    per line, as Secret Manager keeps them, or comma separated; the environment still wins."""
    monkeypatch.delenv("WP_GEMINI_API_KEYS", raising=False)
    (tmp_path / "WP_GEMINI_API_KEYS").write_text("key-one\nkey-two\n")
    monkeypatch.setenv("WP_SECRETS_DIR", str(tmp_path))
    settings = load_settings(ServiceSettings, ai_provider="gemini")
    assert settings.gemini_api_keys == ["key-one", "key-two"]
    monkeypatch.setenv("WP_GEMINI_API_KEYS", "from-env")
    assert load_settings(ServiceSettings).gemini_api_keys == ["from-env"]
    monkeypatch.setenv("WP_SECRETS_DIR", str(tmp_path / "not-mounted"))
    with pytest.raises(ConfigError, match="WP_SECRETS_DIR"):
        load_settings(ServiceSettings)


def _request(**changes) -> DialogueRequest:
    base = dict(
        system_instruction="sys", message="こんにちは", history=(Turn("user", "a"), Turn("model", "b")), temperature=0.0
    )
    base.update(changes)
    return DialogueRequest(**base)


async def test_ai_cache_degrades_to_no_cache_when_redis_is_down():
    redis = create_redis(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    cache = AIResponseCache(redis, ttl_s=60)
    engine, request = EngineInfo("gemini", "Gemini", "flash"), _request()
    await cache.put(engine, request, "どうも", "STOP")
    assert await cache.get(engine, request) is None
    await redis.aclose()


async def test_http_errors_are_json_without_traces():
    app = create_http_app(ServiceSettings(service_name="t"), title="t")

    @app.get("/bad")
    async def bad():
        raise InvalidInput("message must not be empty", field="message")

    @app.get("/missing")
    async def missing():
        raise NotFound("no such chat session")

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret detail")

    @app.get("/db-down")
    async def db_down():
        raise ConnectionRefusedError("connect call failed ('127.0.0.1', 5440)")

    @app.get("/db-restarting")
    async def db_restarting():
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    @app.get("/ai-down")
    async def ai_down():
        raise Unavailable("the AI provider is overloaded")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/bad")
        assert r.status_code == 400 and r.json() == {
            "error": "invalid_argument",
            "message": "message must not be empty",
            "field": "message",
        }
        assert (await client.get("/missing")).status_code == 404
        r = await client.get("/boom")
        assert r.status_code == 500 and "secret detail" not in r.text and r.json()["error"] == "internal"
        # A dependency outage is a 503 with Retry-After, never a 500, and says nothing internal.
        for path in ("/db-down", "/db-restarting", "/ai-down"):
            r = await client.get(path)
            assert r.status_code == 503 and r.json()["error"] == "unavailable", path
            assert int(r.headers["retry-after"]) > 0
            assert "5440" not in r.text and "starting up" not in r.text
        assert (await client.get("/healthz")).json()["status"] == "ok"
        metrics = (await client.get("/metrics")).text
        assert "http_requests_total" in metrics and 'http_requests_inprogress{method="GET"} 0.0' in metrics
    # A second app in the same process shares the process-wide metrics instead of clashing.
    second = create_http_app(ServiceSettings(service_name="t2"), title="t2")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=second), base_url="http://t") as client:
        assert (await client.get("/healthz")).status_code == 200


class _Servicer(chat_pb2_grpc.ChatServiceServicer):
    async def GetHistory(self, request, context):  # noqa: N802
        if request.session_id == "bad":
            raise InvalidInput("session_id is not a valid id")
        if request.session_id == "missing":
            raise NotFound("no such chat session")
        if request.session_id == "db-down":
            raise asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command")
        raise RuntimeError("secret detail")

    async def StreamReply(self, request, context):  # noqa: N802
        yield chat_pb2.StreamReplyResponse(delta=chat_pb2.ReplyDelta(text="a"))
        raise InvalidInput("too long")


async def test_grpc_errors_map_to_status_codes():
    service = GrpcService(chat_pb2_grpc.add_ChatServiceServicer_to_server, _Servicer(), "workplace.chat.v1.ChatService")
    server, port, _ = await start_grpc_server([service], port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = chat_pb2_grpc.ChatServiceStub(channel)
            for session_id, code in (
                ("bad", grpc.StatusCode.INVALID_ARGUMENT),
                ("missing", grpc.StatusCode.NOT_FOUND),
                ("db-down", grpc.StatusCode.UNAVAILABLE),
                ("other", grpc.StatusCode.INTERNAL),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.GetHistory(chat_pb2.GetHistoryRequest(session_id=session_id))
                assert err.value.code() == code
                assert "secret detail" not in (err.value.details() or "")
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ListSituations(chat_pb2.ListSituationsRequest())  # not overridden
            assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
            # A message over the body limit (64 KB) is refused before any handler runs.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.GetHistory(chat_pb2.GetHistoryRequest(session_id="x" * (10 * 1024 * 1024)))
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            received = []
            with pytest.raises(grpc.aio.AioRpcError) as err:
                async for r in stub.StreamReply(chat_pb2.StreamReplyRequest()):
                    received.append(r)
            assert [r.delta.text for r in received] == ["a"] and err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        method = "/workplace.chat.v1.ChatService/GetHistory"
        assert GRPC_HANDLED.labels(method, "NOT_FOUND")._value.get() >= 1
        assert GRPC_HANDLED.labels(method, "INTERNAL")._value.get() >= 1
    finally:
        await server.stop(None)


def test_dependency_outages_are_told_apart_from_bugs():
    import redis.exceptions
    from google.api_core import exceptions as gexc
    from workplace_kit.ai.types import AIUnavailableError

    for outage in (
        ConnectionRefusedError(),
        TimeoutError(),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.CannotConnectNowError("the database system is shutting down"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.InterfaceError("connection is closed"),
        redis.exceptions.ConnectionError("Connection refused"),
        gexc.ServiceUnavailable("broker down"),
        AIUnavailableError("quota"),
        Unavailable("down"),
    ):
        assert is_dependency_outage(outage), outage
    for bug in (
        RuntimeError("x"),
        ValueError("x"),
        KeyError("x"),
        FileNotFoundError("x"),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        asyncpg.exceptions.QueryCanceledError("canceling statement"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    ):
        assert not is_dependency_outage(bug), bug


def test_a_wrong_method_names_every_method_the_path_serves() -> None:
    from fastapi.testclient import TestClient

    app = create_http_app(ServiceSettings(service_name="t"), title="t")
    app.get("/speech")(lambda: {})
    app.post("/speech")(lambda: {})
    answer = TestClient(app).options("/speech")
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, POST"
    assert answer.json()["error"] == "method_not_allowed"
