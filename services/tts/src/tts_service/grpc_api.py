"""gRPC adapter: workplace.tts.v1.TtsService over the same domain code as HTTP.

Synthesize, StreamSynthesize and Transcribe act for the learner of the access token in the
call's `authorization` metadata (their rate limits are per learner); ListVoices is public.
Bad input is INVALID_ARGUMENT, an unknown voice or character NOT_FOUND, voice input without a
recogniser FAILED_PRECONDITION, a provider outage UNAVAILABLE (the kit's interceptor maps them).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from workplace.tts.v1 import tts_pb2, tts_pb2_grpc
from workplace_kit.auth import TokenVerifier, principal_from_metadata
from workplace_kit.grpc_server import GrpcService

from .domain import SpeechRequest, TtsService


def _request(message: tts_pb2.SynthesizeRequest | tts_pb2.StreamSynthesizeRequest) -> SpeechRequest:
    return SpeechRequest(
        text=message.text,
        language=message.language,
        voice=message.voice,
        character_id=message.character_id,
        speed=message.speed,
        mime_type=message.mime_type,
    )


class TtsServicer(tts_pb2_grpc.TtsServiceServicer):
    def __init__(self, service: TtsService, verifier: TokenVerifier) -> None:
        self.service = service
        self.verifier = verifier

    async def Synthesize(  # noqa: N802
        self, request: tts_pb2.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> tts_pb2.SynthesizeResponse:
        principal = await principal_from_metadata(self.verifier, context)
        speech = await self.service.synthesize(_request(request), user_id=principal.user_id)
        return tts_pb2.SynthesizeResponse(
            audio=speech.audio,
            mime_type=speech.mime_type,
            sample_rate_hz=speech.sample_rate,
            duration_ms=speech.duration_ms,
            voice=speech.voice,
            engine=speech.engine,
            cached=speech.cached,
        )

    async def StreamSynthesize(  # noqa: N802
        self, request: tts_pb2.StreamSynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[tts_pb2.StreamSynthesizeResponse]:
        principal = await principal_from_metadata(self.verifier, context)
        stream = await self.service.open_stream(_request(request), user_id=principal.user_id)
        yield tts_pb2.StreamSynthesizeResponse(
            started=tts_pb2.SynthesisStarted(
                mime_type=stream.mime_type,
                sample_rate_hz=stream.sample_rate,
                voice=stream.voice,
                engine=stream.engine,
                cached=stream.cached,
            )
        )
        sequence = 0
        async for piece in stream.chunks:
            yield tts_pb2.StreamSynthesizeResponse(chunk=tts_pb2.AudioChunk(audio=piece, sequence=sequence))
            sequence += 1
        yield tts_pb2.StreamSynthesizeResponse(
            done=tts_pb2.SynthesisDone(
                duration_ms=stream.duration_ms, total_bytes=stream.total_bytes, chunk_count=stream.chunk_count
            )
        )

    async def ListVoices(  # noqa: N802
        self, request: tts_pb2.ListVoicesRequest, context: grpc.aio.ServicerContext
    ) -> tts_pb2.ListVoicesResponse:
        listing = self.service.voices(request.language)
        return tts_pb2.ListVoicesResponse(
            voices=[
                tts_pb2.Voice(id=v.id, language=v.language, gender=v.gender, engine=v.engine, description=v.description)
                for v in listing.voices
            ],
            characters=[
                tts_pb2.CharacterVoice(character_id=c.character_id, language=c.language, voice=c.voice)
                for c in listing.characters
            ],
        )

    async def Transcribe(  # noqa: N802
        self, request: tts_pb2.TranscribeRequest, context: grpc.aio.ServicerContext
    ) -> tts_pb2.TranscribeResponse:
        principal = await principal_from_metadata(self.verifier, context)
        transcript = await self.service.transcribe(
            request.audio, request.mime_type, request.language, user_id=principal.user_id
        )
        return tts_pb2.TranscribeResponse(text=transcript.text, engine=transcript.engine)


def grpc_service(service: TtsService, verifier: TokenVerifier) -> GrpcService:
    return GrpcService(
        add_to_server=tts_pb2_grpc.add_TtsServiceServicer_to_server,
        servicer=TtsServicer(service, verifier),
        full_name=tts_pb2.DESCRIPTOR.services_by_name["TtsService"].full_name,
    )
