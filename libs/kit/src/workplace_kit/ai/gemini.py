"""Gemini through google-genai: client setup, API-key rotation, Flash/Pro routing, streaming dialogue
and structured (JSON) output.

Layers of resilience, innermost first:

1. The google-genai client retries 408/429/500/502/503/504 itself, with exponential backoff and
   jitter (``WP_GEMINI_RETRY_*``), and times out after ``WP_GEMINI_TIMEOUT_S``.
   The dialogue stream is read by ``GeminiStream`` instead (same wire format, same retry
   policy through tenacity, google-genai's own error types): the SDK builds a full pydantic
   response model per streamed chunk, which was 40 % of the chat service's CPU under load.
2. ``GeminiKeyPool``: a key that still gets 429 (quota) after those retries cools down for a
   while (for that model: quotas are per model) and the next key is tried.
3. Model fallback: when every key is out of quota for a model, or the model answers 503
   (overloaded) after retries, the other model (Flash <-> Pro) is tried.
4. Anything left becomes ``AIUnavailableError`` with a message that is safe to show to learners;
   the details go to the log, never a traceback to the user.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import aiohttp
import httpx
from google import genai
from google.genai import errors, types
from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from workplace_kit.ai.types import AIUnavailableError, DialogueRequest, EngineInfo, ReplyChunk
from workplace_kit.config import ConfigError, ServiceSettings

try:  # google-genai prefers httpx2 when it is installed; its errors are not httpx's.
    import httpx2

    _TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
        httpx.HTTPError,
        httpx2.HTTPError,
        aiohttp.ClientError,
        OSError,
        errors.UnknownApiResponseError,
    )
except ImportError:  # pragma: no cover - depends on the environment
    _TRANSPORT_ERRORS = (httpx.HTTPError, aiohttp.ClientError, OSError, errors.UnknownApiResponseError)

# A stream that stops mid-way: transport errors, or an event that is not JSON.
_STREAM_CUT_ERRORS: tuple[type[BaseException], ...] = (*_TRANSPORT_ERRORS, ValueError)

_STALE_CONNECTION_ERRORS = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)

logger = logging.getLogger(__name__)

Task = Literal["dialogue", "report"]
ModelT = TypeVar("ModelT", bound=BaseModel)
T = TypeVar("T")

RETRY_STATUS_CODES = [408, 429, 500, 502, 503, 504]

BUSY_MESSAGE = (
    "AIが混み合っています。少し待ってからもう一度お試しください。"
    " / The AI is busy right now. Please wait a moment and try again."
)
FAILED_MESSAGE = "AIから応答を得られませんでした。もう一度お試しください。 / The AI could not answer. Please try again."
INTERRUPTED_MESSAGE = (
    "AIの応答が途中で途切れました。もう一度お試しください。 / The AI's answer was cut off. Please try again."
)
MALFORMED_MESSAGE = (
    "AIの応答を読み取れませんでした。もう一度お試しください。 / The AI's answer could not be read. Please try again."
)

# Cool-down when Gemini does not say how long (quota errors usually carry a RetryInfo delay).
DEFAULT_QUOTA_COOLDOWN_S = 60.0
# A key the API rejects (invalid, revoked) stays out much longer: it will not heal by itself.
REJECTED_KEY_COOLDOWN_S = 3600.0


def make_genai_client(settings: ServiceSettings, api_key: str) -> genai.Client:
    """A google-genai client for one key, with explicit timeout and retry policy.

    ``gemini_base_url`` / ``gemini_api_version`` are only passed when set, so production uses
    Google's defaults and tests point the same code at a local stand-in.
    """
    options: dict[str, Any] = {
        "timeout": int(settings.gemini_timeout_s * 1000),  # google-genai takes milliseconds
        "retry_options": types.HttpRetryOptions(
            attempts=settings.gemini_retry_attempts,
            initial_delay=settings.gemini_retry_initial_delay_s,
            max_delay=settings.gemini_retry_max_delay_s,
            exp_base=2,
            # Jitter proportional to the first delay, so tests with tiny delays stay fast.
            jitter=settings.gemini_retry_initial_delay_s,
            http_status_codes=RETRY_STATUS_CODES,
        ),
        # httpx allows 100 connections by default, and a streaming reply holds one for its
        # whole length: without this, the 101st concurrent chat waits for another to finish.
        "async_client_args": {
            "limits": httpx.Limits(
                max_connections=settings.gemini_max_connections,
                max_keepalive_connections=min(100, settings.gemini_max_connections),
            )
        },
    }
    if settings.gemini_base_url:
        options["base_url"] = settings.gemini_base_url
    if settings.gemini_api_version:
        options["api_version"] = settings.gemini_api_version
    return genai.Client(api_key=api_key, http_options=types.HttpOptions(**options))


def model_for(settings: ServiceSettings, task: Task) -> str:
    """Flash for dialogue (latency), Pro for reports (depth)."""
    return settings.gemini_model_pro if task == "report" else settings.gemini_model_flash


def fallback_model(settings: ServiceSettings, model: str) -> str | None:
    """The other model of the Flash/Pro pair, or None when they are the same."""
    if model == settings.gemini_model_flash:
        other = settings.gemini_model_pro
    elif model == settings.gemini_model_pro:
        other = settings.gemini_model_flash
    else:
        return None
    return other if other != model else None


def _retry_delay_s(error: errors.APIError) -> float | None:
    """The ``google.rpc.RetryInfo`` delay of a quota error ("39s", "1.5s"), if any."""
    body = error.details if isinstance(error.details, dict) else {}
    details = body.get("error", {}).get("details", []) if isinstance(body.get("error"), dict) else []
    for detail in details:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("RetryInfo"):
            match = re.fullmatch(r"\s*([0-9.]+)s\s*", str(detail.get("retryDelay", "")))
            if match:
                return float(match.group(1))
    return None


def _is_rejected_key(error: errors.APIError) -> bool:
    if error.code in (401, 403):
        return True
    text = f"{error.status} {error.message}".lower()
    return error.code == 400 and ("api_key_invalid" in text or "api key not valid" in text)


class GeminiKeyPool:
    """Several API keys; the first healthy key is used, a key out of quota cools down.

    Keys are used in order rather than round-robin, so one key's quota is used up before the
    next one's and a cooled key is visibly skipped. Cool-downs are per (key, model): a key out
    of Pro quota may still have Flash quota. Clients are created once per key and reused.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        keys: list[str] | None = None,
        quota_cooldown_s: float = DEFAULT_QUOTA_COOLDOWN_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.keys = list(keys if keys is not None else settings.gemini_api_keys)
        if not self.keys:
            raise ConfigError("WP_GEMINI_API_KEYS: no Gemini API key is set")
        self.quota_cooldown_s = quota_cooldown_s
        self._clock = clock
        self._cool_until: dict[tuple[str, str | None], float] = {}  # model None: every model
        self._clients: dict[str, genai.Client] = {}
        self._http: aiohttp.ClientSession | None = None

    def client(self, key: str) -> genai.Client:
        if key not in self._clients:
            self._clients[key] = make_genai_client(self.settings, key)
        return self._clients[key]

    def available_keys(self, model: str) -> list[str]:
        now = self._clock()
        return [
            key
            for key in self.keys
            if self._cool_until.get((key, model), 0) <= now and self._cool_until.get((key, None), 0) <= now
        ]

    def cool_down(self, key: str, model: str | None, seconds: float) -> None:
        """Keep ``key`` out of use for ``model`` (None: every model) for ``seconds``."""
        until = self._clock() + seconds
        self._cool_until[(key, model)] = max(until, self._cool_until.get((key, model), 0))

    def http(self) -> aiohttp.ClientSession:
        """One HTTP session for every key's streams (the key travels in a header). aiohttp,
        not httpx: measured on the stand-in's 20-chunk replies at 64 concurrent streams, 1.2 ms
        of CPU per reply against httpx's 5.0 (bench/gemini_readers.py)."""
        if self._http is None:
            timeout = self.settings.gemini_timeout_s
            self._http = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.settings.gemini_max_connections),
                # Like the SDK's timeout: for connecting and for each read, not the whole reply.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
                auto_decompress=True,
            )
        return self._http

    async def call(self, models: list[str], attempt: Callable[[str, str], Awaitable[T]]) -> T:
        """Run ``attempt(key, model)`` with failover across keys, then across ``models``.

        Raises AIUnavailableError when nothing works; every other exception from ``attempt``
        propagates unchanged.
        """
        last_error: BaseException | None = None
        last_status: int | None = None
        for model in models:
            keys = self.available_keys(model)
            if not keys:
                logger.warning("every gemini key is cooling down for %s", model)
            for key in keys:
                try:
                    return await attempt(key, model)
                except errors.APIError as exc:
                    last_error, last_status = exc, exc.code
                    if exc.code == 429:
                        cooldown = _retry_delay_s(exc) or self.quota_cooldown_s
                        logger.warning(
                            "gemini quota exhausted for key #%d on %s; cooling down %.0fs",
                            self.keys.index(key) + 1,
                            model,
                            cooldown,
                        )
                        self.cool_down(key, model, cooldown)
                        continue  # next key
                    if _is_rejected_key(exc):
                        logger.error(
                            "gemini rejected key #%d (%s %s); taking it out of use",
                            self.keys.index(key) + 1,
                            exc.code,
                            exc.status,
                        )
                        self.cool_down(key, None, REJECTED_KEY_COOLDOWN_S)
                        continue
                    if exc.code == 503:
                        logger.warning("gemini model %s overloaded after retries", model)
                        break  # other keys hit the same overloaded model: try the other model
                    logger.error("gemini call failed on %s: %s %s", model, exc.code, exc.message)
                    raise AIUnavailableError(
                        FAILED_MESSAGE,
                        status=exc.code,
                        retryable=exc.code >= 500 or exc.code == 408,
                    ) from exc
                except _TRANSPORT_ERRORS as exc:
                    logger.error("gemini call to %s failed: %s: %s", model, type(exc).__name__, exc)
                    raise AIUnavailableError(FAILED_MESSAGE) from exc
        if last_status in (None, 429, 503):
            raise AIUnavailableError(BUSY_MESSAGE, status=last_status or 429) from last_error
        # Every key was rejected: an operator must fix the keys, waiting will not help.
        raise AIUnavailableError(FAILED_MESSAGE, status=last_status, retryable=False) from last_error

    def models_for(self, model: str, *, fallback: bool = True) -> list[str]:
        other = fallback_model(self.settings, model) if fallback else None
        return [model, other] if other else [model]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aio.aclose()
            client.close()  # the sync side holds its own connection pool
        self._clients.clear()
        if self._http is not None:
            await self._http.close()
            self._http = None


def _finish_reason(response: types.GenerateContentResponse) -> str:
    for candidate in response.candidates or []:
        if candidate.finish_reason is not None:
            return str(getattr(candidate.finish_reason, "value", candidate.finish_reason))
    return ""


def _text(response: types.GenerateContentResponse) -> str:
    # Concatenate text parts ourselves: ``response.text`` warns on non-text parts (thoughts).
    parts = []
    for candidate in (response.candidates or [])[:1]:
        for part in (candidate.content.parts if candidate.content else None) or []:
            if part.text and not part.thought:
                parts.append(part.text)
    return "".join(parts)


_NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)

_USAGE_FIELDS = {
    "promptTokenCount": "prompt_tokens",
    "candidatesTokenCount": "output_tokens",
    "thoughtsTokenCount": "thoughts_tokens",
    "totalTokenCount": "total_tokens",
}


def stream_body(request: DialogueRequest) -> dict[str, Any]:
    """The JSON body of ``streamGenerateContent`` for a dialogue request (Gemini's REST names)."""
    contents = [{"role": t.role, "parts": [{"text": t.text}]} for t in request.history]
    contents.append({"role": "user", "parts": [{"text": request.message}]})
    body: dict[str, Any] = {"contents": contents}
    if request.system_instruction:
        body["systemInstruction"] = {"parts": [{"text": request.system_instruction}]}
    generation: dict[str, Any] = {}
    if request.temperature is not None:
        generation["temperature"] = request.temperature
    if request.max_output_tokens is not None:
        generation["maxOutputTokens"] = request.max_output_tokens
    if generation:
        body["generationConfig"] = generation
    return body


@dataclass
class StreamChunk:
    """What one streamed ``GenerateContentResponse`` holds for a dialogue: no more is parsed."""

    text: str
    finish_reason: str
    usage: dict[str, int]


def parse_chunk(data: dict[str, Any]) -> StreamChunk:
    """Text (thoughts left out), finish reason and usage of the first candidate of one event."""
    text, finish_reason = [], ""
    for candidate in (data.get("candidates") or [])[:1]:
        finish_reason = str(candidate.get("finishReason") or "")
        for part in (candidate.get("content") or {}).get("parts") or []:
            if part.get("text") and not part.get("thought"):
                text.append(part["text"])
    metadata = data.get("usageMetadata") or {}
    usage = {name: int(metadata[field]) for field, name in _USAGE_FIELDS.items() if field in metadata}
    return StreamChunk("".join(text), finish_reason, usage)


class GeminiStream:
    """``models/{model}:streamGenerateContent?alt=sse`` read off the wire with one shared httpx
    client: SSE ``data:`` lines decoded with the standard json module into ``StreamChunk``.

    Same behaviour as google-genai on this call (the contract tests hold both to the wire
    format): errors become google-genai's own ``ClientError``/``ServerError`` (from the HTTP
    status before the body, or from an ``error`` event mid-stream), and 408/429/5xx before the
    body are retried with exponential backoff and jitter, ``gemini_retry_attempts`` in all.
    """

    def __init__(self, settings: ServiceSettings, pool: GeminiKeyPool):
        self.settings = settings
        self.pool = pool
        base = (settings.gemini_base_url or "https://generativelanguage.googleapis.com").rstrip("/")
        self.url = f"{base}/{settings.gemini_api_version or 'v1beta'}/models/{{model}}:streamGenerateContent"

    async def open(self, key: str, model: str, body: dict[str, Any]) -> AsyncIterator[StreamChunk]:
        """Send the request (with retries) and return the chunks; raises before any chunk on
        an HTTP error status, so key and model failover can happen."""
        settings = self.settings
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(settings.gemini_retry_attempts),
            wait=wait_exponential_jitter(
                initial=settings.gemini_retry_initial_delay_s,
                max=settings.gemini_retry_max_delay_s,
                jitter=settings.gemini_retry_initial_delay_s,
            ),
            retry=retry_if_exception(lambda e: isinstance(e, errors.APIError) and e.code in RETRY_STATUS_CODES),
            reraise=True,
        ):
            with attempt:
                return await self._send(key, model, body)
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    async def _send(self, key: str, model: str, body: dict[str, Any]) -> AsyncIterator[StreamChunk]:
        http = self.pool.http()
        url = self.url.format(model=model)
        data = json.dumps(body, ensure_ascii=False).encode()
        headers = {"x-goog-api-key": key, "content-type": "application/json"}
        try:
            response = await http.post(url, params={"alt": "sse"}, headers=headers, data=data)
        except _STALE_CONNECTION_ERRORS:
            # A pooled connection the server closed while it sat idle: nothing reached the
            # model, so one more try on a fresh connection is safe and costs no attempt.
            response = await http.post(url, params={"alt": "sse"}, headers=headers, data=data)
        if response.status >= 400:
            try:
                raw = await response.read()
            finally:
                response.release()
            try:
                error_body = json.loads(raw)
            except ValueError:
                error_body = {"error": {"code": response.status, "message": raw[:200].decode(errors="replace")}}
            errors.APIError.raise_error(response.status, error_body, None)
        return self._chunks(response)

    @staticmethod
    async def _chunks(response: aiohttp.ClientResponse) -> AsyncIterator[StreamChunk]:
        try:
            async for line in response.content:
                if not line.startswith(b"data:"):
                    continue
                data = json.loads(line[5:])
                if "error" in data:
                    error = data["error"] if isinstance(data["error"], dict) else {}
                    errors.APIError.raise_error(int(error.get("code") or 500), data, None)
                yield parse_chunk(data)
        finally:
            # Read to the end: the connection goes back to the pool; stopped early: it is closed.
            response.release()


class GeminiDialogueEngine:
    """DialogueEngine on Gemini: streams a reply for a persona, a situation and a history.

    Model: Flash for ``task="dialogue"``, Pro for ``task="report"``, with fallback to the other
    on quota (429) or overload (503) after retries. Key failover happens while opening the
    stream (Gemini reports quota and overload before the first chunk).

    Errors: ``AIUnavailableError`` for every failure, with a message fit for learners. A
    failure *after* some chunks were yielded (cut connection, error event mid-stream, stream
    ending without a finish reason) also raises ``AIUnavailableError``: the caller must then
    discard the partial reply and store nothing of it.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        task: Task = "dialogue",
        pool: GeminiKeyPool | None = None,
        fallback: bool = True,
    ):
        self.settings = settings
        self.pool = pool or GeminiKeyPool(settings)
        self.model = model_for(settings, task)
        self.fallback = fallback
        self.info = EngineInfo(id="gemini", label=f"Gemini ({self.model})", model=self.model)
        self.stream = GeminiStream(settings, self.pool)

    def model_for(self, task: Task) -> str:
        return model_for(self.settings, task)

    async def stream_reply(self, request: DialogueRequest) -> AsyncIterator[ReplyChunk]:
        body = stream_body(request)
        served_by = self.model

        async def attempt(key: str, model: str) -> AsyncIterator[StreamChunk]:
            nonlocal served_by
            served_by = model
            return await self.stream.open(key, model, body)

        chunks = await self.pool.call(self.pool.models_for(self.model, fallback=self.fallback), attempt)
        if served_by != self.model:
            logger.warning("gemini reply served by fallback model %s", served_by)
        finish_reason = ""
        usage: dict[str, int] = {}
        try:
            async for chunk in chunks:
                finish_reason = chunk.finish_reason or finish_reason
                usage = chunk.usage or usage
                if chunk.text:
                    yield ReplyChunk(text=chunk.text)
        except errors.APIError as exc:
            logger.error("gemini stream failed mid-way: %s %s", exc.code, exc.message)
            raise AIUnavailableError(INTERRUPTED_MESSAGE, status=exc.code) from exc
        except _STREAM_CUT_ERRORS as exc:
            logger.error("gemini stream cut mid-way: %s: %s", type(exc).__name__, exc)
            raise AIUnavailableError(INTERRUPTED_MESSAGE) from exc
        finally:
            # Also when the caller stops early (learner gone): release the HTTP connection now.
            await cast("AsyncGenerator[StreamChunk, None]", chunks).aclose()
        if not finish_reason:
            # Gemini always ends a complete stream with a finish reason; without one the reply
            # may be truncated, and a truncated reply must not be stored as if whole.
            raise AIUnavailableError(INTERRUPTED_MESSAGE)
        yield ReplyChunk(text="", final=True, finish_reason=finish_reason, usage=usage)


async def generate_json(
    settings_or_engine: ServiceSettings | GeminiDialogueEngine | GeminiKeyPool,
    *,
    system_instruction: str,
    prompt: str,
    response_schema: type[ModelT],
    model: str | None = None,
    temperature: float | None = None,
) -> ModelT:
    """Ask Gemini for JSON matching ``response_schema`` (a pydantic model) and parse it.

    Uses structured output (``responseMimeType: application/json`` + ``responseSchema`` built
    from the model). Same key failover, model fallback and error handling as the dialogue
    engine; output that does not validate raises ``AIUnavailableError`` too. Pass an engine or
    a pool to reuse its connections and cool-downs; with bare settings a pool is made for this
    one call.
    """
    if isinstance(settings_or_engine, GeminiKeyPool):
        pool, owned = settings_or_engine, False
    elif isinstance(settings_or_engine, GeminiDialogueEngine):
        pool, owned = settings_or_engine.pool, False
    else:
        pool, owned = GeminiKeyPool(settings_or_engine), True
    config = types.GenerateContentConfig(
        system_instruction=system_instruction or None,
        response_mime_type="application/json",
        response_schema=response_schema,
        temperature=temperature,
        automatic_function_calling=_NO_AFC,
    )

    async def attempt(key: str, chosen: str) -> types.GenerateContentResponse:
        return await pool.client(key).aio.models.generate_content(model=chosen, contents=prompt, config=config)

    try:
        response = await pool.call(pool.models_for(model or pool.settings.gemini_model_flash), attempt)
    finally:
        if owned:
            await pool.aclose()
    text = _text(response)
    try:
        return response_schema.model_validate_json(text)
    except ValidationError as exc:
        logger.error(
            "gemini JSON did not match %s (finish reason %r): %s",
            response_schema.__name__,
            _finish_reason(response),
            exc,
        )
        raise AIUnavailableError(MALFORMED_MESSAGE, retryable=True) from exc
