"""LocalLLMDialogueEngine against a real HTTP server that speaks OpenAI's streaming format."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from workplace_kit.ai.local_llm import LocalLLMDialogueEngine, to_openai_messages
from workplace_kit.ai.types import AIUnavailableError, DialogueRequest, Turn
from workplace_kit.config import ServiceSettings

REPLY_PIECES = ["お疲れさま", "です。", "週末は", "どうでしたか？"]


def _sse(payload: object) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


class FakeOpenAIServer:
    """Streams chat completion chunks the way Ollama and llama.cpp's server do; the model name
    picks a failure mode so one server covers every case."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        model = body["model"]
        if model == "missing-model":
            return JSONResponse({"error": {"message": "model 'missing-model' not found"}}, status_code=404)
        if model == "overloaded":
            return JSONResponse({"error": "server busy"}, status_code=503)
        if model == "unauthorised":  # FastAPI's error body, as llama-cpp-python's server answers
            return JSONResponse({"detail": "Invalid API key"}, status_code=401)

        async def events():
            if model == "closes-silently":  # llama-cpp-python's server when the prompt is over n_ctx
                return
            if model == "error-in-stream":
                yield _sse({"error": {"message": "context window exceeded"}})
                return
            for piece in REPLY_PIECES:
                yield _sse(
                    {
                        "id": "c1",
                        "object": "chat.completion.chunk",
                        "model": model,
                        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                    }
                )
            yield _sse({"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
            yield _sse(
                {"id": "c1", "choices": [], "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}}
            )
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[FakeOpenAIServer, str]]:
    fake = FakeOpenAIServer()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(fake.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.02)
    yield fake, f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=5)
    sock.close()


def _request(**fields) -> DialogueRequest:
    return DialogueRequest(
        system_instruction="あなたは職場の上司です。",
        message="週末は家でゆっくりしていました",
        history=(Turn("user", "おはようございます"), Turn("model", "おはようございます。週末はどうでしたか。")),
        partner="boss",
        temperature=0.3,
        max_output_tokens=200,
        **fields,
    )


async def test_streams_the_reply_and_sends_openai_messages(server) -> None:
    fake, base = server
    engine = LocalLLMDialogueEngine(base + "/v1", "qwen2.5:1.5b-instruct", api_key="local-secret")
    assert engine.info.id == "local-llm" and engine.info.label == "ローカルLLM (qwen2.5:1.5b-instruct)"

    chunks = [chunk async for chunk in engine.stream_reply(_request())]

    assert "".join(c.text for c in chunks) == "".join(REPLY_PIECES)
    assert [c.text for c in chunks] == REPLY_PIECES
    assert [c.final for c in chunks] == [False, False, False, True]
    assert chunks[-1].finish_reason == "MAX_TOKENS"
    assert chunks[-1].usage == {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49}

    body = fake.requests[-1]
    assert body["model"] == "qwen2.5:1.5b-instruct"
    assert body["stream"] is True
    assert body["temperature"] == 0.3 and body["max_tokens"] == 200
    assert body["messages"] == [
        {"role": "system", "content": "あなたは職場の上司です。"},
        {"role": "user", "content": "おはようございます"},
        {"role": "assistant", "content": "おはようございます。週末はどうでしたか。"},
        {"role": "user", "content": "週末は家でゆっくりしていました"},
    ]
    assert fake.headers[-1]["authorization"] == "Bearer local-secret"
    assert "text/event-stream" in fake.headers[-1]["accept"]


def test_messages_without_system_instruction() -> None:
    request = DialogueRequest(system_instruction="  ", message="Hi")
    assert to_openai_messages(request) == [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("model", "status", "words"),
    [
        ("missing-model", 404, "model 'missing-model' not found"),
        ("overloaded", 503, "server busy"),
        ("error-in-stream", None, "context window exceeded"),
        ("closes-silently", None, "closed the stream without a reply or an error event"),
        ("unauthorised", 401, "answered HTTP 401: Invalid API key"),
    ],
)
async def test_server_errors_become_ai_unavailable(
    server, model: str, status: int | None, words: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, base = server
    engine = LocalLLMDialogueEngine(base, model)
    with pytest.raises(AIUnavailableError) as caught:
        async for _ in engine.stream_reply(_request()):
            pass
    # The learner is told the AI is unavailable; the server's address and answer go to the log.
    assert str(caught.value) == LocalLLMDialogueEngine.LEARNER_MESSAGE and base not in str(caught.value)
    assert words in caplog.text and base in caplog.text
    assert caught.value.status == status
    if status in (401, 404):
        assert caught.value.retryable is False
    if status == 503:
        assert caught.value.retryable is True


async def test_unreachable_server(caplog: pytest.LogCaptureFixture) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    engine = LocalLLMDialogueEngine(f"http://127.0.0.1:{port}", "any-model")
    with pytest.raises(AIUnavailableError, match="unavailable"):
        async for _ in engine.stream_reply(_request()):
            pass
    assert "unreachable" in caplog.text


def test_from_settings() -> None:
    settings = ServiceSettings(ai_provider="local", local_llm_base_url="http://127.0.0.1:11434", local_llm_model="m1")
    engine = LocalLLMDialogueEngine.from_settings(settings)
    assert engine.url == "http://127.0.0.1:11434/v1/chat/completions" and engine.model == "m1"
    with pytest.raises(ValueError, match="WP_LOCAL_LLM_BASE_URL"):
        LocalLLMDialogueEngine.from_settings(ServiceSettings(ai_provider="local", local_llm_base_url=None))
