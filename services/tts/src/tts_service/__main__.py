"""Entry point: `python -m tts_service`. The API is defined in proto/workplace/tts/v1;
its implementation arrives in a later issue, so every RPC answers UNIMPLEMENTED for now."""

from pydantic import Field
from workplace.tts.v1 import tts_pb2, tts_pb2_grpc
from workplace_kit.config import ServiceSettings
from workplace_kit.grpc_server import GrpcService
from workplace_kit.service import placeholder_build, run_main


class Settings(ServiceSettings):
    service_name: str = "tts"
    http_port: int = Field(8106, ge=0, le=65535)
    grpc_port: int = Field(50056, ge=0, le=65535)


build = placeholder_build(
    "Workplace Roleplay TTS API",
    [
        GrpcService(
            add_to_server=tts_pb2_grpc.add_TtsServiceServicer_to_server,
            servicer=tts_pb2_grpc.TtsServiceServicer(),
            full_name=tts_pb2.DESCRIPTOR.services_by_name["TtsService"].full_name,
        )
    ],
)


def main() -> None:
    run_main(Settings, build)


if __name__ == "__main__":
    main()
