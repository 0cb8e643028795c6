"""HTTP adapter under /api/v2/scenario: the catalogue (list, one, search) and roleplay sessions
(start, send a message with the reply as Server-Sent Events, end, read back)."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' real annotations.

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Literal, Protocol, TypeAlias

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from workplace_content import ContentCatalogue, Scenario
from workplace_kit.auth import Principal
from workplace_kit.service import UUID_PATTERN, error_responses
from workplace_kit.sse import event_stream
from workplace_kit.validation import LearnerText, learner_message_field

from .domain import ReplyDelta, ReplyDone, ReplyEvent, ReplyStarted, ScenarioService
from .repository import SessionRow, StoredTurn

log = logging.getLogger(__name__)
Language = Literal["ja", "en"]
ID_PATTERN = r"^[a-z][a-z0-9_-]{1,62}$"


class CharacterOut(BaseModel):
    id: str
    label: str
    name: str
    full_name: str
    role: str


class CriterionOut(BaseModel):
    id: str
    text: str


class ConsentOut(BaseModel):
    notice: str
    help: str


class ScenarioOut(BaseModel):
    id: str
    language: str
    title: str
    description: str
    category: str
    difficulty: str
    reverse_role: bool
    character: CharacterOut
    situation: str
    learner_role: str
    goal: str
    learning_points: list[str]
    criteria: list[CriterionOut]
    tags: list[str]
    estimated_minutes: int
    max_turns: int
    opening: str
    consent: ConsentOut | None


class CategoryOut(BaseModel):
    id: str
    name: str
    description: str
    needs_consent: bool
    scenario_count: int


class CatalogueOut(BaseModel):
    scenarios: list[ScenarioOut]
    total: int
    next_page_token: str
    categories: list[CategoryOut]


class MatchOut(BaseModel):
    scenario: ScenarioOut
    score: float


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false
    scenario_id: str = Field(pattern=ID_PATTERN)
    language: Language = "ja"
    consent_given: bool = False


class MessageFields(Protocol):
    """What the endpoint reads from the message model (built in build_router, with the length limit)."""

    message: str


def message_model(max_chars: int) -> type[BaseModel]:
    class MessageIn(BaseModel):
        model_config = ConfigDict(extra="forbid", strict=True)
        message: LearnerText = learner_message_field(max_chars)

    return MessageIn


class EndIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not false
    reason: Literal["user", "completed", "timeout"] = "user"


class TurnOut(BaseModel):
    turn_id: str
    role: str
    text: str
    move: str
    created_at: str


class SessionOut(BaseModel):
    session_id: str
    language: str
    scenario: ScenarioOut
    started_at: str
    ended_at: str | None
    end_reason: str | None
    turns: list[TurnOut]


class EndOut(BaseModel):
    session_id: str
    turn_count: int
    ended_at: str | None
    already_ended: bool


def scenario_out(scenario: Scenario, content: ContentCatalogue, language: str) -> ScenarioOut:
    persona = content.character(scenario.character).persona(language)
    return ScenarioOut(
        id=scenario.id,
        language=language,
        title=scenario.title.get(language),
        description=scenario.description.get(language),
        category=scenario.category,
        difficulty=scenario.difficulty,
        reverse_role=scenario.reverse_role,
        character=CharacterOut(
            id=scenario.character,
            label=persona.label,
            name=persona.name,
            full_name=persona.full_name,
            role=persona.role,
        ),
        situation=scenario.situation.get(language),
        learner_role=scenario.learner_role.get(language),
        goal=scenario.goal.get(language),
        learning_points=list(scenario.learning_points.get(language)),
        criteria=[CriterionOut(id=c.id, text=c.text.get(language)) for c in scenario.criteria],
        tags=list(scenario.tags.get(language)),
        estimated_minutes=scenario.estimated_minutes,
        max_turns=scenario.max_turns,
        opening=scenario.opening.get(language) if scenario.opening else "",
        consent=ConsentOut(notice=scenario.consent.notice.get(language), help=scenario.consent.help.get(language))
        if scenario.consent
        else None,
    )


def _session_out(
    service: ScenarioService, session: SessionRow, scenario: Scenario, turns: list[StoredTurn]
) -> SessionOut:
    return SessionOut(
        session_id=str(session.session_id),
        language=session.language,
        scenario=scenario_out(scenario, service.content, session.language),
        started_at=session.started_at.isoformat(),
        ended_at=session.ended_at.isoformat() if session.ended_at else None,
        end_reason=session.end_reason,
        turns=[
            TurnOut(turn_id=str(t.turn_id), role=t.role, text=t.text, move=t.move, created_at=t.created_at.isoformat())
            for t in turns
        ],
    )


def _sse(event: ReplyEvent) -> ServerSentEvent:
    if isinstance(event, ReplyStarted):
        data: dict[str, object] = {
            "session_id": event.session_id,
            "user_turn_id": event.user_turn_id,
            "engine": {"id": event.engine.id, "label": event.engine.label, "model": event.engine.model},
        }
        return ServerSentEvent(json.dumps(data, ensure_ascii=False), event="start")
    if isinstance(event, ReplyDelta):
        return ServerSentEvent(json.dumps({"text": event.text}, ensure_ascii=False), event="delta")
    assert isinstance(event, ReplyDone)
    data = {
        "session_id": event.session_id,
        "user_turn_id": event.user_turn_id,
        "reply_turn_id": event.reply_turn_id,
        "text": event.text,
        "turn_index": event.turn_index,
        "move": event.move,
        "session_ended": event.session_ended,
        "end_reason": event.end_reason,
    }
    return ServerSentEvent(json.dumps(data, ensure_ascii=False), event="done")


def build_router(service: ScenarioService, current_principal: Callable[..., Awaitable[Principal]]) -> APIRouter:
    router = APIRouter(prefix="/api/v2/scenario", tags=["scenario"])
    Signed = Annotated[Principal, Depends(current_principal)]  # noqa: N806 - a type alias
    content = service.content
    if TYPE_CHECKING:
        MessageIn: TypeAlias = MessageFields
    else:
        MessageIn = message_model(service.settings.scenario_max_message_chars)  # noqa: N806 - a class
    Lang = Annotated[Language, Query(description="Language of the texts")]  # noqa: N806
    # The categories as the published schema's enum, from the content (nothing copies them).
    category_ids = ("", *(c.id for c in content.categories))
    CategoryId = Annotated[  # noqa: N806
        Literal[category_ids],  # type: ignore[valid-type]
        Query(description="A category id; empty: every category"),
    ]

    @router.get("/scenarios", response_model=CatalogueOut, responses=error_responses(400, 422, 503))
    async def catalogue(
        lang: Lang = "ja",
        category: CategoryId = "",
        difficulty: Annotated[Literal["", "beginner", "intermediate", "advanced"], Query()] = "",
        tag: Annotated[str, Query(max_length=64)] = "",
        page_size: Annotated[int, Query(ge=0, le=100)] = 0,
        page_token: Annotated[
            str, Query(pattern=r"^[0-9]{0,9}$", description="next_page_token of the page before")
        ] = "",
    ) -> CatalogueOut:
        """The catalogue in its order, filtered; `categories` counts each category under the other filters."""
        page = await service.list_scenarios(
            category=category, difficulty=difficulty, tag=tag, page_size=page_size, page_token=page_token
        )
        return CatalogueOut(
            scenarios=[scenario_out(s, content, lang) for s in page.scenarios],
            total=page.total,
            next_page_token="" if page.next_offset is None else str(page.next_offset),
            categories=[
                CategoryOut(
                    id=c.id,
                    name=c.name.get(lang),
                    description=c.description.get(lang),
                    needs_consent=c.needs_consent,
                    scenario_count=page.category_counts.get(c.id, 0),
                )
                for c in content.categories
            ],
        )

    @router.get("/scenarios/{scenario_id}", response_model=ScenarioOut, responses=error_responses(404, 422))
    async def one(scenario_id: Annotated[str, Path(pattern=ID_PATTERN)], lang: Lang = "ja") -> ScenarioOut:
        return scenario_out(service.scenario(scenario_id), content, lang)

    @router.get("/search", response_model=list[MatchOut], responses=error_responses(400, 422, 503))
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=500, description="What the learner wants to practise")],
        lang: Lang = "ja",
        limit: Annotated[int, Query(ge=0, le=50)] = 0,
        category: CategoryId = "",
        difficulty: Annotated[Literal["", "beginner", "intermediate", "advanced"], Query()] = "",
    ) -> list[MatchOut]:
        """Scenarios by meaning, best first (Japanese or English queries find both)."""
        matches = await service.search(q, limit=limit, category=category, difficulty=difficulty)
        return [MatchOut(scenario=scenario_out(m.scenario, content, lang), score=round(m.score, 4)) for m in matches]

    @router.post(
        "/sessions", response_model=SessionOut, status_code=201, responses=error_responses(400, 401, 404, 409, 422, 503)
    )
    async def start(body: StartIn, principal: Signed) -> SessionOut:
        """Start a roleplay; the character's opening line (if any) is the first turn. A scenario
        with a consent notice starts only with consent_given."""
        started = await service.start_session(
            user_id=principal.user_id,
            scenario_id=body.scenario_id,
            language=body.language,
            consent_given=body.consent_given,
        )
        session, scenario, turns = await service.get_session(str(started.session.session_id), principal.user_id)
        return _session_out(service, session, scenario, turns)

    @router.get("/sessions/{session_id}", response_model=SessionOut, responses=error_responses(401, 404, 422, 503))
    async def read(principal: Signed, session_id: Annotated[str, Path(pattern=UUID_PATTERN)]) -> SessionOut:
        """One of the learner's roleplays with its turns (another learner's is answered 404)."""
        session, scenario, turns = await service.get_session(session_id, principal.user_id)
        return _session_out(service, session, scenario, turns)

    @router.post(
        "/sessions/{session_id}/messages",
        response_class=EventSourceResponse,
        responses={
            200: {"content": {"text/event-stream": {}}, "description": "start, delta…, done (or error)"},
            **error_responses(400, 401, 404, 409, 422, 429, 503),
        },
    )
    async def send(
        body: MessageIn, principal: Signed, session_id: Annotated[str, Path(pattern=UUID_PATTERN)]
    ) -> EventSourceResponse:
        """Send the learner's message; the character's reply streams back as SSE `start`,
        `delta`…, `done` (`done` says the recognised move and whether the scenario ended)."""
        events = await service.open_reply(user_id=principal.user_id, session_id=session_id, message=body.message)

        return event_stream(events, _sse, what="roleplay stream")

    @router.post(
        "/sessions/{session_id}/end", response_model=EndOut, responses=error_responses(400, 401, 404, 422, 503)
    )
    async def end(
        principal: Signed, session_id: Annotated[str, Path(pattern=UUID_PATTERN)], body: EndIn | None = None
    ) -> EndOut:
        """End the roleplay (publishes session.ended once; ending it again changes nothing)."""
        ended = await service.end_session(
            user_id=principal.user_id, session_id=session_id, reason=(body or EndIn()).reason
        )
        return EndOut(
            session_id=str(ended.session.session_id),
            turn_count=ended.turn_count,
            ended_at=ended.session.ended_at.isoformat() if ended.session.ended_at else None,
            already_ended=ended.already_ended,
        )

    return router
