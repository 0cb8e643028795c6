"""Entry point: `python -m watch_service`. The API is defined in proto/workplace/watch/v1;
its implementation arrives in a later issue, so every RPC answers UNIMPLEMENTED for now."""

from workplace.watch.v1 import watch_pb2, watch_pb2_grpc
from workplace_kit.service import run_placeholder


def main() -> None:
    run_placeholder(
        service="watch",
        pb2=watch_pb2,
        pb2_grpc=watch_pb2_grpc,
        grpc_name="WatchService",
    )


if __name__ == "__main__":
    main()
