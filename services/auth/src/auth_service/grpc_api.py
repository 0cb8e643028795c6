"""gRPC adapter: workplace.auth.v1.AuthService (token checks and profiles for internal callers)."""

from __future__ import annotations

import grpc
from workplace.auth.v1 import auth_pb2, auth_pb2_grpc
from workplace_kit.auth import InvalidToken, TokenVerifier, principal_from_metadata
from workplace_kit.errors import NotFound
from workplace_kit.grpc_server import GrpcService

from .domain import AuthService
from .legacy import LegacyMigrator, Outcome
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
    def __init__(self, service: AuthService, verifier: TokenVerifier, legacy: LegacyMigrator) -> None:
        self.service = service
        self.verifier = verifier
        self.legacy = legacy

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
        """The caller's own profile: the user comes from the call's access token, and a user_id
        naming anyone else is NOT_FOUND, as one that does not exist (never trusted)."""
        principal = await principal_from_metadata(self.verifier, context)
        if request.user_id and request.user_id != principal.user_id:
            raise NotFound("no such user")
        return auth_pb2.GetUserResponse(user=user_pb(await self.service.get_user(principal.user_id)))

    async def MigrateLegacySession(  # noqa: N802
        self, request: auth_pb2.MigrateLegacySessionRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.MigrateLegacySessionResponse:
        """The session moves to the user of the access token in the metadata, or to a new guest
        without one; request.user_id, if set, must be that same user (it is never trusted)."""
        signed = any(key.lower() == "authorization" for key, _ in context.invocation_metadata() or ())
        caller = None
        if signed:
            principal = await principal_from_metadata(self.verifier, context)
            caller = await self.service.get_user(principal.user_id)
        if request.user_id and (caller is None or request.user_id != str(caller.user_id)):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "user_id must be the signed-in caller's own")
        result = await self.legacy.migrate_for_caller(request.legacy_session_id, caller)
        assert result.user_id is not None  # moved, now or before
        return auth_pb2.MigrateLegacySessionResponse(
            user=user_pb(await self.service.get_user(str(result.user_id))),
            created=result.created_user,
            migrated_session_count=result.session_count,
            migrated_message_count=result.message_count,
            already_migrated=result.outcome == Outcome.ALREADY_MIGRATED,
        )


def grpc_service(service: AuthService, verifier: TokenVerifier, legacy: LegacyMigrator) -> GrpcService:
    return GrpcService(
        add_to_server=auth_pb2_grpc.add_AuthServiceServicer_to_server,
        servicer=AuthServicer(service, verifier, legacy),
        full_name=auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,
    )
