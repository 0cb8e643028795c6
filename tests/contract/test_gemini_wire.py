"""Our Gemini calls against Gemini's REST wire format: the real google-genai client talks HTTP
to the local stand-in (tests/contract/gemini_standin.py); nothing of ours is mocked."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal

import pytest
from gemini_standin import Fail, FailMidStream, GeminiStandIn, Reply
from google import genai
from pydantic import BaseModel, Field
from workplace_kit.ai.gemini import (
    BUSY_MESSAGE,
    INTERRUPTED_MESSAGE,
    MALFORMED_MESSAGE,
    GeminiDialogueEngine,
    GeminiKeyPool,
    generate_json,
    make_genai_client,
    stream_body,
)
from workplace_kit.ai.types import AIUnavailableError, DialogueRequest, ReplyChunk, Turn
from workplace_kit.config import ConfigError, ServiceSettings

FLASH = "gemini-2.5-flash"
PRO = "gemini-2.5-pro"
ATTEMPTS = 3


@pytest.fixture(scope="module")
def standin() -> Iterator[GeminiStandIn]:
    with GeminiStandIn() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_script(standin: GeminiStandIn) -> None:
    standin.reset()


def make_settings(base_url: str, **overrides: object) -> ServiceSettings:
    # Every Gemini option explicit, so WP_GEMINI_* variables in the environment change nothing.
    values: dict[str, object] = {
        "gemini_api_keys": ["key-a"],
        "gemini_base_url": base_url,
        "gemini_api_version": "v1beta",
        "gemini_model_flash": FLASH,
        "gemini_model_pro": PRO,
        "gemini_timeout_s": 5.0,
        "gemini_retry_attempts": ATTEMPTS,
        # Tiny delays keep retry tests fast; the policy is the same as in production.
        "gemini_retry_initial_delay_s": 0.01,
        "gemini_retry_max_delay_s": 0.02,
    }
    values.update(overrides)
    return ServiceSettings(**values)


class _Pools:
    """Closes every key pool a test opened, so no HTTP connection outlives its test."""

    def __init__(self) -> None:
        self.opened: list[GeminiKeyPool] = []

    def pool(self, settings: ServiceSettings, **kwargs: object) -> GeminiKeyPool:
        pool = GeminiKeyPool(settings, **kwargs)  # type: ignore[arg-type]
        self.opened.append(pool)
        return pool

    def engine(self, settings: ServiceSettings, **kwargs: object) -> GeminiDialogueEngine:
        pool = kwargs.pop("pool", None) or self.pool(settings)
        return GeminiDialogueEngine(settings, pool=pool, **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def pools() -> AsyncIterator[_Pools]:
    holder = _Pools()
    yield holder
    for pool in holder.opened:
        await pool.aclose()


async def collect(engine: GeminiDialogueEngine, request: DialogueRequest) -> list[ReplyChunk]:
    return [chunk async for chunk in engine.stream_reply(request)]


HISTORY = (
    Turn("user", "おはようございます。"),
    Turn("model", "おはよう。今日は早いね。"),
    Turn("user", "資料の確認をお願いしたくて。"),
    Turn("model", "いいよ、どの資料？"),
)


# ---------------------------------------------------------------------------------------------
# What we send
# ---------------------------------------------------------------------------------------------


async def test_stream_request_matches_gemini_wire_format(standin, pools):
    engine = pools.engine(make_settings(standin.base_url))
    request = DialogueRequest(
        system_instruction="あなたは職場の先輩の佐藤です。",
        message="来週の会議資料です。",
        history=HISTORY,
        temperature=0.4,
        max_output_tokens=256,
    )

    await collect(engine, request)

    [sent] = standin.requests
    assert sent.method == "POST"
    assert sent.path == f"/v1beta/models/{FLASH}:streamGenerateContent"
    assert sent.query.get("alt") == "sse"
    assert sent.headers["x-goog-api-key"] == "key-a"
    assert sent.headers["content-type"].startswith("application/json")
    body = sent.body
    assert body["systemInstruction"]["parts"] == [{"text": "あなたは職場の先輩の佐藤です。"}]
    assert [(c["role"], c["parts"][0]["text"]) for c in body["contents"]] == [
        *[(t.role, t.text) for t in HISTORY],
        ("user", "来週の会議資料です。"),
    ]
    assert body["generationConfig"]["temperature"] == 0.4
    assert body["generationConfig"]["maxOutputTokens"] == 256


async def test_api_version_and_base_url_come_from_settings(standin, pools):
    engine = pools.engine(make_settings(standin.base_url, gemini_api_version="v1alpha"))
    await collect(engine, DialogueRequest(system_instruction="", message="hi"))
    [sent] = standin.requests
    assert sent.path == f"/v1alpha/models/{FLASH}:streamGenerateContent"
    # An empty system instruction is left out rather than sent as an empty part.
    assert "systemInstruction" not in sent.body


def test_make_genai_client_sets_timeout_and_retry_policy(standin):
    settings = make_settings(standin.base_url, gemini_timeout_s=12.5, gemini_retry_attempts=5)
    client = make_genai_client(settings, "key-a")
    options = client._api_client._http_options  # the SDK keeps what it was given here
    assert options.timeout == 12_500
    assert options.base_url.rstrip("/") == standin.base_url
    assert options.api_version == "v1beta"
    retry = options.retry_options
    assert retry.attempts == 5
    assert sorted(retry.http_status_codes) == [408, 429, 500, 502, 503, 504]
    assert retry.initial_delay == 0.01 and retry.max_delay == 0.02 and retry.jitter > 0
    client.close()


# ---------------------------------------------------------------------------------------------
# What we do with the stream
# ---------------------------------------------------------------------------------------------


async def test_streamed_chunks_then_final_with_finish_reason_and_usage(standin, pools):
    standin.script(Reply(["お疲れさま", "です。", "助かりました！"], prompt_tokens=12, output_tokens=7))
    engine = pools.engine(make_settings(standin.base_url))

    chunks = await collect(engine, DialogueRequest(system_instruction="s", message="m"))

    assert [c.text for c in chunks if not c.final] == ["お疲れさま", "です。", "助かりました！"]
    assert "".join(c.text for c in chunks) == "お疲れさまです。助かりました！"
    assert [c.final for c in chunks] == [False, False, False, True]
    final = chunks[-1]
    assert final.finish_reason == "STOP"
    assert final.usage == {"prompt_tokens": 12, "output_tokens": 7, "total_tokens": 19}
    assert engine.info.id == "gemini"
    assert engine.info.label == f"Gemini ({FLASH})"


async def test_unscripted_stand_in_echoes_the_last_message(standin, pools):
    engine = pools.engine(make_settings(standin.base_url))
    chunks = await collect(engine, DialogueRequest(system_instruction="s", message="週報の書き方", history=HISTORY))
    assert "".join(c.text for c in chunks) == "了解です。『週報の書き方』についてですね。"
    assert len([c for c in chunks if c.text]) == 3
    assert chunks[-1].usage["total_tokens"] > 0


async def test_stream_without_finish_reason_is_treated_as_cut(standin, pools):
    standin.script(Reply(["途中で", "終わる"], finish_reason=""))
    engine = pools.engine(make_settings(standin.base_url))
    with pytest.raises(AIUnavailableError) as caught:
        await collect(engine, DialogueRequest(system_instruction="s", message="m"))
    assert str(caught.value) == INTERRUPTED_MESSAGE


@pytest.mark.parametrize("disconnect", [False, True], ids=["error-event", "dropped-connection"])
async def test_failure_mid_stream_raises_after_partial_chunks(standin, pools, disconnect):
    standin.script(FailMidStream(chunks=["はい、", "それは"], disconnect=disconnect))
    engine = pools.engine(make_settings(standin.base_url))
    received: list[str] = []

    with pytest.raises(AIUnavailableError) as caught:
        async for chunk in engine.stream_reply(DialogueRequest(system_instruction="s", message="m")):
            received.append(chunk.text)

    assert received == ["はい、", "それは"]  # the caller saw a partial reply: it must drop it
    assert str(caught.value) == INTERRUPTED_MESSAGE
    assert len(standin.requests) == 1  # a stream already under way is not silently restarted


async def test_timeout_becomes_ai_unavailable(standin, pools):
    standin.script(Reply(["遅い"], first_token_delay_ms=1500))
    engine = pools.engine(make_settings(standin.base_url, gemini_timeout_s=0.3, gemini_retry_attempts=1))
    started = time.monotonic()
    with pytest.raises(AIUnavailableError) as caught:
        await collect(engine, DialogueRequest(system_instruction="s", message="m"))
    assert time.monotonic() - started < 1.4
    assert caught.value.status is None


# ---------------------------------------------------------------------------------------------
# Retries, key rotation, model fallback
# ---------------------------------------------------------------------------------------------


async def test_quota_twice_then_success_is_retried_by_the_client(standin, pools):
    standin.script(Fail(429), times=2)
    engine = pools.engine(make_settings(standin.base_url))

    chunks = await collect(engine, DialogueRequest(system_instruction="s", message="はい"))

    assert chunks[-1].final and "".join(c.text for c in chunks).startswith("了解です。")
    assert [r.status for r in standin.requests] == [429, 429, 200]
    assert {r.api_key for r in standin.requests} == {"key-a"}
    assert {r.model for r in standin.requests} == {FLASH}


async def test_overload_forever_fails_after_configured_attempts(standin, pools):
    standin.script(Fail(503), times=None)
    engine = pools.engine(make_settings(standin.base_url), fallback=False)

    with pytest.raises(AIUnavailableError) as caught:
        await collect(engine, DialogueRequest(system_instruction="s", message="m"))

    assert len(standin.requests) == ATTEMPTS
    assert str(caught.value) == BUSY_MESSAGE
    assert caught.value.status == 503 and caught.value.retryable


async def test_overloaded_flash_falls_back_to_pro(standin, pools):
    standin.script(Fail(503), model=FLASH, times=None)
    engine = pools.engine(make_settings(standin.base_url))

    chunks = await collect(engine, DialogueRequest(system_instruction="s", message="m"))

    assert chunks[-1].finish_reason == "STOP"
    assert [r.model for r in standin.requests] == [FLASH] * ATTEMPTS + [PRO]


async def test_report_task_uses_pro_and_falls_back_to_flash(standin, pools):
    standin.script(Fail(429), model=PRO, times=None)
    engine = pools.engine(make_settings(standin.base_url), task="report")
    assert engine.info.model == PRO

    await collect(engine, DialogueRequest(system_instruction="s", message="m"))

    assert [r.model for r in standin.requests] == [PRO] * ATTEMPTS + [FLASH]


async def test_key_out_of_quota_cools_down_and_next_key_is_used(standin, pools):
    now = [1000.0]
    settings = make_settings(standin.base_url, gemini_api_keys=["key-a", "key-b"])
    pool = pools.pool(settings, clock=lambda: now[0])
    engine = pools.engine(settings, pool=pool)
    standin.script(Fail(429, retry_delay_s=30), key="key-a", times=None)
    request = DialogueRequest(system_instruction="s", message="m")

    await collect(engine, request)
    assert [r.api_key for r in standin.requests] == ["key-a"] * ATTEMPTS + ["key-b"]
    assert {r.model for r in standin.requests} == {FLASH}

    # While key-a cools down (Gemini said 30 s), it is not even tried.
    standin.reset()
    now[0] += 29
    await collect(engine, request)
    assert [r.api_key for r in standin.requests] == ["key-b"]

    # After the cool-down key-a is back in use (its quota has been refilled).
    standin.reset()
    now[0] += 2
    await collect(engine, request)
    assert [r.api_key for r in standin.requests] == ["key-a"]


async def test_every_key_and_model_out_of_quota_is_a_clear_busy_error(standin, pools):
    settings = make_settings(standin.base_url, gemini_api_keys=["key-a", "key-b"])
    engine = pools.engine(settings)
    standin.script(Fail(429), times=None)
    request = DialogueRequest(system_instruction="s", message="m")

    with pytest.raises(AIUnavailableError) as caught:
        await collect(engine, request)
    assert str(caught.value) == BUSY_MESSAGE
    assert caught.value.status == 429
    assert len(standin.requests) == ATTEMPTS * 2 * 2  # 2 keys x 2 models

    # Everything is cooling down now: fail fast, without a request.
    standin.reset()
    with pytest.raises(AIUnavailableError):
        await collect(engine, request)
    assert standin.requests == []


async def test_rejected_key_is_skipped(standin, pools):
    settings = make_settings(standin.base_url, gemini_api_keys=["bad-key", "key-b"])
    engine = pools.engine(settings)
    standin.script(Fail(400, "API key not valid. Please pass a valid API key."), key="bad-key", times=None)

    await collect(engine, DialogueRequest(system_instruction="s", message="m"))

    assert [r.api_key for r in standin.requests] == ["bad-key", "key-b"]


async def test_every_key_rejected_is_not_reported_as_busy(standin, pools):
    standin.script(Fail(403, "Permission denied: API key revoked."), times=None)
    engine = pools.engine(make_settings(standin.base_url, gemini_api_keys=["key-a", "key-b"]))

    with pytest.raises(AIUnavailableError) as caught:
        await collect(engine, DialogueRequest(system_instruction="s", message="m"))

    assert [r.api_key for r in standin.requests] == ["key-a", "key-b"]  # 403 is not retried
    assert str(caught.value) != BUSY_MESSAGE
    assert caught.value.status == 403 and not caught.value.retryable


async def test_bad_request_is_not_retried_nor_rerouted(standin, pools):
    standin.script(Fail(400, "Invalid value at 'contents'"), times=None)
    engine = pools.engine(make_settings(standin.base_url, gemini_api_keys=["key-a", "key-b"]))

    with pytest.raises(AIUnavailableError) as caught:
        await collect(engine, DialogueRequest(system_instruction="s", message="m"))

    assert len(standin.requests) == 1
    assert caught.value.status == 400 and not caught.value.retryable
    assert "Invalid value" not in str(caught.value)  # details go to the log, not to learners


def test_no_key_is_a_config_error(standin):
    with pytest.raises(ConfigError, match="WP_GEMINI_API_KEYS"):
        GeminiKeyPool(make_settings(standin.base_url, gemini_api_keys=[]))


# ---------------------------------------------------------------------------------------------
# Structured output
# ---------------------------------------------------------------------------------------------


class Advice(BaseModel):
    tone: Literal["polite", "casual", "blunt"]
    score: int = Field(ge=0, le=100)
    tips: list[str]


async def test_generate_json_round_trip(standin, pools):
    standin.script(Reply.json({"tone": "polite", "score": 82, "tips": ["結論から話す"]}))
    pool = pools.pool(make_settings(standin.base_url))

    advice = await generate_json(
        pool,
        system_instruction="Rate the message.",
        prompt="お忙しいところすみません。",
        response_schema=Advice,
    )

    assert advice == Advice(tone="polite", score=82, tips=["結論から話す"])
    [sent] = standin.requests
    assert sent.path == f"/v1beta/models/{FLASH}:generateContent"
    assert sent.headers["x-goog-api-key"] == "key-a"
    assert sent.body["systemInstruction"]["parts"] == [{"text": "Rate the message."}]
    assert sent.body["contents"][0]["parts"][0]["text"] == "お忙しいところすみません。"
    config = sent.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    schema = config["responseSchema"]
    assert set(schema["required"]) == {"tone", "score", "tips"}
    assert schema["properties"]["tone"]["enum"] == ["polite", "casual", "blunt"]
    assert schema["properties"]["score"]["minimum"] == 0
    assert schema["properties"]["score"]["maximum"] == 100


async def test_generate_json_with_settings_and_model_fallback(standin):
    standin.script(Fail(503), model=PRO, times=None)
    standin.script(Reply.json({"tone": "casual", "score": 40, "tips": []}))

    advice = await generate_json(
        make_settings(standin.base_url),
        system_instruction="Rate.",
        prompt="おつ",
        response_schema=Advice,
        model=PRO,
    )

    assert advice.tone == "casual"
    assert [r.model for r in standin.requests] == [PRO] * ATTEMPTS + [FLASH]


async def test_generate_json_rejects_output_that_does_not_match(standin, pools):
    standin.script(Reply(['{"tone": "rude", "score": 5}']))
    with pytest.raises(AIUnavailableError) as caught:
        await generate_json(
            pools.pool(make_settings(standin.base_url)),
            system_instruction="Rate.",
            prompt="x",
            response_schema=Advice,
        )
    assert str(caught.value) == MALFORMED_MESSAGE


async def test_unscripted_stand_in_answers_json_from_the_schema(standin, pools):
    advice = await generate_json(
        pools.pool(make_settings(standin.base_url)),
        system_instruction="Rate.",
        prompt="よろしくお願いします",
        response_schema=Advice,
    )
    assert advice.tone == "polite" and 0 <= advice.score <= 100 and len(advice.tips) == 1


# ---------------------------------------------------------------------------------------------
# The stand-in as a command (benchmarks, `task up` demos)
# ---------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _wait_for_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
        else:
            writer.close()
            await writer.wait_closed()
            return


async def test_stand_in_command_line_serves_shaped_default_replies():
    port = _free_port()
    script = Path(__file__).with_name("gemini_standin.py")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        *["--port", str(port), "--first-token-delay-ms", "100"],
        *["--chunks", "5", "--inter-chunk-delay-ms", "10"],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = await asyncio.wait_for(process.stdout.readline(), timeout=10)
        assert f"127.0.0.1:{port}" in banner.decode()
        await _wait_for_port(port)
        engine = GeminiDialogueEngine(
            make_settings(f"http://127.0.0.1:{port}", gemini_api_keys=["fake-key"], gemini_retry_attempts=1)
        )
        started = time.monotonic()
        chunks = await collect(engine, DialogueRequest(system_instruction="", message="報告です"))
        await engine.pool.aclose()
        assert len([c for c in chunks if c.text]) == 5
        assert "".join(c.text for c in chunks) == "了解です。『報告です』についてですね。"
        assert time.monotonic() - started >= 0.1 + 4 * 0.01
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=5)


def test_raw_client_sees_google_error_shape(standin):
    """The stand-in's errors parse into google-genai's own error types, with code and status."""
    standin.script(Fail(429, retry_delay_s=7))
    client = genai.Client(
        api_key="key-a",
        http_options={"base_url": standin.base_url, "api_version": "v1beta"},
    )
    with pytest.raises(genai.errors.ClientError) as caught:
        client.models.generate_content(model=FLASH, contents="x")
    client.close()
    assert caught.value.code == 429 and caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.details["error"]["details"][0]["retryDelay"] == "7s"


async def test_light_stream_reader_reads_what_google_genai_reads(standin, pools):
    """The chat path's GeminiStream and the SDK's generate_content_stream agree chunk by chunk
    on the same wire stream: text, finish reason and usage."""
    script = Reply(["お疲れさま", "です。", "明日の件、", "承知しました！"], prompt_tokens=21, output_tokens=9)
    settings = make_settings(standin.base_url)
    pool = pools.pool(settings)
    request = DialogueRequest(system_instruction="s", message="明日の件です", history=HISTORY, temperature=0.3)

    standin.script(script)
    stream = GeminiDialogueEngine(settings, pool=pool).stream
    ours = [(c.text, c.finish_reason, c.usage) async for c in await stream.open("key-a", FLASH, stream_body(request))]

    standin.script(script)
    sdk = []
    async for response in await pool.client("key-a").aio.models.generate_content_stream(
        model=FLASH, contents="明日の件です"
    ):
        candidate = response.candidates[0]
        reason = candidate.finish_reason.value if candidate.finish_reason else ""
        metadata = response.usage_metadata
        usage = {}
        if metadata is not None:
            usage = {
                name: value
                for name, value in (
                    ("prompt_tokens", metadata.prompt_token_count),
                    ("output_tokens", metadata.candidates_token_count),
                    ("total_tokens", metadata.total_token_count),
                )
                if value is not None
            }
        sdk.append((response.text or "", reason, usage))

    assert ours == sdk
    assert ours[-1][1] == "STOP" and ours[-1][2]["total_tokens"] == 30
