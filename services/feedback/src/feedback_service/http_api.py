"""HTTP adapter: /api/v2/feedback/*. Every read is for the learner of a verified access token
(`Authorization: Bearer`, or the page's HttpOnly cookie); another learner's data is a 404."""

# No `from __future__ import annotations`: FastAPI reads the dependencies from the endpoints'
# real annotations (the Principal alias is built inside build_router).

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel
from workplace_kit.auth import Principal
from workplace_kit.service import UUID_PATTERN, error_responses

from .domain import FeedbackService
from .emotion.types import EMOTION_LABELS_JA
from .repository import TurnAnalysis


class FeedbackCardOut(BaseModel):
    verdict: str  # ok | too_casual | rude | too_formal | too_direct
    did_well: str
    to_change: str
    better_phrasing: str
    register_expected: str


class TurnAnalysisOut(BaseModel):
    turn_id: str
    session_id: str
    turn_index: int
    learner_text: str
    language: str
    dominant_emotion: str
    dominant_emotion_ja: str
    scores: dict[str, float]
    polarity: float
    engine: str
    summary: str
    # What the learner did well and a better phrasing; null for analyses stored before cards existed.
    card: FeedbackCardOut | None = None
    analysed_at: str


def to_out(a: TurnAnalysis) -> TurnAnalysisOut:
    r = a.result
    return TurnAnalysisOut(
        turn_id=str(a.turn_id),
        session_id=str(a.session_id),
        turn_index=a.turn_index,
        learner_text=a.learner_text,
        language=r.language,
        dominant_emotion=r.dominant,
        dominant_emotion_ja=EMOTION_LABELS_JA.get(r.dominant, r.dominant),
        scores=r.scores,
        polarity=r.polarity,
        engine=r.engine,
        summary=r.summary,
        card=FeedbackCardOut(**r.card.to_dict()) if r.card is not None else None,
        analysed_at=a.analysed_at.isoformat(),
    )


def build_router(service: FeedbackService, current_principal: Callable[..., Awaitable[Principal]]) -> APIRouter:
    """current_principal: the kit's dependency that verifies the access token (401 otherwise)."""
    router = APIRouter(prefix="/api/v2/feedback", tags=["feedback"])
    Signed = Annotated[Principal, Depends(current_principal)]  # noqa: N806 - a type alias

    @router.get("/turns/{turn_id}", response_model=TurnAnalysisOut, responses=error_responses(401, 404, 422, 503))
    async def turn(principal: Signed, turn_id: str = Path(pattern=UUID_PATTERN)) -> TurnAnalysisOut:
        """The analysis of one of the signed-in learner's turns; another learner's is a 404."""
        return to_out(await service.turn_analysis(turn_id, principal.user_id))

    @router.get(
        "/sessions/{session_id}/turns",
        response_model=list[TurnAnalysisOut],
        responses=error_responses(401, 404, 422, 503),
    )
    async def session_turns(principal: Signed, session_id: str = Path(pattern=UUID_PATTERN)) -> list[TurnAnalysisOut]:
        """The analyses of one of the signed-in learner's sessions, in turn order: empty while
        none is stored for this session id, a 404 when they are another learner's."""
        return [to_out(a) for a in await service.session_analyses(session_id, principal.user_id)]

    return router
