"""Entry point: `python -m auth_service`. The API is defined in proto/workplace/auth/v1;
its implementation arrives in a later issue, so every RPC answers UNIMPLEMENTED for now."""

from pydantic import Field
from workplace.auth.v1 import auth_pb2, auth_pb2_grpc
from workplace_kit.config import ServiceSettings
from workplace_kit.grpc_server import GrpcService
from workplace_kit.service import placeholder_build, run_main


class Settings(ServiceSettings):
    service_name: str = "auth"
    http_port: int = Field(8103, ge=0, le=65535)
    grpc_port: int = Field(50053, ge=0, le=65535)


build = placeholder_build(
    "Workplace Roleplay auth API",
    [
        GrpcService(
            add_to_server=auth_pb2_grpc.add_AuthServiceServicer_to_server,
            servicer=auth_pb2_grpc.AuthServiceServicer(),
            full_name=auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
        )
    ],
)


def main() -> None:
    run_main(Settings, build)


if __name__ == "__main__":
    main()
