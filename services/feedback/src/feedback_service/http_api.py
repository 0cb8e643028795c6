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
from .repository import StoredReport, TurnAnalysis


class EvidenceOut(BaseModel):
    turn_index: int
    quote: str  # the learner's own words
    cue: str  # what in them raised (positive) or lowered the score
    positive: bool


class SkillScoreOut(BaseModel):
    id: str  # clarity, empathy, politeness, listening, assertiveness, structure
    label: str
    score: int  # 1..5
    meaning: str  # what this score means (the rubric)
    evidence: list[EvidenceOut]
    advice: str
    better_phrasing: str


class CriterionScoreOut(BaseModel):
    id: str
    text: str
    status: str  # met, partly, missed, not_shown
    status_label: str
    score: int
    evidence: list[EvidenceOut]
    better_phrasing: str


class ReportOut(BaseModel):
    session_id: str
    source_service: str
    scenario_id: str
    language: str
    overall: float  # 1..5
    summary: str
    strengths: list[str]
    try_next: list[str]
    skills: list[SkillScoreOut]
    criteria: list[CriterionScoreOut]
    turn_count: int
    end_reason: str
    engine: str
    started_at: str | None
    ended_at: str
    generated_at: str


def report_out(stored: StoredReport) -> ReportOut:
    r = stored.report
    return ReportOut(
        session_id=str(stored.session_id),
        source_service=stored.source_service,
        scenario_id=stored.scenario_id,
        language=stored.language,
        overall=stored.overall,
        summary=r["summary"],
        strengths=r["strengths"],
        try_next=r["try_next"],
        skills=r["skills"],
        criteria=r["criteria"],
        turn_count=stored.turn_count,
        end_reason=stored.end_reason,
        engine=r["engine"],
        started_at=stored.started_at.isoformat() if stored.started_at else None,
        ended_at=stored.ended_at.isoformat(),
        generated_at=stored.generated_at.isoformat(),
    )


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

    @router.get(
        "/sessions/{session_id}/report", response_model=ReportOut, responses=error_responses(401, 404, 422, 503)
    )
    async def report(principal: Signed, session_id: str = Path(pattern=UUID_PATTERN)) -> ReportOut:
        """The coaching report of one of the learner's ended sessions: a score per skill and per
        scenario criterion, each with the learner's own turns as evidence. 404 until it is
        written (a few seconds after the session ends) and for another learner's session."""
        return report_out(await service.report(session_id, principal.user_id))

    return router
