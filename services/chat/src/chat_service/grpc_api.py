"""gRPC adapter: workplace.chat.v1.ChatService over the same domain code as HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from workplace.chat.v1 import chat_pb2, chat_pb2_grpc
from workplace.common.v1 import common_pb2
from workplace_kit.auth import TokenVerifier, principal_from_metadata
from workplace_kit.grpc_server import GrpcService

from .domain import ChatService, ReplyCommand, ReplyDelta, ReplyDone, ReplyStarted

# The Partner enum predates the character catalogue; clients written against it still work.
# Its value names map to character ids by rule (PARTNER_BOSS -> "boss"), not by a table.
_PARTNER_PREFIX = "PARTNER_"


def _partner_id(request: chat_pb2.StreamReplyRequest) -> str:
    if request.partner_id:
        return request.partner_id
    if request.partner == chat_pb2.PARTNER_UNSPECIFIED:
        return ""  # the service's default character
    return chat_pb2.Partner.Name(request.partner).removeprefix(_PARTNER_PREFIX).lower()


def _partner_enum(partner_id: str) -> chat_pb2.Partner:
    name = _PARTNER_PREFIX + partner_id.upper()
    return chat_pb2.Partner.Value(name) if name in chat_pb2.Partner.keys() else chat_pb2.PARTNER_UNSPECIFIED


_ROLES = {"user": common_pb2.ROLE_USER, "model": common_pb2.ROLE_MODEL}


class ChatServicer(chat_pb2_grpc.ChatServiceServicer):
    """StreamReply and GetHistory act for the learner of the access token in the call's
    `authorization` metadata; a request's user_id field is ignored (it could name anyone)."""

    def __init__(self, service: ChatService, verifier: TokenVerifier) -> None:
        self.service = service
        self.verifier = verifier

    async def StreamReply(  # noqa: N802
        self, request: chat_pb2.StreamReplyRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[chat_pb2.StreamReplyResponse]:
        principal = await principal_from_metadata(self.verifier, context)
        events = await self.service.open_reply(
            ReplyCommand(
                user_id=principal.user_id,
                message=request.message,
                partner=_partner_id(request),
                situation=request.situation,
                session_id=request.session_id,
                language=request.language,
                temperature=request.temperature if request.HasField("temperature") else None,
            )
        )
        async for event in events:
            if isinstance(event, ReplyStarted):
                engine = common_pb2.EngineInfo(id=event.engine.id, label=event.engine.label, model=event.engine.model)
                yield chat_pb2.StreamReplyResponse(
                    started=chat_pb2.ReplyStarted(
                        session_id=event.session_id, user_turn_id=event.user_turn_id, engine=engine, cached=event.cached
                    )
                )
            elif isinstance(event, ReplyDelta):
                yield chat_pb2.StreamReplyResponse(delta=chat_pb2.ReplyDelta(text=event.text))
            elif isinstance(event, ReplyDone):
                yield chat_pb2.StreamReplyResponse(
                    done=chat_pb2.ReplyDone(
                        session_id=event.session_id,
                        user_turn_id=event.user_turn_id,
                        reply_turn_id=event.reply_turn_id,
                        text=event.text,
                        finish_reason=event.finish_reason,
                        cached=event.cached,
                    )
                )

    async def GetHistory(  # noqa: N802
        self, request: chat_pb2.GetHistoryRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.GetHistoryResponse:
        principal = await principal_from_metadata(self.verifier, context)
        session, messages = await self.service.history(request.session_id, principal.user_id)
        response = chat_pb2.GetHistoryResponse(
            session_id=str(session.session_id),
            partner=_partner_enum(session.partner),
            partner_id=session.partner,
            situation=session.situation,
        )
        for m in messages:
            msg = response.messages.add(turn_id=str(m.turn_id), role=_ROLES[m.role], text=m.text, engine_id=m.engine_id)
            msg.created_at.FromDatetime(m.created_at)
        return response

    def _situations(self) -> list[chat_pb2.Situation]:
        return [
            chat_pb2.Situation(
                id=s.id,
                title_ja=s.title_ja,
                title_en=s.title_en,
                description_ja=s.description_ja,
                description_en=s.description_en,
            )
            for s in self.service.list_situations()
        ]

    async def ListSituations(  # noqa: N802
        self, request: chat_pb2.ListSituationsRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.ListSituationsResponse:
        return chat_pb2.ListSituationsResponse(situations=self._situations())

    async def GetOptions(  # noqa: N802
        self, request: chat_pb2.GetOptionsRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.GetOptionsResponse:
        return chat_pb2.GetOptionsResponse(
            characters=[
                chat_pb2.Character(id=c.id, label_ja=c.labels["ja"], label_en=c.labels["en"])
                for c in self.service.list_characters()
            ],
            situations=self._situations(),
            max_message_chars=self.service.max_message_chars,
        )

    async def EndSession(  # noqa: N802
        self, request: chat_pb2.EndSessionRequest, context: grpc.aio.ServicerContext
    ) -> chat_pb2.EndSessionResponse:
        principal = await principal_from_metadata(self.verifier, context)
        session, turns, ended_at, already = await self.service.end_session(request.session_id, principal.user_id)
        response = chat_pb2.EndSessionResponse(
            session_id=str(session.session_id), turn_count=turns, already_ended=already
        )
        response.ended_at.FromDatetime(ended_at)
        return response


def grpc_service(service: ChatService, verifier: TokenVerifier) -> GrpcService:
    return GrpcService(
        add_to_server=chat_pb2_grpc.add_ChatServiceServicer_to_server,
        servicer=ChatServicer(service, verifier),
        full_name=chat_pb2.DESCRIPTOR.services_by_name["ChatService"].full_name,
    )
