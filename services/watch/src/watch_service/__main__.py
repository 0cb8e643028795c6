"""Entry point: `python -m watch_service`. The API is defined in proto/workplace/watch/v1;
its implementation arrives in a later issue, so every RPC answers UNIMPLEMENTED for now."""

from pydantic import Field
from workplace.watch.v1 import watch_pb2, watch_pb2_grpc
from workplace_kit.config import ServiceSettings
from workplace_kit.grpc_server import GrpcService
from workplace_kit.service import placeholder_build, run_main


class Settings(ServiceSettings):
    service_name: str = "watch"
    http_port: int = Field(8105, ge=0, le=65535)
    grpc_port: int = Field(50055, ge=0, le=65535)


build = placeholder_build(
    "Workplace Roleplay watch API",
    [
        GrpcService(
            add_to_server=watch_pb2_grpc.add_WatchServiceServicer_to_server,
            servicer=watch_pb2_grpc.WatchServiceServicer(),
            full_name=watch_pb2.DESCRIPTOR.services_by_name["WatchService"].full_name,
        )
    ],
)


def main() -> None:
    run_main(Settings, build)


if __name__ == "__main__":
    main()
