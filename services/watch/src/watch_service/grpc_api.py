"""gRPC adapter: workplace.watch.v1.WatchService over the same domain code as HTTP. Every RPC
acts for the learner of the access token in the call's `authorization` metadata (a request's
user_id field is ignored: it could name anyone)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict

import grpc
from workplace.common.v1 import common_pb2
from workplace.watch.v1 import watch_pb2, watch_pb2_grpc
from workplace_kit.auth import TokenVerifier, principal_from_metadata
from workplace_kit.grpc_server import GrpcService

from .domain import AudioEvent, EndedEvent, StateEvent, TurnEvent, WatchService
from .repository import StoredTurn, WatchRow


def _token(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key.lower() == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            return text.removeprefix("Bearer ").strip()
    return ""


def turn_message(turn: StoredTurn) -> watch_pb2.TurnCompleted:
    message = watch_pb2.TurnCompleted(
        turn_id=str(turn.turn_id),
        turn_index=turn.turn_index,
        speaker_id=turn.speaker_id,
        text=turn.text,
        intervention=turn.intervention,
    )
    message.created_at.FromDatetime(turn.created_at)
    return message


class WatchServicer(watch_pb2_grpc.WatchServiceServicer):
    def __init__(self, service: WatchService, verifier: TokenVerifier) -> None:
        self.service = service
        self.verifier = verifier

    def _speakers(self, watch: WatchRow) -> list[watch_pb2.Speaker]:
        info = self.service.engine_info
        engine = common_pb2.EngineInfo(id=info.id, label=info.label, model=info.model)
        return [
            watch_pb2.Speaker(
                id=s.id, display_name=s.display_name, persona=s.persona, character_id=s.character_id, engine=engine
            )
            for s in watch.speakers
        ]

    async def StartWatch(  # noqa: N802
        self, request: watch_pb2.StartWatchRequest, context: grpc.aio.ServicerContext
    ) -> watch_pb2.StartWatchResponse:
        """`situation` names a scenario; else `topic` finds the nearest. `speakers` is not
        honoured: the scenario decides who talks (its character and a model learner)."""
        principal = await principal_from_metadata(self.verifier, context)
        watch = await self.service.start(
            user_id=principal.user_id,
            scenario_id=request.situation,
            topic=request.topic,
            language=request.language,
            pace_seconds=request.pace_seconds or None,
            max_turns=request.max_turns or None,
            token=_token(context),
        )
        response = watch_pb2.StartWatchResponse(
            watch_id=str(watch.watch_id),
            speakers=self._speakers(watch),
            max_turns=watch.max_turns,
            scenario_id=watch.scenario_id,
            title=watch.title,
            pace_seconds=watch.pace_seconds,
        )
        response.started_at.FromDatetime(watch.started_at)
        return response

    async def StreamWatch(  # noqa: N802
        self, request: watch_pb2.StreamWatchRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[watch_pb2.StreamWatchResponse]:
        principal = await principal_from_metadata(self.verifier, context)
        after = request.after_turn_index if request.HasField("after_turn_index") else None
        events = await self.service.open_events(request.watch_id, principal.user_id, after=after)
        async for event in events:
            if isinstance(event, TurnEvent):
                yield watch_pb2.StreamWatchResponse(turn_completed=turn_message(event.turn))
            elif isinstance(event, StateEvent):
                yield watch_pb2.StreamWatchResponse(
                    state=watch_pb2.WatchState(paused=event.paused, pace_seconds=event.pace_seconds)
                )
            elif isinstance(event, EndedEvent):
                yield watch_pb2.StreamWatchResponse(
                    ended=watch_pb2.WatchEnded(reason=event.reason, turn_count=event.turn_count)
                )
            else:
                assert isinstance(event, AudioEvent)  # the proto has no audio event: pages use HTTP

    async def Intervene(  # noqa: N802
        self, request: watch_pb2.InterveneRequest, context: grpc.aio.ServicerContext
    ) -> watch_pb2.InterveneResponse:
        principal = await principal_from_metadata(self.verifier, context)
        turn_id, index = await self.service.intervene(
            watch_id=request.watch_id,
            user_id=principal.user_id,
            message=request.message,
            target=request.target_speaker_id,
        )
        return watch_pb2.InterveneResponse(turn_id=turn_id, turn_index=index)

    async def StopWatch(  # noqa: N802
        self, request: watch_pb2.StopWatchRequest, context: grpc.aio.ServicerContext
    ) -> watch_pb2.StopWatchResponse:
        principal = await principal_from_metadata(self.verifier, context)
        stopped = await self.service.stop(watch_id=request.watch_id, user_id=principal.user_id)
        response = watch_pb2.StopWatchResponse(
            watch_id=stopped.watch_id, turn_count=stopped.turn_count, already_stopped=stopped.already_stopped
        )
        if stopped.stopped_at is not None:
            response.stopped_at.FromDatetime(stopped.stopped_at)
        return response

    async def ControlWatch(  # noqa: N802
        self, request: watch_pb2.ControlWatchRequest, context: grpc.aio.ServicerContext
    ) -> watch_pb2.ControlWatchResponse:
        principal = await principal_from_metadata(self.verifier, context)
        done = await self.service.control(
            watch_id=request.watch_id,
            user_id=principal.user_id,
            paused=request.paused if request.HasField("paused") else None,
            pace_seconds=request.pace_seconds if request.HasField("pace_seconds") else None,
        )
        return watch_pb2.ControlWatchResponse(
            watch_id=request.watch_id, paused=done.paused, pace_seconds=done.pace_seconds, ended=done.ended
        )

    async def GetWatchNotes(  # noqa: N802
        self, request: watch_pb2.GetWatchNotesRequest, context: grpc.aio.ServicerContext
    ) -> watch_pb2.GetWatchNotesResponse:
        principal = await principal_from_metadata(self.verifier, context)
        found = await self.service.notes(watch_id=request.watch_id, user_id=principal.user_id)
        return watch_pb2.GetWatchNotesResponse(
            watch_id=request.watch_id,
            notes=[watch_pb2.WatchNote(**asdict(n)) for n in found.notes],
            learning_points=found.learning_points,
            summary=found.summary,
        )


def grpc_service(service: WatchService, verifier: TokenVerifier) -> GrpcService:
    return GrpcService(
        add_to_server=watch_pb2_grpc.add_WatchServiceServicer_to_server,
        servicer=WatchServicer(service, verifier),
        full_name=watch_pb2.DESCRIPTOR.services_by_name["WatchService"].full_name,
    )
