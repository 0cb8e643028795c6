"""gRPC adapter: workplace.scenario.v1.ScenarioService over the same domain code as HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from workplace.common.v1 import common_pb2
from workplace.scenario.v1 import scenario_pb2, scenario_pb2_grpc
from workplace_content import ContentCatalogue, Scenario
from workplace_kit.auth import TokenVerifier, principal_from_metadata
from workplace_kit.grpc_server import GrpcService

from .domain import ReplyDelta, ReplyDone, ReplyStarted, ScenarioService, language_of

_DIFFICULTY = {
    "beginner": scenario_pb2.DIFFICULTY_BEGINNER,
    "intermediate": scenario_pb2.DIFFICULTY_INTERMEDIATE,
    "advanced": scenario_pb2.DIFFICULTY_ADVANCED,
}
_DIFFICULTY_NAME = {value: name for name, value in _DIFFICULTY.items()}
_ROLES = {"user": common_pb2.ROLE_USER, "model": common_pb2.ROLE_MODEL}


def scenario_message(scenario: Scenario, content: ContentCatalogue, language: str) -> scenario_pb2.Scenario:
    lang = language or "ja"
    persona = content.character(scenario.character).persona(lang)
    message = scenario_pb2.Scenario(
        id=scenario.id,
        title_ja=scenario.title.ja,
        title_en=scenario.title.en,
        description_ja=scenario.description.ja,
        description_en=scenario.description.en,
        category_id=scenario.category,
        difficulty=_DIFFICULTY[scenario.difficulty],
        ai_role=f"{persona.full_name} ({persona.role})",
        ai_personality=f"{persona.personality} {scenario.character_note.get(lang)}",
        user_role=scenario.learner_role.get(lang),
        situation=scenario.situation.get(lang),
        learning_points=list(scenario.learning_points.get(lang)),
        feedback_points=[c.text.get(lang) for c in scenario.criteria],
        tags=list(scenario.tags.get(lang)),
        estimated_minutes=scenario.estimated_minutes,
        opening_message=scenario.opening.get(lang) if scenario.opening else "",
        reverse_role=scenario.reverse_role,
        character_id=scenario.character,
        goal=scenario.goal.get(lang),
        criteria=[scenario_pb2.Criterion(id=c.id, text=c.text.get(lang)) for c in scenario.criteria],
        language=lang,
    )
    if scenario.consent is not None:
        message.consent.CopyFrom(
            scenario_pb2.Consent(notice=scenario.consent.notice.get(lang), help=scenario.consent.help.get(lang))
        )
    return message


class ScenarioServicer(scenario_pb2_grpc.ScenarioServiceServicer):
    """The catalogue is public; sessions act for the learner of the access token in the call's
    `authorization` metadata (a request's user_id field is ignored: it could name anyone)."""

    def __init__(self, service: ScenarioService, verifier: TokenVerifier) -> None:
        self.service = service
        self.verifier = verifier

    def _message(self, scenario: Scenario, language: str) -> scenario_pb2.Scenario:
        return scenario_message(scenario, self.service.content, language)

    async def ListScenarios(  # noqa: N802
        self, request: scenario_pb2.ListScenariosRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.ListScenariosResponse:
        language = language_of(request.language)
        page = await self.service.list_scenarios(
            category=request.category_id,
            difficulty=_DIFFICULTY_NAME.get(request.difficulty, ""),
            tag=request.tag,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return scenario_pb2.ListScenariosResponse(
            scenarios=[self._message(s, language) for s in page.scenarios],
            next_page_token="" if page.next_offset is None else str(page.next_offset),
            categories=[
                scenario_pb2.Category(
                    id=c.id, name_ja=c.name.ja, name_en=c.name.en, scenario_count=page.category_counts.get(c.id, 0)
                )
                for c in self.service.content.categories
            ],
        )

    async def GetScenario(  # noqa: N802
        self, request: scenario_pb2.GetScenarioRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.GetScenarioResponse:
        language = language_of(request.language)
        return scenario_pb2.GetScenarioResponse(
            scenario=self._message(self.service.scenario(request.scenario_id), language)
        )

    async def SearchScenarios(  # noqa: N802
        self, request: scenario_pb2.SearchScenariosRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.SearchScenariosResponse:
        language = language_of(request.language)
        matches = await self.service.search(
            request.query,
            limit=request.limit,
            category=request.category_id,
            difficulty=_DIFFICULTY_NAME.get(request.difficulty, ""),
        )
        return scenario_pb2.SearchScenariosResponse(
            matches=[
                scenario_pb2.ScenarioMatch(scenario=self._message(m.scenario, language), score=m.score) for m in matches
            ]
        )

    async def StartSession(  # noqa: N802
        self, request: scenario_pb2.StartSessionRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.StartSessionResponse:
        principal = await principal_from_metadata(self.verifier, context)
        started = await self.service.start_session(
            user_id=principal.user_id,
            scenario_id=request.scenario_id,
            language=request.language,
            consent_given=request.consent_given,
        )
        response = scenario_pb2.StartSessionResponse(
            session_id=str(started.session.session_id),
            scenario=self._message(started.scenario, started.session.language),
            opening_message=started.opening,
            opening_turn_id=started.opening_turn_id,
        )
        response.started_at.FromDatetime(started.session.started_at)
        return response

    async def StreamReply(  # noqa: N802
        self, request: scenario_pb2.StreamReplyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[scenario_pb2.StreamReplyResponse]:
        principal = await principal_from_metadata(self.verifier, context)
        events = await self.service.open_reply(
            user_id=principal.user_id, session_id=request.session_id, message=request.message
        )
        async for event in events:
            if isinstance(event, ReplyStarted):
                engine = common_pb2.EngineInfo(id=event.engine.id, label=event.engine.label, model=event.engine.model)
                yield scenario_pb2.StreamReplyResponse(
                    started=scenario_pb2.ReplyStarted(
                        session_id=event.session_id, user_turn_id=event.user_turn_id, engine=engine
                    )
                )
            elif isinstance(event, ReplyDelta):
                yield scenario_pb2.StreamReplyResponse(delta=scenario_pb2.ReplyDelta(text=event.text))
            elif isinstance(event, ReplyDone):
                yield scenario_pb2.StreamReplyResponse(
                    done=scenario_pb2.ReplyDone(
                        session_id=event.session_id,
                        user_turn_id=event.user_turn_id,
                        reply_turn_id=event.reply_turn_id,
                        text=event.text,
                        finish_reason="STOP",
                        turn_index=event.turn_index,
                        move=event.move,
                        session_ended=event.session_ended,
                        end_reason=event.end_reason,
                    )
                )

    async def EndSession(  # noqa: N802
        self, request: scenario_pb2.EndSessionRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.EndSessionResponse:
        principal = await principal_from_metadata(self.verifier, context)
        ended = await self.service.end_session(
            user_id=principal.user_id, session_id=request.session_id, reason=request.reason
        )
        response = scenario_pb2.EndSessionResponse(
            session_id=str(ended.session.session_id), turn_count=ended.turn_count, already_ended=ended.already_ended
        )
        if ended.session.ended_at is not None:
            response.ended_at.FromDatetime(ended.session.ended_at)
        return response

    async def GetSession(  # noqa: N802
        self, request: scenario_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> scenario_pb2.GetSessionResponse:
        principal = await principal_from_metadata(self.verifier, context)
        session, scenario, turns = await self.service.get_session(request.session_id, principal.user_id)
        response = scenario_pb2.GetSessionResponse(
            session_id=str(session.session_id),
            scenario=self._message(scenario, session.language),
            end_reason=session.end_reason or "",
            language=session.language,
        )
        response.started_at.FromDatetime(session.started_at)
        if session.ended_at is not None:
            response.ended_at.FromDatetime(session.ended_at)
        for turn in turns:
            item = response.turns.add(turn_id=str(turn.turn_id), role=_ROLES[turn.role], text=turn.text, move=turn.move)
            item.created_at.FromDatetime(turn.created_at)
        return response


def grpc_service(service: ScenarioService, verifier: TokenVerifier) -> GrpcService:
    return GrpcService(
        add_to_server=scenario_pb2_grpc.add_ScenarioServiceServicer_to_server,
        servicer=ScenarioServicer(service, verifier),
        full_name=scenario_pb2.DESCRIPTOR.services_by_name["ScenarioService"].full_name,
    )
