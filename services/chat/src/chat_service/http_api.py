"""HTTP adapter: POST /api/v2/chat streams the reply as Server-Sent Events."""

# No `from __future__ import annotations`: FastAPI reads the request model, built inside
# build_router from the content, from the endpoint's real annotations.

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Literal, Protocol, TypeAlias

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from workplace_kit.auth import Principal
from workplace_kit.service import UUID_PATTERN, error_responses
from workplace_kit.sse import event_stream
from workplace_kit.validation import LearnerText, learner_message_field

from .domain import ChatService, ReplyCommand, ReplyDelta, ReplyDone, ReplyEvent, ReplyStarted

log = logging.getLogger(__name__)


class SituationOut(BaseModel):
    id: str
    title_ja: str
    title_en: str
    description_ja: str
    description_en: str


class CharacterOut(BaseModel):
    id: str
    label_ja: str
    label_en: str


class OptionsOut(BaseModel):
    characters: list[CharacterOut]
    situations: list[SituationOut]
    max_message_chars: int


class MessageOut(BaseModel):
    turn_id: str
    role: str
    text: str
    engine_id: str
    created_at: str


class EndOut(BaseModel):
    session_id: str
    turn_count: int
    ended_at: str
    already_ended: bool


class HistoryOut(BaseModel):
    session_id: str
    partner: str
    situation: str
    messages: list[MessageOut]
    # Set once the learner ended the conversation (it then takes no more messages).
    ended_at: str | None = None


def _sse(event: ReplyEvent) -> ServerSentEvent:
    if isinstance(event, ReplyStarted):
        data = {
            "session_id": event.session_id,
            "user_turn_id": event.user_turn_id,
            "engine": asdict(event.engine),
            "cached": event.cached,
        }
        return ServerSentEvent(json.dumps(data, ensure_ascii=False), event="start")
    if isinstance(event, ReplyDelta):
        return ServerSentEvent(json.dumps({"text": event.text}, ensure_ascii=False), event="delta")
    assert isinstance(event, ReplyDone)
    return ServerSentEvent(json.dumps(asdict(event), ensure_ascii=False), event="done")


class ChatRequestFields(Protocol):
    """What the endpoint reads from the request model below: for the type checker, which
    cannot see that model (its class is built at runtime, from the content)."""

    message: str
    session_id: str
    partner: str
    situation: str
    language: str
    temperature: float | None


def request_model(service: ChatService) -> type[BaseModel]:
    """The chat request, with the characters, situations and length limit the service has (its
    content and settings), so the OpenAPI document lists them and nothing copies them."""
    partners = list(service.catalogue.partners)
    situations = [s.id for s in service.list_situations()]

    class ChatRequest(BaseModel):
        model_config = ConfigDict(strict=True)  # "0.5" is not a temperature

        message: LearnerText = learner_message_field(service.max_message_chars)
        session_id: str = Field("", pattern=f"^$|{UUID_PATTERN}", description="Empty to start a new session")
        # Literals of values known only at runtime: pydantic reads them, a type checker cannot.
        partner: Literal[tuple(partners)] = Field(  # type: ignore[valid-type]
            partners[0], description="A character id from GET /api/v2/chat/options (for a new session)"
        )
        situation: Literal[tuple(situations)] = Field(  # type: ignore[valid-type]
            situations[0], description="A situation id from GET /api/v2/chat/options (for a new session)"
        )
        language: Literal["", "ja", "en"] = Field("", description="Empty: answer in the learner's language")
        temperature: float | None = Field(None, ge=0, le=2, description="0 makes replies repeatable (and cached)")

    return ChatRequest


def build_router(service: ChatService, current_principal: Callable[..., Awaitable[Principal]]) -> APIRouter:
    """current_principal: the kit's dependency that verifies the access token (401 otherwise);
    the learner is who the token says, never a header or a field of the body."""
    router = APIRouter(prefix="/api/v2/chat", tags=["chat"])
    Signed = Annotated[Principal, Depends(current_principal)]  # noqa: N806 - a type alias
    if TYPE_CHECKING:
        ChatRequest: TypeAlias = ChatRequestFields
    else:
        ChatRequest = request_model(service)  # noqa: N806 - a class, built from the content

    @router.post(
        "",
        response_class=EventSourceResponse,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "start, delta…, done (or error)"},
            **error_responses(400, 401, 404, 422, 429, 503),
        },
    )
    async def chat(body: ChatRequest, principal: Signed) -> EventSourceResponse:
        """Send a message; the reply streams back as SSE events `start`, `delta`…, `done`.

        Bad input is answered with a 4xx JSON error before the stream starts. If the AI fails
        mid-reply, an `error` event ends the stream and nothing of this turn is stored."""
        events = await service.open_reply(
            ReplyCommand(
                user_id=principal.user_id,
                message=body.message,
                partner=body.partner,
                situation=body.situation,
                session_id=body.session_id,
                language=body.language,
                temperature=body.temperature,
            )
        )

        return event_stream(events, _sse, what="chat stream")

    @router.get("/situations", response_model=list[SituationOut])
    async def situations() -> list[SituationOut]:
        return [SituationOut(**asdict(s)) for s in service.list_situations()]

    @router.get("/options", response_model=OptionsOut)
    async def options() -> OptionsOut:
        """The characters, situations and longest message a new chat can have."""
        return OptionsOut(
            characters=[
                CharacterOut(id=c.id, label_ja=c.labels["ja"], label_en=c.labels["en"])
                for c in service.list_characters()
            ],
            situations=[SituationOut(**asdict(s)) for s in service.list_situations()],
            max_message_chars=service.max_message_chars,
        )

    @router.get("/sessions/{session_id}", response_model=HistoryOut, responses=error_responses(401, 404, 422, 503))
    async def history(principal: Signed, session_id: str = Path(pattern=UUID_PATTERN)) -> HistoryOut:
        """One of the signed-in learner's sessions; another learner's is answered 404."""
        session, messages = await service.history(session_id, principal.user_id)
        return HistoryOut(
            session_id=str(session.session_id),
            partner=session.partner,
            situation=session.situation,
            ended_at=session.ended_at.isoformat() if session.ended_at else None,
            messages=[
                MessageOut(
                    turn_id=str(m.turn_id),
                    role=m.role,
                    text=m.text,
                    engine_id=m.engine_id,
                    created_at=m.created_at.isoformat(),
                )
                for m in messages
            ],
        )

    @router.post("/sessions/{session_id}/end", response_model=EndOut, responses=error_responses(401, 404, 422, 503))
    async def end(principal: Signed, session_id: str = Path(pattern=UUID_PATTERN)) -> EndOut:
        """End the conversation: it takes no more messages and gets a coaching report."""
        session, turns, ended_at, already = await service.end_session(session_id, principal.user_id)
        return EndOut(
            session_id=str(session.session_id), turn_count=turns, ended_at=ended_at.isoformat(), already_ended=already
        )

    return router
