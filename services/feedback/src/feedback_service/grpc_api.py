"""gRPC adapter: workplace.feedback.v1.FeedbackService, for the learner of the access token in
each call's `authorization: Bearer <token>` metadata (UNAUTHENTICATED without a valid one);
another learner's turns and sessions are NOT_FOUND, as ones that do not exist."""

from __future__ import annotations

import grpc
from workplace.feedback.v1 import feedback_pb2, feedback_pb2_grpc
from workplace_kit.auth import TokenVerifier, principal_from_metadata
from workplace_kit.grpc_server import GrpcService

from .domain import FeedbackService, to_proto
from .repository import TurnAnalysis


def _turn(a: TurnAnalysis) -> feedback_pb2.TurnAnalysis:
    msg = feedback_pb2.TurnAnalysis(
        turn_id=str(a.turn_id),
        session_id=str(a.session_id),
        user_id=a.user_id,
        learner_text=a.learner_text,
        analysis=to_proto(a.result),
        source_service=a.source_service,
    )
    msg.analysed_at.FromDatetime(a.analysed_at)
    return msg


class FeedbackServicer(feedback_pb2_grpc.FeedbackServiceServicer):
    def __init__(self, service: FeedbackService, verifier: TokenVerifier) -> None:
        self.service = service
        self.verifier = verifier

    async def GetTurnAnalysis(  # noqa: N802
        self, request: feedback_pb2.GetTurnAnalysisRequest, context: grpc.aio.ServicerContext
    ) -> feedback_pb2.GetTurnAnalysisResponse:
        principal = await principal_from_metadata(self.verifier, context)
        analysis = await self.service.turn_analysis(request.turn_id, principal.user_id)
        return feedback_pb2.GetTurnAnalysisResponse(analysis=_turn(analysis))

    async def ListSessionAnalyses(  # noqa: N802
        self, request: feedback_pb2.ListSessionAnalysesRequest, context: grpc.aio.ServicerContext
    ) -> feedback_pb2.ListSessionAnalysesResponse:
        """Empty for a session id with no analyses yet; NOT_FOUND if they are another learner's
        (see FeedbackService.session_analyses)."""
        principal = await principal_from_metadata(self.verifier, context)
        analyses = await self.service.session_analyses(request.session_id, principal.user_id)
        return feedback_pb2.ListSessionAnalysesResponse(analyses=[_turn(a) for a in analyses])

    async def GetReport(  # noqa: N802
        self, request: feedback_pb2.GetReportRequest, context: grpc.aio.ServicerContext
    ) -> feedback_pb2.GetReportResponse:
        principal = await principal_from_metadata(self.verifier, context)
        stored = await self.service.report(request.session_id, principal.user_id)
        r = stored.report

        def evidence(items: list[dict]) -> list[feedback_pb2.Evidence]:
            return [feedback_pb2.Evidence(**e) for e in items]

        report = feedback_pb2.SessionReport(
            session_id=str(stored.session_id),
            user_id=stored.user_id,
            source_service=stored.source_service,
            language=stored.language,
            summary=r["summary"],
            strengths=r["strengths"],
            improvements=r["try_next"],
            turn_count=stored.turn_count,
            engine=r["engine"],
            overall=stored.overall,
            skills=[feedback_pb2.SkillScore(**{**s, "evidence": evidence(s["evidence"])}) for s in r["skills"]],
            criteria=[feedback_pb2.CriterionScore(**{**c, "evidence": evidence(c["evidence"])}) for c in r["criteria"]],
            scenario_id=stored.scenario_id,
            end_reason=stored.end_reason,
        )
        report.generated_at.FromDatetime(stored.generated_at)
        return feedback_pb2.GetReportResponse(report=report)

    async def GetStrengths(  # noqa: N802
        self, request: feedback_pb2.GetStrengthsRequest, context: grpc.aio.ServicerContext
    ) -> feedback_pb2.GetStrengthsResponse:
        # The strengths are always those of the token's learner: request.user_id is ignored (it
        # could name anyone; the field stays in the proto for compatibility with its clients).
        principal = await principal_from_metadata(self.verifier, context)
        found = await self.service.strengths(principal.user_id, "ja")
        response = feedback_pb2.GetStrengthsResponse(
            user_id=principal.user_id,
            session_count=found.session_count,
            engine="offline:rules",
            strengths=[
                feedback_pb2.Strength(
                    name=t.id,
                    score=round((t.average - 1) * 25),  # 1..5 -> 0..100
                    evidence=f"平均 {t.average:.1f} / 5（{len(t.points)} 回）、直近 {t.latest}",
                    label=t.label,
                )
                for t in found.skills
            ],
        )
        response.analysed_at.GetCurrentTime()
        return response


def grpc_service(service: FeedbackService, verifier: TokenVerifier) -> GrpcService:
    return GrpcService(
        add_to_server=feedback_pb2_grpc.add_FeedbackServiceServicer_to_server,
        servicer=FeedbackServicer(service, verifier),
        full_name=feedback_pb2.DESCRIPTOR.services_by_name["FeedbackService"].full_name,
    )
