"""HTTP adapter under /api/v2/watch: start a watched dialogue, read it, stream it (Server-Sent
Events), step into it, pause / resume / pace it, stop it, and read what to notice."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' real annotations.

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, TypeAlias

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from sse_starlette import EventSourceResponse, ServerSentEvent
from workplace_kit.auth import Principal, bearer_token
from workplace_kit.service import UUID_PATTERN, error_responses
from workplace_kit.sse import event_stream
from workplace_kit.validation import LearnerText, learner_message_field

from .domain import (
    PACE_RANGE,
    AudioEvent,
    EndedEvent,
    StateEvent,
    TurnEvent,
    WatchEvent,
    WatchService,
    status_of,
)
from .repository import StoredTurn, WatchRow

Language = Literal["ja", "en"]
ID_PATTERN = r"^[a-z][a-z0-9_-]{1,62}$"
Pace = Annotated[float, Field(ge=PACE_RANGE[0], le=PACE_RANGE[1], description="Seconds between turns (1-15)")]


def _integral(value: object) -> object:
    """JSON's 12.0 is the integer 12 (as JSON Schema says); strings and booleans stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


MaxTurns = Annotated[
    Annotated[int, Field(ge=2, le=30, description="AI turns at most (2-30)")], BeforeValidator(_integral)
]


class StartIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        # One of the two, in the published schema too.
        json_schema_extra={
            "anyOf": [
                {"required": ["scenario_id"], "properties": {"scenario_id": {"type": "string"}}},
                {"required": ["topic"], "properties": {"topic": {"type": "string"}}},
            ]
        },
    )
    scenario_id: str | None = Field(None, pattern=ID_PATTERN, description="A catalogue scenario to watch")
    topic: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        pattern=r"\S",
        description="What to watch, in words: the nearest scenario is played",
        json_schema_extra={"pattern": r"^[^\u0000]*[^\s\u0000][^\u0000]*$"},
    )
    language: Language = "ja"
    pace_seconds: Pace | None = None
    max_turns: MaxTurns | None = None

    @model_validator(mode="after")
    def _one_of_two(self) -> "StartIn":
        if not self.scenario_id and not (self.topic or "").strip():
            raise ValueError("give a scenario_id or a topic")
        return self


class SpeakerOut(BaseModel):
    id: str
    display_name: str
    persona: str
    character_id: str


class WatchOut(BaseModel):
    watch_id: str
    title: str
    scenario_id: str
    language: str
    speakers: list[SpeakerOut]
    max_turns: int
    pace_seconds: float
    paused: bool
    status: Literal["running", "paused", "ended"]


class TurnOut(BaseModel):
    turn_id: str
    turn_index: int
    speaker_id: str = Field(description="'a', 'b', or '' for the learner's own turns")
    text: str
    intervention: bool
    audio_ready: bool
    created_at: str


class WatchDetailOut(WatchOut):
    turns: list[TurnOut]
    ended_reason: str | None


class MessageFields(Protocol):
    message: str


def message_model(max_chars: int) -> type[BaseModel]:
    class InterveneIn(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        message: LearnerText = learner_message_field(max_chars)

    return InterveneIn


class InterveneOut(BaseModel):
    turn_id: str
    turn_index: int


class ControlIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false
    paused: bool | None = None
    pace_seconds: Pace | None = None


class ControlOut(BaseModel):
    paused: bool
    pace_seconds: float
    ended: bool


class StopOut(BaseModel):
    turn_count: int
    already_stopped: bool


class NoteOut(BaseModel):
    turn_id: str
    turn_index: int
    speaker_id: str
    phrase: str
    why: str
    kind: str


class NotesOut(BaseModel):
    notes: list[NoteOut]
    learning_points: list[str]
    summary: str


def watch_out(watch: WatchRow) -> dict[str, Any]:
    return {
        "watch_id": str(watch.watch_id),
        "title": watch.title,
        "scenario_id": watch.scenario_id,
        "language": watch.language,
        "speakers": [SpeakerOut(**s.__dict__) for s in watch.speakers],
        "max_turns": watch.max_turns,
        "pace_seconds": watch.pace_seconds,
        "paused": watch.paused,
        "status": status_of(watch),
    }


def turn_out(turn: StoredTurn) -> TurnOut:
    return TurnOut(
        turn_id=str(turn.turn_id),
        turn_index=turn.turn_index,
        speaker_id=turn.speaker_id,
        text=turn.text,
        intervention=turn.intervention,
        audio_ready=turn.audio_ready,
        created_at=turn.created_at.isoformat(),
    )


def _sse(event: WatchEvent) -> ServerSentEvent:
    if isinstance(event, TurnEvent):
        return ServerSentEvent(turn_out(event.turn).model_dump_json(), event="turn")
    if isinstance(event, StateEvent):
        data: dict[str, object] = {"paused": event.paused, "pace_seconds": event.pace_seconds}
        return ServerSentEvent(json.dumps(data), event="state")
    if isinstance(event, AudioEvent):
        return ServerSentEvent(json.dumps({"turn_id": event.turn_id, "turn_index": event.turn_index}), event="audio")
    assert isinstance(event, EndedEvent)
    return ServerSentEvent(json.dumps({"reason": event.reason, "turn_count": event.turn_count}), event="ended")


def build_router(
    service: WatchService, current_principal: Callable[..., Awaitable[Principal]], cookie_name: str
) -> APIRouter:
    router = APIRouter(prefix="/api/v2/watch", tags=["watch"])
    Signed = Annotated[Principal, Depends(current_principal)]  # noqa: N806 - a type alias
    WatchId = Annotated[str, Path(pattern=UUID_PATTERN)]  # noqa: N806
    if TYPE_CHECKING:
        InterveneIn: TypeAlias = MessageFields
    else:
        InterveneIn = message_model(service.settings.watch_max_message_chars)  # noqa: N806 - a class

    @router.post(
        "", response_model=WatchOut, status_code=201, responses=error_responses(400, 401, 404, 409, 422, 429, 503)
    )
    async def start(body: StartIn, principal: Signed, request: Request) -> WatchOut:
        """Start a watched model dialogue of a catalogue scenario (or the scenario nearest a
        topic); its turns arrive on the events stream at the chosen pace."""
        token = ""
        if body.topic:
            try:
                token = bearer_token(request.headers.get("authorization"), request.cookies.get(cookie_name))
            except Exception:  # noqa: BLE001 - the token is only passed along
                token = ""
        watch = await service.start(
            user_id=principal.user_id,
            scenario_id=body.scenario_id or "",
            topic=body.topic or "",
            language=body.language,
            pace_seconds=body.pace_seconds,
            max_turns=body.max_turns,
            token=token,
        )
        return WatchOut(**watch_out(watch))

    @router.get("/{watch_id}", response_model=WatchDetailOut, responses=error_responses(401, 404, 422, 503))
    async def read(principal: Signed, watch_id: WatchId) -> WatchDetailOut:
        """One of the learner's dialogues with its turns so far (another learner's: 404)."""
        watch, turns = await service.get(watch_id, principal.user_id)
        return WatchDetailOut(**watch_out(watch), turns=[turn_out(t) for t in turns], ended_reason=watch.ended_reason)

    # Not in the OpenAPI document: a stream that lasts as long as the dialogue (minutes) is no
    # operation a property-based client can call many times; docs/watch.md describes it.
    @router.get("/{watch_id}/events", response_class=EventSourceResponse, include_in_schema=False)
    async def events(
        principal: Signed,
        watch_id: WatchId,
        after: Annotated[
            int | None, Query(ge=-1, le=100_000, description="Resume: only turns with a greater index")
        ] = None,
    ) -> EventSourceResponse:
        """The dialogue as it happens: the stored turns after `after`, then each new one
        (`turn`), pauses and pace changes (`state`), audio ready (`audio`), and the end
        (`ended`). An open stream keeps the dialogue going; with none, it ends on its own."""
        stream = await service.open_events(watch_id, principal.user_id, after=after)
        return event_stream(stream, _sse, what="watch stream")

    @router.post(
        "/{watch_id}/intervene",
        response_model=InterveneOut,
        status_code=201,
        responses=error_responses(400, 401, 404, 409, 422, 429, 503),
    )
    async def intervene(body: InterveneIn, principal: Signed, watch_id: WatchId) -> InterveneOut:
        """Step into the dialogue: both characters take the learner's words up next."""
        turn_id, index = await service.intervene(watch_id=watch_id, user_id=principal.user_id, message=body.message)
        return InterveneOut(turn_id=turn_id, turn_index=index)

    @router.post("/{watch_id}/control", response_model=ControlOut, responses=error_responses(400, 401, 404, 422, 503))
    async def control(body: ControlIn, principal: Signed, watch_id: WatchId) -> ControlOut:
        """Pause or resume the dialogue, or change its pace (from the next turn on)."""
        done = await service.control(
            watch_id=watch_id, user_id=principal.user_id, paused=body.paused, pace_seconds=body.pace_seconds
        )
        return ControlOut(paused=done.paused, pace_seconds=done.pace_seconds, ended=done.ended)

    @router.post("/{watch_id}/stop", response_model=StopOut, responses=error_responses(401, 404, 422, 503))
    async def stop(principal: Signed, watch_id: WatchId) -> StopOut:
        """Stop the dialogue (stopping it again changes nothing)."""
        stopped = await service.stop(watch_id=watch_id, user_id=principal.user_id)
        return StopOut(turn_count=stopped.turn_count, already_stopped=stopped.already_stopped)

    @router.get("/{watch_id}/notes", response_model=NotesOut, responses=error_responses(401, 404, 422, 503))
    async def notes(principal: Signed, watch_id: WatchId) -> NotesOut:
        """What to notice: the phrases worth copying and why, the scenario's learning points,
        and a short summary."""
        found = await service.notes(watch_id=watch_id, user_id=principal.user_id)
        return NotesOut(
            notes=[NoteOut(**asdict(n)) for n in found.notes],
            learning_points=found.learning_points,
            summary=found.summary,
        )

    return router
