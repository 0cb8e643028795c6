"""A stream of domain events as Server-Sent Events: each event through the endpoint's own
converter; an error after the stream began ends it with one `error` event in the format of
every other error (never a stack trace)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from sse_starlette import EventSourceResponse, ServerSentEvent

from .errors import DomainError

log = logging.getLogger(__name__)
Event = TypeVar("Event")
# A comment line this often keeps idle proxies from closing a slow stream.
PING_S = 15


def event_stream(
    events: AsyncIterator[Event], to_sse: Callable[[Event], ServerSentEvent], *, what: str
) -> EventSourceResponse:
    """`what` names the stream in the log ("chat stream")."""

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in events:
                yield to_sse(event)
        except DomainError as exc:
            yield ServerSentEvent(json.dumps(exc.to_json(), ensure_ascii=False), event="error")
        except Exception:  # noqa: BLE001 - the stream has begun: report, don't leak a trace
            log.exception("%s failed", what)
            body = {"error": "internal", "message": "internal error; the problem has been logged"}
            yield ServerSentEvent(json.dumps(body), event="error")

    # No proxy buffering: each event reaches the browser as it is sent.
    return EventSourceResponse(stream(), ping=PING_S, headers={"X-Accel-Buffering": "no"})
