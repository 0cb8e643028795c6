"""HTTP adapter: accounts and tokens under /api/v2/auth, the public keys at /.well-known/jwks.json."""

# No `from __future__ import annotations`: FastAPI reads the token dependency, made in
# build_router, from the endpoints' real annotations.

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, ConfigDict, Field
from workplace_kit.auth import Principal
from workplace_kit.service import error_responses

from .domain import AuthService, Tokens
from .repository import User


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GuestIn(_Strict):
    display_name: str = Field("", max_length=40)
    language: str = Field("", max_length=2)


class RegisterIn(_Strict):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)
    display_name: str = Field("", max_length=40)
    language: str = Field("", max_length=2)


class UpgradeIn(_Strict):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)
    display_name: str = Field("", max_length=40)


class LoginIn(_Strict):
    email: str = Field(max_length=254)
    password: str = Field(max_length=256)


class RefreshIn(_Strict):
    refresh_token: str = Field(min_length=1, max_length=200)


class UserOut(BaseModel):
    id: str
    display_name: str
    email: str | None
    guest: bool
    preferred_language: str


class TokensOut(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int
    refresh_token: str
    user: UserOut


def user_out(user: User) -> UserOut:
    return UserOut(
        id=str(user.user_id),
        display_name=user.display_name,
        email=user.email,
        guest=user.guest,
        preferred_language=user.preferred_language,
    )


def tokens_out(tokens: Tokens) -> TokensOut:
    return TokensOut(
        access_token=tokens.access_token,
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        user=user_out(tokens.user),
    )


def build_router(service: AuthService, current_principal: Any) -> APIRouter:
    """current_principal: the kit's dependency that verifies the access token (401 otherwise)."""
    router = APIRouter(responses=error_responses(400, 401, 409, 422, 503))
    Signed = Annotated[Principal, Depends(current_principal)]  # noqa: N806 - a type alias

    @router.post("/api/v2/auth/guest", status_code=201, response_model=TokensOut, tags=["auth"])
    async def guest(body: GuestIn) -> TokensOut:
        """A guest account at once: practise now, register later without losing anything."""
        return tokens_out(await service.guest(display_name=body.display_name, language=body.language))

    @router.post("/api/v2/auth/register", status_code=201, response_model=TokensOut, tags=["auth"])
    async def register(body: RegisterIn) -> TokensOut:
        return tokens_out(
            await service.register(
                email=body.email, password=body.password, display_name=body.display_name, language=body.language
            )
        )

    @router.post("/api/v2/auth/upgrade", response_model=TokensOut, tags=["auth"])
    async def upgrade(body: UpgradeIn, principal: Signed) -> TokensOut:
        """The signed-in guest becomes a full account, keeping every session."""
        return tokens_out(
            await service.upgrade(
                principal.user_id, email=body.email, password=body.password, display_name=body.display_name
            )
        )

    @router.post("/api/v2/auth/login", response_model=TokensOut, tags=["auth"])
    async def login(body: LoginIn) -> TokensOut:
        return tokens_out(await service.login(email=body.email, password=body.password))

    @router.post("/api/v2/auth/refresh", response_model=TokensOut, tags=["auth"])
    async def refresh(body: RefreshIn) -> TokensOut:
        """A new access token and a new refresh token; the one sent cannot be used again."""
        return tokens_out(await service.refresh(body.refresh_token))

    @router.post("/api/v2/auth/logout", status_code=204, tags=["auth"])
    async def logout(body: RefreshIn) -> Response:
        await service.logout(body.refresh_token)
        return Response(status_code=204)

    @router.get("/api/v2/auth/me", response_model=UserOut, tags=["auth"])
    async def me(principal: Signed) -> UserOut:
        return user_out(await service.get_user(principal.user_id))

    @router.get("/.well-known/jwks.json", tags=["auth"])
    async def jwks(response: Response) -> dict[str, Any]:
        """The public keys access tokens are signed with (old and new during a rotation)."""
        response.headers["Cache-Control"] = "public, max-age=300"
        return await service.keys.jwks()

    return router
