"""gRPC adapter: workplace.auth.v1.AuthService (token checks and profiles for internal callers)."""

from __future__ import annotations

import grpc
from workplace.auth.v1 import auth_pb2, auth_pb2_grpc
from workplace_kit.auth import InvalidToken, TokenVerifier
from workplace_kit.grpc_server import GrpcService

from .domain import AuthService
from .repository import User


def user_pb(user: User) -> auth_pb2.User:
    message = auth_pb2.User(
        id=str(user.user_id),
        display_name=user.display_name,
        email=user.email or "",
        guest=user.guest,
        preferred_language=user.preferred_language,
    )
    message.created_at.FromDatetime(user.created_at)
    message.last_seen_at.FromDatetime(user.last_seen_at)
    return message


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, service: AuthService, verifier: TokenVerifier) -> None:
        self.service = service
        self.verifier = verifier

    async def VerifyToken(  # noqa: N802
        self, request: auth_pb2.VerifyTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.VerifyTokenResponse:
        try:
            principal = await self.verifier.verify(request.token)
        except InvalidToken as exc:
            return auth_pb2.VerifyTokenResponse(valid=False, error=exc.reason)
        response = auth_pb2.VerifyTokenResponse(
            valid=True, user_id=principal.user_id, guest=principal.guest, scopes=sorted(principal.scopes)
        )
        response.expires_at.FromDatetime(principal.expires_at)
        return response

    async def GetUser(  # noqa: N802
        self, request: auth_pb2.GetUserRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.GetUserResponse:
        return auth_pb2.GetUserResponse(user=user_pb(await self.service.get_user(request.user_id)))

    async def MigrateLegacySession(  # noqa: N802
        self, request: auth_pb2.MigrateLegacySessionRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.MigrateLegacySessionResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "legacy session migration is not implemented yet")
        raise AssertionError("abort raises")


def grpc_service(service: AuthService, verifier: TokenVerifier) -> GrpcService:
    return GrpcService(
        add_to_server=auth_pb2_grpc.add_AuthServiceServicer_to_server,
        servicer=AuthServicer(service, verifier),
        full_name=auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
    )
