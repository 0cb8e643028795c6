"""HTTP adapter: accounts and tokens under /api/v2/auth, the public keys at /.well-known/jwks.json."""

# No `from __future__ import annotations`: FastAPI reads the token dependency, made in
# build_router, from the endpoints' real annotations.

import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from workplace_kit.accounts import DISPLAY_NAME_MAX_CHARS, EMAIL_MAX_CHARS, PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS
from workplace_kit.auth import Principal
from workplace_kit.ratelimit import Limiter, Rule, client_address
from workplace_kit.service import error_responses
from workplace_kit.web_security import clear_csrf_cookie, set_csrf_cookie

from .domain import EMAIL_PATTERN, NAME_PATTERN, AuthFailed, AuthService, Tokens
from .legacy import LegacyMigrator
from .repository import User
from .settings import AuthSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# The schema says exactly what is accepted (a request it allows is not refused later).
Email = Annotated[str, Field(max_length=EMAIL_MAX_CHARS, pattern=EMAIL_PATTERN)]
NewPassword = Annotated[str, Field(min_length=PASSWORD_MIN_CHARS, max_length=PASSWORD_MAX_CHARS)]
DisplayName = Annotated[
    str, Field(max_length=DISPLAY_NAME_MAX_CHARS, pattern=NAME_PATTERN, description="empty: a default name")
]


class GuestIn(_Strict):
    display_name: DisplayName = ""
    language: Literal["", "ja", "en"] = ""


class RegisterIn(_Strict):
    email: Email
    password: NewPassword
    display_name: DisplayName = ""
    language: Literal["", "ja", "en"] = ""


class UpgradeIn(_Strict):
    email: Email
    password: NewPassword
    display_name: DisplayName = ""


class LoginIn(_Strict):
    email: Email  # (an address no account can have is a 422, NUL characters included)
    password: str = Field(max_length=PASSWORD_MAX_CHARS)


class RefreshIn(_Strict):
    # Empty: the browser's refresh cookie is used.
    refresh_token: str = Field("", max_length=200)


class UserOut(BaseModel):
    id: str
    display_name: str
    email: str | None
    guest: bool
    preferred_language: str


class TokensOut(BaseModel):
    # Empty when the tokens went into HttpOnly cookies (X-Token-Delivery: cookie).
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


def set_token_cookies(response: Response, settings: AuthSettings, tokens: Tokens) -> None:
    """A browser's sign-in: the tokens in HttpOnly SameSite=Strict cookies only."""
    common: dict[str, Any] = {"httponly": True, "secure": settings.auth_cookie_secure, "samesite": "strict"}
    response.set_cookie(settings.auth_cookie_name, tokens.access_token, max_age=tokens.expires_in, path="/", **common)
    response.set_cookie(
        settings.auth_refresh_cookie_name,
        tokens.refresh_token,
        max_age=settings.refresh_token_ttl_s,
        path="/api/v2/auth",  # sent to the auth service only
        **common,
    )
    # A fresh CSRF token with each sign-in: the page's scripts send it back with every
    # state-changing request (workplace_kit.web_security), so an API-only browser has one too.
    set_csrf_cookie(response, settings)


def sign_in_limit(settings: AuthSettings, limiter: Limiter | None) -> Callable[[Request], Awaitable[None]]:
    """A dependency that counts one new sign-in (guest, registration, log-in, a provider's
    sign-in) for the caller's address: they cost hashing time and rows."""
    rule = Rule("auth-sign-ins", settings.auth_sign_ins_rate, "Too many sign-ins from this address; try again later")

    async def limit(request: Request) -> None:
        if limiter is not None:
            await limiter.hit(rule, client_address(request))

    return limit


def build_router(
    service: AuthService,
    current_principal: Any,
    limiter: Limiter | None = None,
    *,
    legacy: LegacyMigrator | None = None,
) -> APIRouter:
    """current_principal: the kit's dependency that verifies the access token (401 otherwise);
    limiter: counts sign-ins per address and password attempts per email (none: no limits);
    legacy: moves the legacy Flask app's sessions on a visit with its cookie (none: ignored)."""
    router = APIRouter(responses=error_responses(400, 401, 409, 422, 429, 503))
    Signed = Annotated[Principal, Depends(current_principal)]  # noqa: N806 - a type alias
    settings = service.settings
    Delivery = Annotated[str, Header(alias="X-Token-Delivery", max_length=10)]  # noqa: N806

    def deliver(tokens: Tokens, delivery: str, response: Response) -> TokensOut:
        """Tokens in the body, or for a browser in HttpOnly SameSite=Strict cookies only."""
        out = tokens_out(tokens)
        if delivery != "cookie":
            return out
        set_token_cookies(response, settings, tokens)
        return out.model_copy(update={"access_token": "", "refresh_token": ""})

    # Password guesses per email, whatever address they come from (and sign-ins per address).
    guesses = Rule(
        "auth-password-attempts",
        settings.auth_password_attempts_rate,
        "Too many attempts for this account; try again later",
    )

    limit_sign_ins = sign_in_limit(settings, limiter)
    SignInLimit = Depends(limit_sign_ins)  # noqa: N806

    @router.post(
        "/api/v2/auth/guest", status_code=201, response_model=TokensOut, tags=["auth"], dependencies=[SignInLimit]
    )
    async def guest(body: GuestIn, response: Response, delivery: Delivery = "") -> TokensOut:
        """A guest account at once: practise now, register later without losing anything."""
        return deliver(await service.guest(display_name=body.display_name, language=body.language), delivery, response)

    @router.post(
        "/api/v2/auth/register", status_code=201, response_model=TokensOut, tags=["auth"], dependencies=[SignInLimit]
    )
    async def register(body: RegisterIn, response: Response, delivery: Delivery = "") -> TokensOut:
        tokens = await service.register(
            email=body.email, password=body.password, display_name=body.display_name, language=body.language
        )
        return deliver(tokens, delivery, response)

    @router.post("/api/v2/auth/upgrade", response_model=TokensOut, tags=["auth"])
    async def upgrade(body: UpgradeIn, principal: Signed, response: Response, delivery: Delivery = "") -> TokensOut:
        """The signed-in guest becomes a full account, keeping every session."""
        tokens = await service.upgrade(
            principal.user_id, email=body.email, password=body.password, display_name=body.display_name
        )
        return deliver(tokens, delivery, response)

    @router.post("/api/v2/auth/login", response_model=TokensOut, tags=["auth"], dependencies=[SignInLimit])
    async def login(body: LoginIn, response: Response, delivery: Delivery = "") -> TokensOut:
        if limiter is not None:
            await limiter.hit(guesses, hashlib.sha256(body.email.strip().lower().encode()).hexdigest())
        return deliver(await service.login(email=body.email, password=body.password), delivery, response)

    def refresh_cookie(request: Request) -> str:
        # Read here, not declared as a parameter: browsers send it, API clients send the body.
        return request.cookies.get(settings.auth_refresh_cookie_name, "")[:200]

    @router.post("/api/v2/auth/refresh", response_model=TokensOut, tags=["auth"])
    async def refresh(body: RefreshIn, request: Request, response: Response, delivery: Delivery = "") -> TokensOut:
        """A new access token and a new refresh token; the one sent cannot be used again.
        An empty refresh_token: the browser's refresh cookie."""
        return deliver(await service.refresh(body.refresh_token or refresh_cookie(request)), delivery, response)

    @router.post("/api/v2/auth/session", response_model=TokensOut, tags=["auth"])
    async def browser_session(body: GuestIn, request: Request, response: Response) -> TokensOut:
        """For the pages: the browser's sign-in goes on (its refresh cookie, rotated), or a new
        guest one starts. Tokens only in HttpOnly cookies, and never an error to log for a
        first visit. A browser with the legacy app's session cookie brings its conversations
        along: to the signed-in account, or to the guest made for them (the cookie is then
        cleared)."""
        tokens: Tokens | None = None
        if token := refresh_cookie(request):
            try:
                tokens = await service.refresh(token)
            except AuthFailed:
                pass  # expired, ended or reused: start afresh as a guest
        if tokens is None:
            await limit_sign_ins(request)
        if legacy is not None and (cookie := request.cookies.get(settings.legacy_session_cookie_name)):
            visit = await legacy.visit(cookie, tokens.user if tokens else None)
            if visit.settled:
                domain = settings.legacy_session_cookie_domain or None
                response.delete_cookie(settings.legacy_session_cookie_name, path="/", domain=domain)
            if tokens is None and visit.user is not None:
                tokens = await service.sign_in_as(visit.user)
        if tokens is None:
            tokens = await service.guest(display_name=body.display_name, language=body.language)
        return deliver(tokens, "cookie", response)

    @router.post("/api/v2/auth/logout", status_code=204, tags=["auth"])
    async def logout(body: RefreshIn, request: Request) -> Response:
        """Ends the sign-in (every token of its family) and clears the browser's cookies."""
        if token := body.refresh_token or refresh_cookie(request):
            await service.logout(token)
        response = Response(status_code=204)
        response.delete_cookie(settings.auth_cookie_name, path="/")
        response.delete_cookie(settings.auth_refresh_cookie_name, path="/api/v2/auth")
        clear_csrf_cookie(response, settings)
        return response

    @router.get("/api/v2/auth/me", response_model=UserOut, tags=["auth"])
    async def me(principal: Signed) -> UserOut:
        return user_out(await service.get_user(principal.user_id))

    @router.get("/.well-known/jwks.json", tags=["auth"])
    async def jwks(response: Response) -> dict[str, Any]:
        """The public keys access tokens are signed with (old and new during a rotation)."""
        response.headers["Cache-Control"] = "public, max-age=300"
        return await service.keys.jwks()

    return router
