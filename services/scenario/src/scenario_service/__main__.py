"""Entry point: `python -m scenario_service`. The API is defined in proto/workplace/scenario/v1;
its implementation arrives in a later issue, so every RPC answers UNIMPLEMENTED for now."""

from pydantic import Field
from workplace.scenario.v1 import scenario_pb2, scenario_pb2_grpc
from workplace_kit.config import ServiceSettings
from workplace_kit.grpc_server import GrpcService
from workplace_kit.service import placeholder_build, run_main


class Settings(ServiceSettings):
    service_name: str = "scenario"
    http_port: int = Field(8104, ge=0, le=65535)
    grpc_port: int = Field(50054, ge=0, le=65535)


build = placeholder_build(
    "Workplace Roleplay scenario API",
    [
        GrpcService(
            add_to_server=scenario_pb2_grpc.add_ScenarioServiceServicer_to_server,
            servicer=scenario_pb2_grpc.ScenarioServiceServicer(),
            full_name=scenario_pb2.DESCRIPTOR.services_by_name["ScenarioService"].full_name,
        )
    ],
)


def main() -> None:
    run_main(Settings, build)


if __name__ == "__main__":
    main()
