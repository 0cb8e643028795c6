"""Opt-in local generative model behind an OpenAI-compatible server (Ollama, llama.cpp's server).

Used when WP_AI_PROVIDER=local and WP_LOCAL_LLM_BASE_URL is set. The server's
``/v1/chat/completions`` is called with ``stream=true`` and the server-sent events are read
with httpx-sse; each content delta becomes a ReplyChunk.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from workplace_kit.ai.types import AIUnavailableError, DialogueRequest, EngineInfo, ReplyChunk
from workplace_kit.config import ServiceSettings

# OpenAI finish reasons -> the names the Gemini engine reports, so callers see one vocabulary.
_FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"}

log = logging.getLogger(__name__)


def _chat_completions_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    # Accept both "http://host:11434" and "http://host:11434/v1" (how Ollama's docs write it).
    if base.endswith("/v1"):
        base = base[: -len("/v1")]
    return f"{base}/v1/chat/completions"


def to_openai_messages(request: DialogueRequest) -> list[dict[str, str]]:
    """System instruction, then the history, then the learner's new message."""
    messages: list[dict[str, str]] = []
    if request.system_instruction.strip():
        messages.append({"role": "system", "content": request.system_instruction})
    for turn in request.history:
        messages.append({"role": "assistant" if turn.role == "model" else "user", "content": turn.text})
    messages.append({"role": "user", "content": request.message})
    return messages


def _error_message(body: bytes) -> str:
    """The server's own words: OpenAI style {"error": {"message"}}, {"error": "..."}, FastAPI's
    {"detail": ...} (llama-cpp-python's server) or text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        return text[:300] or "(empty body)"
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        return str(error.get("message") or error.get("detail") or error)[:300]
    return str(error)[:300]


class LocalLLMDialogueEngine:
    """Streams replies from an OpenAI-compatible chat completions server."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 120.0,
        connect_timeout_s: float = 5.0,
    ) -> None:
        if not base_url:
            raise ValueError("LocalLLMDialogueEngine needs a base URL (WP_LOCAL_LLM_BASE_URL)")
        self.base_url = base_url
        self.model = model
        self.url = _chat_completions_url(base_url)
        self._api_key = api_key
        # A local model may think for a while before the first token; connecting must be quick.
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self.info = EngineInfo(id="local-llm", label=f"ローカルLLM ({model})", model=model)

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> LocalLLMDialogueEngine:
        if not settings.local_llm_base_url:
            raise ValueError("WP_AI_PROVIDER=local needs WP_LOCAL_LLM_BASE_URL (e.g. http://127.0.0.1:11434)")
        return cls(settings.local_llm_base_url, settings.local_llm_model)

    def request_body(self, request: DialogueRequest) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": to_openai_messages(request),
            "stream": True,
            "temperature": request.temperature,
            "max_tokens": request.max_output_tokens,
            "stream_options": {"include_usage": True},
        }

    # What went wrong, with the server's address, goes to the log; the learner is told only
    # that the AI is unavailable (AIUnavailableError messages reach the page).
    LEARNER_MESSAGE = "the local AI model is unavailable right now; please try again shortly"

    def _unavailable(self, detail: str, *, status: int | None = None, retryable: bool = True) -> AIUnavailableError:
        log.warning("local LLM failed: %s", detail)
        return AIUnavailableError(self.LEARNER_MESSAGE, status=status, retryable=retryable)

    async def stream_reply(self, request: DialogueRequest) -> AsyncIterator[ReplyChunk]:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        pending: str | None = None  # held back one delta so the last text rides on the final chunk
        finish_reason = ""
        usage: dict[str, int] = {}
        events = 0  # server-sent events read, [DONE] included
        try:
            async with httpx.AsyncClient(timeout=self._timeout, headers=headers) as client:
                async with aconnect_sse(client, "POST", self.url, json=self.request_body(request)) as source:
                    response = source.response
                    if response.status_code >= 400:
                        body = await response.aread()
                        raise self._unavailable(
                            f"local LLM server {self.url} answered HTTP {response.status_code}: {_error_message(body)}",
                            status=response.status_code,
                            retryable=response.status_code >= 500 or response.status_code == 429,
                        )
                    async for event in source.aiter_sse():
                        events += 1
                        if event.data.strip() == "[DONE]":
                            break
                        payload = self._parse_event(event.data)
                        if payload.get("usage"):
                            usage = {k: int(v) for k, v in payload["usage"].items() if isinstance(v, int)}
                        for choice in payload.get("choices") or []:
                            content = (choice.get("delta") or {}).get("content") or ""
                            if choice.get("finish_reason"):
                                finish_reason = str(choice["finish_reason"])
                            if content:
                                if pending is not None:
                                    yield ReplyChunk(text=pending)
                                pending = content
        except AIUnavailableError:
            raise
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise self._unavailable(
                f"local LLM server {self.url} is unreachable ({exc.__class__.__name__}: {exc}); "
                "is Ollama or llama.cpp's server running there?"
            ) from exc
        except httpx.TimeoutException as exc:
            raise self._unavailable(f"local LLM server {self.url} timed out ({exc.__class__.__name__})") from exc
        except (httpx.HTTPError, SSEError) as exc:
            raise self._unavailable(f"local LLM server {self.url} failed mid-stream: {exc}") from exc

        if pending is None and events == 0:
            # llama-cpp-python's server answers 200, then fails inside the stream and closes it
            # without a word (e.g. a conversation longer than its n_ctx): its own log says why.
            raise self._unavailable(
                f"local LLM server {self.url} closed the stream without a reply or an error event; "
                "see the server's log (a conversation longer than the model's context does this "
                "with llama-cpp-python's server: raise its n_ctx)"
            )
        if pending is None:
            raise self._unavailable(f"local LLM server {self.url} returned an empty reply", retryable=True)
        yield ReplyChunk(
            text=pending,
            final=True,
            finish_reason=_FINISH_REASONS.get(finish_reason, finish_reason.upper() or "STOP"),
            usage=usage,
        )

    def _parse_event(self, data: str) -> dict[str, Any]:
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise self._unavailable(f"local LLM server {self.url} sent a malformed event: {data[:200]!r}") from exc
        if not isinstance(payload, dict):
            raise self._unavailable(f"local LLM server {self.url} sent an unexpected event: {data[:200]!r}")
        if "error" in payload:  # llama.cpp and Ollama report some failures inside the stream
            raise self._unavailable(f"local LLM server {self.url} reported an error: {_error_message(data.encode())}")
        return payload
