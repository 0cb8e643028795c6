"""HTTP adapter: /api/v2/feedback/*."""

from __future__ import annotations

from fastapi import APIRouter, Path
from pydantic import BaseModel
from workplace_kit.service import UUID_PATTERN, error_responses

from .domain import FeedbackService
from .emotion.types import EMOTION_LABELS_JA
from .repository import TurnAnalysis


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
        analysed_at=a.analysed_at.isoformat(),
    )


def build_router(service: FeedbackService) -> APIRouter:
    router = APIRouter(prefix="/api/v2/feedback", tags=["feedback"])

    @router.get("/turns/{turn_id}", response_model=TurnAnalysisOut, responses=error_responses(404, 422, 503))
    async def turn(turn_id: str = Path(pattern=UUID_PATTERN)) -> TurnAnalysisOut:
        return to_out(await service.turn_analysis(turn_id))

    @router.get(
        "/sessions/{session_id}/turns", response_model=list[TurnAnalysisOut], responses=error_responses(422, 503)
    )
    async def session_turns(session_id: str = Path(pattern=UUID_PATTERN)) -> list[TurnAnalysisOut]:
        return [to_out(a) for a in await service.session_analyses(session_id)]

    return router
