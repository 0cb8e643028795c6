"""HTTP adapter: /api/v2/feedback/*. Every read is for the learner of a verified access token
(`Authorization: Bearer`, or the page's HttpOnly cookie); another learner's data is a 404."""

# No `from __future__ import annotations`: FastAPI reads the dependencies from the endpoints'
# real annotations (the Principal alias is built inside build_router).

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel
from workplace_kit.auth import Principal
from workplace_kit.service import UUID_PATTERN, error_responses

from . import progress
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
    title: str  # the scenario's title in the report's language, or 雑談練習 / Free chat
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


class JournalEntryOut(BaseModel):
    session_id: str
    source_service: str  # chat or scenario
    scenario_id: str
    title: str
    started_at: str | None
    ended_at: str
    duration_s: int | None
    turn_count: int
    overall: float
    skills: dict[str, int]
    end_reason: str


class JournalOut(BaseModel):
    entries: list[JournalEntryOut]
    total: int
    skill_labels: dict[str, str]


class TrendPointOut(BaseModel):
    ended_at: str
    score: int
    session_id: str


class SkillTrendOut(BaseModel):
    id: str
    label: str
    average: float
    latest: int
    points: list[TrendPointOut]


class StrengthsOut(BaseModel):
    session_count: int
    skills: list[SkillTrendOut]  # strongest first
    top: list[str]
    weakest: str
    advice: str
    # Search the scenario catalogue (/api/v2/scenario/search?q=) for scenarios that practise it.
    practice_query: str
    # The scenarios of the latest sessions (newest first), to leave out of the suggestions.
    recent_scenario_ids: list[str]


class ChangeOut(BaseModel):
    id: str
    label: str
    before: int | None
    after: int | None
    delta: int | None


class CompareOut(BaseModel):
    before: ReportOut
    after: ReportOut
    skills: list[ChangeOut]
    criteria: list[ChangeOut]


def _journal_out(entry: progress.JournalEntry) -> JournalEntryOut:
    return JournalEntryOut(
        session_id=entry.session_id,
        source_service=entry.source_service,
        scenario_id=entry.scenario_id,
        title=entry.title,
        started_at=entry.started_at.isoformat() if entry.started_at else None,
        ended_at=entry.ended_at.isoformat(),
        duration_s=entry.duration_s,
        turn_count=entry.turn_count,
        overall=entry.overall,
        skills=entry.skills,
        end_reason=entry.end_reason,
    )


def _change_out(change: progress.Change) -> ChangeOut:
    return ChangeOut(id=change.id, label=change.label, before=change.before, after=change.after, delta=change.delta)


def report_out(stored: StoredReport) -> ReportOut:
    r = stored.report
    return ReportOut(
        session_id=str(stored.session_id),
        title=progress.title_of(stored, stored.language),
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

    Lang = Annotated[Literal["ja", "en"], Query(description="Language of titles and labels")]  # noqa: N806

    @router.get("/journal", response_model=JournalOut, responses=error_responses(400, 401, 422, 503))
    async def journal(
        principal: Signed,
        lang: Lang = "ja",
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
        scenario_id: Annotated[str, Query(max_length=64)] = "",
    ) -> JournalOut:
        """Every ended session of the learner with its scores, newest first (scenario_id: one
        scenario's attempts, for retries)."""
        entries, total = await service.journal(
            principal.user_id, lang, limit=limit, offset=offset, scenario_id=scenario_id
        )
        return JournalOut(
            entries=[_journal_out(e) for e in entries], total=total, skill_labels=progress.skill_labels(lang)
        )

    @router.get(
        "/journal.csv",
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}}, **error_responses(401, 422, 503)},
    )
    async def journal_csv(principal: Signed, lang: Lang = "ja") -> Response:
        """The whole journal as a CSV file."""
        entries, _ = await service.journal(principal.user_id, lang, limit=500)
        return Response(
            progress.journal_csv(entries, lang),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="workplace-roleplay-journal.csv"'},
        )

    @router.get("/strengths", response_model=StrengthsOut, responses=error_responses(401, 422, 503))
    async def strengths(principal: Signed, lang: Lang = "ja") -> StrengthsOut:
        """Each skill's scores over time, the strongest, and the weakest with what to practise."""
        found = await service.strengths(principal.user_id, lang)
        return StrengthsOut(
            session_count=found.session_count,
            skills=[
                SkillTrendOut(
                    id=t.id,
                    label=t.label,
                    average=t.average,
                    latest=t.latest,
                    points=[TrendPointOut(ended_at=p[0].isoformat(), score=p[1], session_id=p[2]) for p in t.points],
                )
                for t in found.skills
            ],
            top=found.top,
            weakest=found.weakest,
            advice=found.advice,
            practice_query=found.practice_query,
            recent_scenario_ids=found.recent_scenario_ids,
        )

    @router.get("/compare", response_model=CompareOut, responses=error_responses(400, 401, 404, 422, 503))
    async def compare(
        principal: Signed,
        before: Annotated[str, Query(pattern=UUID_PATTERN)],
        after: Annotated[str, Query(pattern=UUID_PATTERN)],
        lang: Lang = "ja",
    ) -> CompareOut:
        """Two of the learner's attempts side by side: each skill's and criterion's score in both."""
        first, second, skills, criteria = await service.compare(principal.user_id, before, after, lang)
        return CompareOut(
            before=report_out(first),
            after=report_out(second),
            skills=[_change_out(c) for c in skills],
            criteria=[_change_out(c) for c in criteria],
        )

    return router
