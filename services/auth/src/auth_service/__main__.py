"""Entry point: `python -m auth_service`. The API is defined in proto/workplace/auth/v1;
its implementation arrives in a later issue, so every RPC answers UNIMPLEMENTED for now."""

from workplace.auth.v1 import auth_pb2, auth_pb2_grpc
from workplace_kit.service import run_placeholder


def main() -> None:
    run_placeholder(service="auth", pb2=auth_pb2, pb2_grpc=auth_pb2_grpc, grpc_name="AuthService")


if __name__ == "__main__":
    main()
