"""Entry point: `python -m tts_service`. The API is defined in proto/workplace/tts/v1;
its implementation arrives in a later issue, so every RPC answers UNIMPLEMENTED for now."""

from workplace.tts.v1 import tts_pb2, tts_pb2_grpc
from workplace_kit.service import run_placeholder


def main() -> None:
    run_placeholder(service="tts", pb2=tts_pb2, pb2_grpc=tts_pb2_grpc, grpc_name="TtsService")


if __name__ == "__main__":
    main()
