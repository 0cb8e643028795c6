"""Entry point: `python -m scenario_service`. The API is defined in proto/workplace/scenario/v1;
its implementation arrives in a later issue, so every RPC answers UNIMPLEMENTED for now."""

from workplace.scenario.v1 import scenario_pb2, scenario_pb2_grpc
from workplace_kit.service import run_placeholder


def main() -> None:
    run_placeholder(
        service="scenario",
        pb2=scenario_pb2,
        pb2_grpc=scenario_pb2_grpc,
        grpc_name="ScenarioService",
    )


if __name__ == "__main__":
    main()
