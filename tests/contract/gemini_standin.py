"""A local HTTP server that speaks the Gemini REST wire format, for tests, benchmarks and demos.

It answers the real ``google-genai`` client pointed at it with
``HttpOptions(base_url=stand_in.base_url)`` (or ``WP_GEMINI_BASE_URL``):

* ``POST /{version}/models/{model}:generateContent``
* ``POST /{version}/models/{model}:streamGenerateContent?alt=sse`` (``data: <json>`` events)
* ``POST /{version}/models/{model}:countTokens``

under any version prefix (v1, v1beta, v1alpha). Speech too: a ``generateContent`` request
asking for ``responseModalities: ["AUDIO"]`` gets a part ``inlineData`` with raw PCM
(``audio/L16;codec=pcm;rate=24000``, a sine tone whose length grows with the text, see
``speech_duration_ms``), and a request carrying audio input (``inlineData`` with an ``audio/*``
type, as in transcription) gets a short deterministic transcript unless a ``Reply`` is
scripted. Every request is recorded (path, query, headers, JSON body, the API key) for
assertions. Behaviour is scripted per test with a queue of rules (``script``); a request
takes the first rule that matches it (by key, model, action). With no rule left, it answers
deterministically from the last user message (「了解です。『…』についてですね。」 split into
chunks), or, when the request asks for JSON (``responseMimeType: application/json``), with an
instance built from the request's schema, so end-to-end runs and benchmarks need no scripting.

In tests::

    with GeminiStandIn() as gemini:
        gemini.script(Fail(429), times=2)          # two quota errors, then the default reply
        gemini.script(Reply(["a", "b"], first_token_delay_ms=50))
        ... point the client at gemini.base_url ...
        assert gemini.requests[0].api_key == "test-key"

From the command line (benchmarks, ``task up`` demos with a fake key)::

    python tests/contract/gemini_standin.py --port 8099 --first-token-delay-ms 200 \
        --chunks 5 --inter-chunk-delay-ms 20
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import collections
import json
import math
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

# Google's canonical status names, as they appear in error bodies.
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_DEFAULT_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    503: "The model is overloaded. Please try again later.",
    500: "An internal error has occurred.",
}


# --------------------------------------------------------------------------------------------
# Behaviours a test can script
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """Answer with these text chunks (None: the default echo reply, split like the server's
    default). Delays are in milliseconds. Token counts default to an estimate from the text."""

    chunks: Sequence[str] | None = None
    first_token_delay_ms: float = 0
    inter_chunk_delay_ms: float = 0
    finish_reason: str = "STOP"
    prompt_tokens: int | None = None
    output_tokens: int | None = None

    @classmethod
    def json(cls, value: object, **kwargs: Any) -> Reply:
        """Answer with this object serialised as JSON text (structured output)."""
        return cls([json.dumps(value, ensure_ascii=False)], **kwargs)


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error in Google's error format, before any body is streamed."""

    status: int = 503
    message: str | None = None
    retry_delay_s: float | None = None  # adds a google.rpc.RetryInfo detail, as quota errors do


@dataclass(frozen=True)
class FailMidStream:
    """Stream these chunks, then fail: with an error event in the stream (what Gemini does), or,
    with ``disconnect=True``, by dropping the connection mid-body."""

    chunks: Sequence[str] = ("途中まで",)
    status: int = 500
    message: str = "An internal error has occurred."
    disconnect: bool = False
    inter_chunk_delay_ms: float = 0


@dataclass(frozen=True)
class AudioReply:
    """Answer a speech request with raw 16-bit PCM: a tone of ``duration_ms`` (None: grows with
    the text, ``speech_duration_ms``) at ``sample_rate``; ``mime_type`` overrides the MIME type
    (default ``audio/L16;codec=pcm;rate=<sample_rate>``, what Gemini sends)."""

    duration_ms: int | None = None
    sample_rate: int = 24_000
    mime_type: str | None = None
    finish_reason: str = "STOP"


Behaviour = Reply | Fail | FailMidStream | AudioReply


@dataclass
class _Rule:
    behaviour: Behaviour
    remaining: int | None  # None: forever
    key: str | None
    model: str | None
    action: str | None

    def matches(self, key: str | None, model: str, action: str) -> bool:
        return (
            (self.key is None or self.key == key)
            and (self.model is None or self.model == model)
            and (self.action is None or self.action == action)
        )


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: Any
    api_version: str
    model: str
    action: str  # generateContent, streamGenerateContent, countTokens
    api_key: str | None
    status: int  # the HTTP status the stand-in answered with
    received_at: float = field(default_factory=time.monotonic)

    @property
    def generation_config(self) -> dict[str, Any]:
        return (self.body or {}).get("generationConfig") or {}

    @property
    def response_modalities(self) -> list[str]:
        return list(_field(self.generation_config, "responseModalities", "response_modalities") or [])

    @property
    def voice_name(self) -> str | None:
        """speechConfig.voiceConfig.prebuiltVoiceConfig.voiceName, in either spelling: google-genai
        3.x sends the inside of speechConfig in snake_case, which Gemini accepts too."""
        speech = _field(self.generation_config, "speechConfig", "speech_config") or {}
        voice = _field(speech, "voiceConfig", "voice_config") or {}
        prebuilt = _field(voice, "prebuiltVoiceConfig", "prebuilt_voice_config") or {}
        return _field(prebuilt, "voiceName", "voice_name")

    @property
    def inline_data(self) -> list[tuple[str, bytes]]:
        """(MIME type, decoded bytes) of every inline part of the user's contents."""
        return _inline_parts(self.body or {})

    @property
    def user_texts(self) -> list[str]:
        return [
            part.get("text", "")
            for content in (self.body or {}).get("contents", [])
            if content.get("role", "user") == "user"
            for part in content.get("parts", [])
        ]


# --------------------------------------------------------------------------------------------
# Helpers shared by the default answers
# --------------------------------------------------------------------------------------------


def approx_tokens(text: str) -> int:
    """A deterministic token estimate (about 4 UTF-8 bytes a token); not Gemini's tokenizer."""
    return math.ceil(len(text.encode("utf-8")) / 4) if text else 0


def _has_japanese(text: str) -> bool:
    return any(0x3040 <= ord(ch) <= 0x30FF or 0x4E00 <= ord(ch) <= 0x9FFF for ch in text)


def default_reply_text(message: str) -> str:
    message = message.strip() or "…"
    if _has_japanese(message) or not message.isascii():
        return f"了解です。『{message}』についてですね。"
    return f'I see. You mean "{message}", right?'


def split_chunks(text: str, count: int) -> list[str]:
    """Split text into ``count`` nearly equal, non-empty pieces (fewer if the text is short)."""
    count = max(1, min(count, len(text)))
    size, extra = divmod(len(text), count)
    pieces, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        pieces.append(text[start:end])
        start = end
    return pieces


def _field(obj: dict[str, Any], camel: str, snake: str) -> Any:
    """A field of a request in Gemini's camelCase or proto snake_case (both are accepted)."""
    return obj.get(camel, obj.get(snake))


def _b64decode(data: str) -> bytes:
    """Base64 in either alphabet, as Gemini reads it: google-genai sends bytes URL-safe
    ("-", "_"), other clients the standard way ("+", "/")."""
    return base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)


def _inline_parts(body: dict[str, Any]) -> list[tuple[str, bytes]]:
    found = []
    for content in body.get("contents", []):
        for part in content.get("parts", []):
            blob = _field(part, "inlineData", "inline_data")
            if isinstance(blob, dict):
                mime = str(_field(blob, "mimeType", "mime_type") or "")
                found.append((mime, _b64decode(str(blob.get("data") or ""))))
    return found


def wants_audio(body: dict[str, Any]) -> bool:
    config = body.get("generationConfig") or {}
    return "AUDIO" in [str(m).upper() for m in _field(config, "responseModalities", "response_modalities") or []]


def speech_duration_ms(text: str) -> int:
    """How long the stand-in's speech for ``text`` lasts: 200 ms plus 80 ms a character."""
    return 200 + 80 * len(text)


def tone_pcm(duration_ms: int, sample_rate: int = 24_000, frequency_hz: float = 220.0) -> bytes:
    """A sine tone as mono signed 16-bit little-endian PCM, at a third of full scale."""
    count = sample_rate * duration_ms // 1000
    samples = array.array(
        "h", (int(10_000 * math.sin(2 * math.pi * frequency_hz * i / sample_rate)) for i in range(count))
    )
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def default_transcript(request_text: str) -> str:
    """What the stand-in "hears" in audio it is asked to transcribe, in the language the
    instruction names (Japanese unless it names English)."""
    if "English" in request_text or "英語" in request_text:
        return "Good morning. Could I ask you something about the report?"
    return "おはようございます。報告書について少しお聞きしてもよろしいでしょうか。"


def _audio_response_json(reply: AudioReply, text: str, model: str) -> dict[str, Any]:
    duration_ms = reply.duration_ms if reply.duration_ms is not None else speech_duration_ms(text)
    mime = reply.mime_type or f"audio/L16;codec=pcm;rate={reply.sample_rate}"
    data = base64.b64encode(tone_pcm(duration_ms, reply.sample_rate)).decode("ascii")
    prompt = approx_tokens(text)
    output = math.ceil(duration_ms / 40)  # Gemini counts audio at 25 tokens a second
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"inlineData": {"mimeType": mime, "data": data}}]},
                "finishReason": reply.finish_reason,
                "index": 0,
            }
        ],
        "modelVersion": model,
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output,
        },
    }


def _all_request_text(body: dict[str, Any]) -> str:
    texts = [part.get("text", "") for content in body.get("contents", []) for part in content.get("parts", [])]
    system = body.get("systemInstruction") or {}
    texts += [part.get("text", "") for part in system.get("parts", [])]
    return "\n".join(texts)


def _last_user_text(body: dict[str, Any]) -> str:
    for content in reversed(body.get("contents", [])):
        if content.get("role", "user") == "user":
            return "".join(part.get("text", "") for part in content.get("parts", []))
    return ""


def sample_from_schema(schema: dict[str, Any], text: str, root: dict[str, Any] | None = None) -> Any:
    """Build a value that satisfies a Gemini ``responseSchema`` (OpenAPI subset, upper-case
    types) or a ``responseJsonSchema`` (JSON Schema with ``$defs``): enums take their first
    value, numbers the middle of their range, strings the given text."""
    root = root if root is not None else schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return sample_from_schema(root.get("$defs", {}).get(name, {}), text, root)
    for combinator in ("anyOf", "oneOf", "allOf"):
        if schema.get(combinator):
            return sample_from_schema(schema[combinator][0], text, root)
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if isinstance(kind, list):  # JSON Schema allows ["string", "null"]
        kind = next((k for k in kind if k != "null"), "null")
    kind = str(kind).lower()
    if kind == "object":
        return {name: sample_from_schema(prop, text, root) for name, prop in schema.get("properties", {}).items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [sample_from_schema(schema.get("items", {}), text, root) for _ in range(count)]
    if kind in ("number", "integer"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and high is not None:
            value = (float(low) + float(high)) / 2
        elif low is not None:
            value = float(low)
        else:
            value = min(0.0, float(high)) if high is not None else 0.0
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return text


def _error_body(status: int, message: str | None, retry_delay_s: float | None = None) -> dict:
    error: dict[str, Any] = {
        "code": status,
        "message": message or _DEFAULT_MESSAGES.get(status, f"HTTP {status}"),
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if retry_delay_s is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay_s}s"}]
    return {"error": error}


def _response_json(text: str, model: str, *, finish_reason: str | None, usage: dict[str, int] | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": [{"text": text}]},
        "index": 0,
    }
    if finish_reason:
        candidate["finishReason"] = finish_reason
    response: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
    if usage is not None:
        response["usageMetadata"] = usage
    return response


def _sse(event: dict[str, Any]) -> bytes:
    # Gemini sends one-line JSON per event, CRLF-terminated, with a blank line between events.
    return f"data: {json.dumps(event, ensure_ascii=False)}\r\n\r\n".encode()


class _DroppedStream(Response):
    """Sends the headers and some SSE events, then returns without finishing the body, so the
    server closes the connection: what a network cut looks like to the client."""

    def __init__(self, events: list[bytes], delay_s: float):
        super().__init__(media_type="text/event-stream")
        self._events = events
        self._delay_s = delay_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # No content-length: the body is chunked, and left unfinished on purpose.
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for event in self._events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await asyncio.sleep(self._delay_s)


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class GeminiStandIn:
    """Gemini REST stand-in on 127.0.0.1, run by uvicorn in a background thread.

    ``first_token_delay_ms``, ``chunks`` and ``inter_chunk_delay_ms`` shape the default reply.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        first_token_delay_ms: float = 0,
        chunks: int = 3,
        inter_chunk_delay_ms: float = 0,
        keep_requests: int | None = None,
    ):
        self.host = host
        self.port = port
        self.first_token_delay_ms = first_token_delay_ms
        self.default_chunks = chunks
        self.inter_chunk_delay_ms = inter_chunk_delay_ms
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        # Every request is kept for the tests' assertions; a long-running stand-in (a benchmark's)
        # keeps the last `keep_requests`: tens of thousands of bodies would make Python's full
        # garbage collections pause it, stalling every reply it streams at that moment.
        self._requests: list[RecordedRequest] | collections.deque[RecordedRequest] = (
            [] if keep_requests is None else collections.deque(maxlen=keep_requests)
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(routes=[Route("/{version}/models/{target:path}", self._handle, methods=["POST"])])

    # -- scripting and inspection ---------------------------------------------------------

    def script(
        self,
        *behaviours: Behaviour,
        times: int | None = 1,
        key: str | None = None,
        model: str | None = None,
        action: str | None = None,
    ) -> GeminiStandIn:
        """Queue behaviours, each used ``times`` times (None: forever), for the requests that
        match ``key`` / ``model`` / ``action`` (None matches any)."""
        if times is not None and times < 1:
            raise ValueError("times must be at least 1, or None for forever")
        with self._lock:
            for behaviour in behaviours:
                self._rules.append(_Rule(behaviour, times, key, model, action))
        return self

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(
        self, *, action: str | None = None, model: str | None = None, key: str | None = None
    ) -> list[RecordedRequest]:
        return [
            r
            for r in self.requests
            if (action is None or r.action == action)
            and (model is None or r.model == model)
            and (key is None or r.api_key == key)
        ]

    def reset(self) -> None:
        """Forget recorded requests and any rules not used up."""
        with self._lock:
            self._rules.clear()
            self._requests.clear()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> GeminiStandIn:
        if self._thread is not None:
            return self
        # Bind first so that the port is known (port 0 picks a free one) before serving.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="gemini-standin", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"Gemini stand-in did not start on {self.base_url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- request handling -----------------------------------------------------------------

    def _take_rule(self, key: str | None, model: str, action: str) -> Behaviour | None:
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.matches(key, model, action):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining == 0:
                            del self._rules[index]
                    return rule.behaviour
        return None

    async def _handle(self, request: Request) -> Response:
        version = request.path_params["version"]
        model, _, action = request.path_params["target"].rpartition(":")
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = None
        api_key = request.headers.get("x-goog-api-key") or request.query_params.get("key")

        if body is None:
            behaviour: Behaviour | None = Fail(400, "Invalid JSON payload received.")
        elif action not in ("generateContent", "streamGenerateContent", "countTokens"):
            behaviour = Fail(404, f"Method {action!r} not found.")
        elif not api_key:
            behaviour = Fail(403, "Method doesn't allow unregistered callers. Set an API key.")
        else:
            behaviour = self._take_rule(api_key, model, action)
        if isinstance(behaviour, FailMidStream) and action != "streamGenerateContent":
            behaviour = Fail(behaviour.status, behaviour.message)

        status = behaviour.status if isinstance(behaviour, Fail) else 200
        with self._lock:
            self._requests.append(
                RecordedRequest(
                    method=request.method,
                    path=request.url.path,
                    query=dict(request.query_params),
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                    api_version=version,
                    model=model,
                    action=action,
                    api_key=api_key,
                    status=status,
                )
            )

        if isinstance(behaviour, Fail):
            return JSONResponse(
                _error_body(behaviour.status, behaviour.message, behaviour.retry_delay_s),
                status_code=behaviour.status,
            )
        if action == "countTokens":
            return JSONResponse({"totalTokens": approx_tokens(_all_request_text(body))})
        if isinstance(behaviour, FailMidStream):
            return self._fail_mid_stream(behaviour, model)
        if isinstance(behaviour, AudioReply) or (behaviour is None and wants_audio(body)):
            audio = self._audio_reply(behaviour, body, model)
            if action == "generateContent":
                return JSONResponse(audio)
            return StreamingResponse(iter([_sse(audio)]), media_type="text/event-stream")

        reply = behaviour if isinstance(behaviour, Reply) else self._default_reply(body)
        if action == "generateContent":
            await asyncio.sleep(reply.first_token_delay_ms / 1000)
            text = "".join(reply.chunks or [])
            return JSONResponse(
                _response_json(
                    text,
                    model,
                    finish_reason=reply.finish_reason,
                    usage=self._usage(body, text, reply),
                )
            )
        return StreamingResponse(self._stream(reply, body, model), media_type="text/event-stream")

    @staticmethod
    def _audio_reply(behaviour: AudioReply | None, body: dict[str, Any], model: str) -> dict[str, Any]:
        return _audio_response_json(behaviour or AudioReply(), _last_user_text(body), model)

    def _default_reply(self, body: dict[str, Any]) -> Reply:
        if any(mime.lower().startswith("audio/") for mime, _ in _inline_parts(body)):
            return Reply([default_transcript(_all_request_text(body))], first_token_delay_ms=self.first_token_delay_ms)
        message = _last_user_text(body)
        config = body.get("generationConfig") or {}
        if config.get("responseMimeType") == "application/json":
            schema = config.get("responseJsonSchema") or config.get("responseSchema") or {}
            return Reply.json(
                sample_from_schema(schema, default_reply_text(message)),
                first_token_delay_ms=self.first_token_delay_ms,
            )
        return Reply(
            split_chunks(default_reply_text(message), self.default_chunks),
            first_token_delay_ms=self.first_token_delay_ms,
            inter_chunk_delay_ms=self.inter_chunk_delay_ms,
        )

    @staticmethod
    def _usage(body: dict[str, Any], text: str, reply: Reply) -> dict[str, int]:
        prompt = reply.prompt_tokens if reply.prompt_tokens is not None else approx_tokens(_all_request_text(body))
        output = reply.output_tokens if reply.output_tokens is not None else approx_tokens(text)
        return {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output,
        }

    async def _stream(self, reply: Reply, body: dict[str, Any], model: str) -> AsyncIterator[bytes]:
        chunks = list(reply.chunks or [""])
        await asyncio.sleep(reply.first_token_delay_ms / 1000)
        for index, chunk in enumerate(chunks):
            if index:
                await asyncio.sleep(reply.inter_chunk_delay_ms / 1000)
            last = index == len(chunks) - 1
            yield _sse(
                _response_json(
                    chunk,
                    model,
                    finish_reason=reply.finish_reason if last else None,
                    usage=self._usage(body, "".join(chunks), reply) if last else None,
                )
            )

    @staticmethod
    def _fail_mid_stream(behaviour: FailMidStream, model: str) -> Response:
        events = [_sse(_response_json(chunk, model, finish_reason=None, usage=None)) for chunk in behaviour.chunks]
        delay_s = behaviour.inter_chunk_delay_ms / 1000
        if behaviour.disconnect:
            return _DroppedStream(events, delay_s)

        async def body() -> AsyncIterator[bytes]:
            for event in events:
                yield event
                await asyncio.sleep(delay_s)
            yield _sse(_error_body(behaviour.status, behaviour.message))

        return StreamingResponse(body(), media_type="text/event-stream")


def _main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Gemini REST stand-in (no real AI).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--first-token-delay-ms", type=float, default=0)
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--inter-chunk-delay-ms", type=float, default=0)
    parser.add_argument("--keep-requests", type=int, default=None, help="keep only the last N requests (benchmarks)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    stand_in = GeminiStandIn(
        host=args.host,
        port=args.port,
        first_token_delay_ms=args.first_token_delay_ms,
        chunks=args.chunks,
        inter_chunk_delay_ms=args.inter_chunk_delay_ms,
        keep_requests=args.keep_requests,
    )
    print(
        f"Gemini stand-in on http://{args.host}:{args.port} "
        f"(use WP_GEMINI_BASE_URL=http://{args.host}:{args.port} WP_GEMINI_API_KEYS=fake-key)",
        flush=True,
    )
    # In the foreground uvicorn handles SIGINT/SIGTERM itself.
    uvicorn.run(stand_in.app, host=args.host, port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    _main()
