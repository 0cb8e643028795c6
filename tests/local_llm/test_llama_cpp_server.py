"""The opt-in local provider (WP_AI_PROVIDER=local) against a real OpenAI-compatible server:
llama.cpp's, from PyPI's llama-cpp-python[server], serving a tiny random-weights model that
tiny_gguf.py writes at test time. The words are gibberish; the wire contract is what is checked:
streamed chunks, the final chunk's finish reason and usage, max_output_tokens, and the errors a
learner's reply can meet (server down, a conversation longer than the model's context).

Opt-in: `task test:local-llm` builds llama-cpp-python into its own environment (.run/llm-venv,
pinned by uv.lock's local-llm group) and runs this file with WP_TEST_LLAMA_PYTHON set to that
environment's python. The default run (task test) does not collect it: building llama.cpp takes
five to twelve minutes on two cores for sixteen seconds of tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from workplace_kit.ai.dialogue import build_dialogue_engine
from workplace_kit.ai.local_llm import LocalLLMDialogueEngine
from workplace_kit.ai.types import AIUnavailableError, DialogueRequest, ReplyChunk, Turn
from workplace_kit.config import ServiceSettings

LLAMA_PYTHON = os.environ.get("WP_TEST_LLAMA_PYTHON", "")
if not LLAMA_PYTHON:
    # The default run does not collect this folder (tests/conftest.py); run on its own, it needs
    # the server's environment and says so instead of skipping.
    raise RuntimeError("run this with `task test:local-llm` (it sets WP_TEST_LLAMA_PYTHON to llama.cpp's environment)")

HERE = Path(__file__).resolve().parent
N_CTX = 256  # the tiny model's context; the server is started with the same
ALIAS = "tiny-random"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("llm") / "tiny.gguf"
    subprocess.run([LLAMA_PYTHON, str(HERE / "tiny_gguf.py"), str(path)], check=True, timeout=120)
    return path


@contextlib.contextmanager
def llama_cpp_server(model: Path, *extra: str) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server on a free port; yields its base URL."""
    port = _free_port()
    log_path = model.with_name(f"server-{port}.log")
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [LLAMA_PYTHON, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", ALIAS]
            + ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX), "--n_threads", "2", *extra],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp's server exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base_url + "/v1/models", timeout=1).status_code in (200, 401):
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"llama.cpp's server did not answer:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture(scope="module")
def server(model: Path) -> Iterator[str]:
    with llama_cpp_server(model) as base_url:
        yield base_url


def _request(message: str = "Good morning! How was your weekend?", **overrides: object) -> DialogueRequest:
    fields: dict[str, object] = {
        "system_instruction": "You are Sato, a friendly colleague. Answer briefly.",
        "message": message,
        "history": (Turn(role="model", text="Hi!"),),
        "temperature": 0.7,
        "max_output_tokens": 24,
    }
    fields.update(overrides)
    return DialogueRequest(**fields)  # type: ignore[arg-type]


async def _collect(engine: LocalLLMDialogueEngine, request: DialogueRequest) -> list[ReplyChunk]:
    return [chunk async for chunk in engine.stream_reply(request)]


def _engine(base_url: str) -> LocalLLMDialogueEngine:
    # As chat builds it from its settings; the /v1 suffix is how Ollama's docs write the URL.
    settings = ServiceSettings(ai_provider="local", local_llm_base_url=base_url + "/v1", local_llm_model=ALIAS)
    engine = build_dialogue_engine(settings, catalogue=None)  # type: ignore[arg-type]
    assert isinstance(engine, LocalLLMDialogueEngine)
    return engine


async def test_reply_streams_in_chunks_and_ends_with_the_finish_reason(server: str) -> None:
    chunks = await _collect(_engine(server), _request(max_output_tokens=24))
    assert len(chunks) > 1, "one chunk: the reply was not streamed"
    assert [c.final for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert all(c.text for c in chunks)
    # The tiny model never ends on its own (tiny_gguf.py), so max_output_tokens stops it; each of
    # its tokens is one or two ASCII characters, so each token is one delta, one chunk.
    assert chunks[-1].finish_reason == "MAX_TOKENS"
    assert len(chunks) == 24
    # llama-cpp-python's server sends no usage in a stream (stream_options.include_usage is ignored);
    # llama.cpp's own server and Ollama do. Whatever arrives must be right.
    assert chunks[-1].usage.get("completion_tokens", 24) == 24


async def test_max_output_tokens_is_respected(server: str) -> None:
    engine = _engine(server)
    for limit in (1, 5, 40):
        chunks = await _collect(engine, _request(max_output_tokens=limit))
        assert chunks[-1].finish_reason == "MAX_TOKENS"
        assert len(chunks) == limit


async def test_japanese_history_and_message_go_through(server: str) -> None:
    request = _request(
        message="おはようございます。週末はどうでしたか？",
        history=(Turn(role="user", text="こんにちは"), Turn(role="model", text="お疲れさまです。")),
        max_output_tokens=8,
    )
    chunks = await _collect(_engine(server), request)
    assert chunks[-1].final and len(chunks) == 8


async def test_a_conversation_longer_than_the_context_is_a_clear_error(
    server: str, caplog: pytest.LogCaptureFixture
) -> None:
    # llama-cpp-python's server answers 200 and then closes the stream with nothing in it (its log
    # has "Requested tokens (...) exceed context window of 256"); the engine says what to look at.
    long_message = "Could you tell me more about the project schedule? " * 40  # > 256 tokens
    with caplog.at_level(logging.WARNING, logger="workplace_kit.ai.local_llm"):
        with pytest.raises(AIUnavailableError) as raised:
            await _collect(_engine(server), _request(message=long_message))
    assert str(raised.value) == LocalLLMDialogueEngine.LEARNER_MESSAGE  # no server detail for the learner
    assert "closed the stream without a reply or an error event" in caplog.text
    assert "raise its n_ctx" in caplog.text


async def test_a_refused_request_is_a_clear_client_error(model: Path, caplog: pytest.LogCaptureFixture) -> None:
    with llama_cpp_server(model, "--api_key", "right-key") as base_url:
        with caplog.at_level(logging.WARNING, logger="workplace_kit.ai.local_llm"):
            with pytest.raises(AIUnavailableError) as raised:
                await _collect(LocalLLMDialogueEngine(base_url, ALIAS, api_key="wrong-key"), _request())
        assert raised.value.status == 401
        assert raised.value.retryable is False  # the same request would be refused again
        assert str(raised.value) == LocalLLMDialogueEngine.LEARNER_MESSAGE
        assert f"{base_url}/v1/chat/completions answered HTTP 401: Invalid API key" in caplog.text
        # The key the server wants is sent as a Bearer token.
        chunks = await _collect(LocalLLMDialogueEngine(base_url, ALIAS, api_key="right-key"), _request())
        assert chunks[-1].final


async def test_an_unreachable_server_is_a_clear_unavailable_error(caplog: pytest.LogCaptureFixture) -> None:
    base_url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="workplace_kit.ai.local_llm"):
        with pytest.raises(AIUnavailableError) as raised:
            await _collect(_engine(base_url), _request())
    assert raised.value.retryable is True
    assert f"{base_url}/v1/chat/completions is unreachable" in caplog.text
    assert "is Ollama or llama.cpp's server running there?" in caplog.text


def test_the_server_lists_the_model_it_serves(server: str) -> None:
    # What a learner's operator checks first when the engine says the model is unavailable.
    models = httpx.get(server + "/v1/models", timeout=5).json()
    assert [m["id"] for m in models["data"]] == [ALIAS]
