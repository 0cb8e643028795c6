"""Sign-in with an OpenID Connect provider (Google by default): the authorization-code flow with
PKCE, state and nonce.

GET /api/v2/auth/oidc/start sends the browser to the provider. The state, the nonce and the PKCE
verifier are kept server-side (table oidc_logins, the state as a hash, ten minutes, used once);
the browser holds the state in an HttpOnly cookie that is SameSite=Lax, because the provider's
redirect back is a cross-site navigation. GET /api/v2/auth/oidc/callback accepts the code only
with that cookie (a sign-in started in another browser cannot be completed in this one), trades
it for an ID token at the provider's token endpoint, and verifies the token with PyJWT against the
provider's published keys: signature, issuer, audience, expiry, nonce, a verified email and, for
organisations, the allowed Google Workspace domain (`hd`).

Accounts are linked by the provider's (issuer, subject), never by email alone: a password account
with the same address is not taken over (registration does not prove the address is its owner's,
so linking could hand a provider account to whoever registered the address first); that sign-in
is refused with `oidc_account_exists`. A guest signed in when the sign-in starts becomes the
account (same user id, every session kept). Our own tokens then go into the usual HttpOnly
cookies and the browser is sent to the app at `/`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
import httpx
import jwt
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from workplace_kit.auth import Principal
from workplace_kit.errors import DomainError, NotFound, Unavailable
from workplace_kit.service import ErrorBody, error_responses

from .domain import EMAIL_PATTERN, AuthService, Tokens
from .http_api import set_token_cookies
from .repository import AuthRepository, EmailTaken, User

log = logging.getLogger(__name__)

LOGIN_TTL_S = 600  # from the redirect out to the callback
STATE_COOKIE = "wp_oidc"
COOKIE_PATH = "/api/v2/auth/oidc"
SCOPES = "openid email profile"
# Asymmetric signatures only: a provider's ID token is never accepted with "none" or an HMAC
# (whose "key" would be public).
ID_TOKEN_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
CLOCK_LEEWAY_S = 60
DISCOVERY_TTL_S = 3600
JWKS_REFETCH_MIN_INTERVAL_S = 30
HTTP_TIMEOUT_S = 10.0
MAX_ID_TOKEN_CHARS = 16_384
AFTER_SIGN_IN = "/"
GOOGLE_ISSUER = "https://accounts.google.com"
_EMAIL = re.compile(EMAIL_PATTERN)


class OidcRefused(DomainError):
    """The sign-in cannot be completed; `code` says why (the `error` of the JSON answer)."""

    def __init__(self, code: str, message: str, *, http_status: int = 401) -> None:
        super().__init__(message)
        self.error_code = code
        self.http_status = http_status


def _refused_signature() -> OidcRefused:
    return OidcRefused("oidc_bad_signature", "the ID token's signature is not the provider's")


@dataclass(frozen=True)
class PendingLogin:
    nonce: str
    code_verifier: str
    guest_user_id: uuid.UUID | None


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    return base64.urlsafe_b64encode(_sha256(verifier)).decode().rstrip("=")


class OidcStore:
    """The tables of this module (identities, oidc_logins); users go through AuthRepository."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    async def add_login(self, state: str, login: PendingLogin) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM oidc_logins WHERE expires_at < now()")
            await conn.execute(
                "INSERT INTO oidc_logins (state_hash, nonce, code_verifier, guest_user_id, expires_at) "
                "VALUES ($1, $2, $3, $4, $5)",
                _sha256(state),
                login.nonce,
                login.code_verifier,
                login.guest_user_id,
                datetime.now(UTC) + timedelta(seconds=LOGIN_TTL_S),
            )

    async def take_login(self, state: str) -> PendingLogin | None:
        """The sign-in started with this state, once: it is deleted as it is read."""
        row = await self.pool.fetchrow(
            "DELETE FROM oidc_logins WHERE state_hash = $1 RETURNING nonce, code_verifier, guest_user_id, "
            "expires_at > now() AS live",
            _sha256(state),
        )
        if row is None or not row["live"]:
            return None
        return PendingLogin(row["nonce"], row["code_verifier"], row["guest_user_id"])

    async def linked_user(self, issuer: str, subject: str) -> uuid.UUID | None:
        user_id: uuid.UUID | None = await self.pool.fetchval(
            "UPDATE identities SET last_used_at = now() WHERE issuer = $1 AND subject = $2 RETURNING user_id",
            issuer,
            subject,
        )
        return user_id

    async def link(self, issuer: str, subject: str, user_id: uuid.UUID) -> None:
        await self.pool.execute(
            "INSERT INTO identities (issuer, subject, user_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            issuer,
            subject,
            user_id,
        )


class OidcProvider:
    """The provider's endpoints (discovery) and signing keys (JWKS), fetched and cached."""

    def __init__(self, issuer: str, http: httpx.AsyncClient, clock: Callable[[], float] = time.time):
        self.issuer = issuer.rstrip("/")
        # The `iss` values an ID token may carry: Google's also come without the scheme.
        self.token_issuers = [self.issuer]
        if self.issuer == GOOGLE_ISSUER:
            self.token_issuers.append("accounts.google.com")
        self._http = http
        self._clock = clock
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: dict[str, jwt.PyJWK] = {}
        self._keys_at: float | None = None

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("OIDC provider unreachable at %s: %r", url, exc)
            raise Unavailable("the sign-in provider cannot be reached; try again shortly") from None
        if not isinstance(data, dict):
            raise Unavailable("the sign-in provider answered with something unexpected; try again shortly")
        return data

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or self._clock() - self._metadata_at > DISCOVERY_TTL_S:
            data = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
            if str(data.get("issuer", "")).rstrip("/") != self.issuer:
                log.error("OIDC discovery names issuer %r, configured %r", data.get("issuer"), self.issuer)
                raise Unavailable("the sign-in provider is misconfigured")
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not str(data.get(name, "")).startswith(("https://", "http://")):
                    raise Unavailable("the sign-in provider is misconfigured")
            self._metadata, self._metadata_at = data, self._clock()
        return self._metadata

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The provider's signing key `kid`; an unknown kid fetches the keys again (at most
        once per JWKS_REFETCH_MIN_INTERVAL_S: the provider rotates its keys)."""
        now = self._clock()
        if kid not in self._keys and (self._keys_at is None or now - self._keys_at > JWKS_REFETCH_MIN_INTERVAL_S):
            jwks = await self._get_json((await self.metadata())["jwks_uri"])
            keys: dict[str, jwt.PyJWK] = {}
            for entry in jwks.get("keys", []) if isinstance(jwks.get("keys"), list) else []:
                try:
                    parsed = jwt.PyJWK(entry)
                except (jwt.PyJWTError, ValueError, TypeError, KeyError):
                    continue  # a key of a kind we do not use
                if parsed.key_id and entry.get("use", "sig") == "sig":
                    keys[parsed.key_id] = parsed
            self._keys, self._keys_at = keys, now
        return self._keys.get(kid)


def _provider_name(raw: object, fallback: str) -> str:
    """A display name from the provider: no control characters, at most 40 characters."""
    text = unicodedata.normalize("NFC", raw if isinstance(raw, str) else "")
    name = "".join(c for c in text if unicodedata.category(c) != "Cc").strip()[:40].strip()
    return name or fallback[:40]


class OidcSignIn:
    def __init__(self, service: AuthService, store: OidcStore, provider: OidcProvider, http: httpx.AsyncClient):
        self.service = service
        self.settings = service.settings
        self.repository: AuthRepository = service.repository
        self.store = store
        self.provider = provider
        self._http = http

    async def start(self, guest_user_id: uuid.UUID | None) -> tuple[str, str]:
        """(the provider's authorization URL, the state the browser keeps in its cookie)."""
        metadata = await self.provider.metadata()
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
        await self.store.add_login(state, PendingLogin(nonce, verifier, guest_user_id))
        params = {
            "response_type": "code",
            "client_id": self.settings.auth_oidc_client_id,
            "redirect_uri": self.settings.auth_oidc_redirect_url,
            "scope": SCOPES,
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
            "prompt": "select_account",
        }
        if len(self.settings.auth_oidc_allowed_domains) == 1:
            # Google shows accounts of this Workspace domain first (a hint: the callback checks).
            params["hd"] = self.settings.auth_oidc_allowed_domains[0]
        url = httpx.URL(metadata["authorization_endpoint"]).copy_merge_params(params)
        return str(url), state

    async def finish(self, *, code: str, state: str, cookie_state: str) -> Tokens:
        if not state or not cookie_state or not hmac.compare_digest(state.encode(), cookie_state.encode()):
            raise OidcRefused(
                "oidc_state_mismatch", "this sign-in was not started in this browser; start again", http_status=400
            )
        login = await self.store.take_login(state)
        if login is None:
            raise OidcRefused(
                "oidc_state_mismatch", "this sign-in has expired or was already used; start again", http_status=400
            )
        if not code:
            raise OidcRefused("oidc_code_rejected", "the provider sent no authorization code", http_status=400)
        id_token = await self._exchange(code, login.code_verifier)
        claims = await self._verified_claims(id_token, login.nonce)
        user = await self._account(claims, login.guest_user_id)
        return await self.service.sign_in_as(user)

    async def _exchange(self, code: str, code_verifier: str) -> str:
        """The ID token for the authorization code (client_secret_post, with the PKCE verifier)."""
        metadata = await self.provider.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.auth_oidc_redirect_url,
            "client_id": self.settings.auth_oidc_client_id,
            "code_verifier": code_verifier,
        }
        if secret := self.settings.auth_oidc_client_secret.get_secret_value():
            form["client_secret"] = secret
        try:
            response = await self._http.post(
                metadata["token_endpoint"], data=form, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            log.warning("OIDC token endpoint unreachable: %r", exc)
            raise Unavailable("the sign-in provider cannot be reached; try again shortly") from None
        if response.status_code >= 500:
            raise Unavailable("the sign-in provider cannot complete the sign-in now; try again shortly")
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            log.info("OIDC code refused by the provider: %s %s", response.status_code, str(error)[:100])
            raise OidcRefused("oidc_code_rejected", "the provider did not accept the sign-in; start again")
        id_token = body.get("id_token")
        if not isinstance(id_token, str) or not id_token or len(id_token) > MAX_ID_TOKEN_CHARS:
            raise OidcRefused("oidc_code_rejected", "the provider sent no ID token")
        return id_token

    async def _verified_claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise OidcRefused("oidc_invalid_id_token", "the ID token is malformed") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ID_TOKEN_ALGORITHMS or not isinstance(kid, str) or not kid:
            raise _refused_signature()
        key = await self.provider.key(kid)
        if key is None or (key.algorithm_name and key.algorithm_name != alg):
            raise _refused_signature()
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=[alg],
                audience=self.settings.auth_oidc_client_id,
                issuer=self.provider.token_issuers,
                leeway=CLOCK_LEEWAY_S,
                options={"require": ["iss", "aud", "sub", "exp", "iat"]},
            )
        except jwt.InvalidSignatureError:
            raise _refused_signature() from None
        except jwt.ExpiredSignatureError:
            raise OidcRefused("oidc_expired", "the ID token has expired; start again") from None
        except jwt.InvalidIssuerError:
            raise OidcRefused("oidc_wrong_issuer", "the ID token is from another issuer") from None
        except jwt.InvalidAudienceError:
            raise OidcRefused("oidc_wrong_audience", "the ID token was issued to another application") from None
        except jwt.PyJWTError as exc:
            log.info("OIDC ID token refused: %s", exc)
            raise OidcRefused("oidc_invalid_id_token", "the ID token is not valid") from None
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.settings.auth_oidc_client_id:
            raise OidcRefused("oidc_wrong_audience", "the ID token was issued to another application")
        token_nonce = claims.get("nonce")
        if not isinstance(token_nonce, str) or not hmac.compare_digest(token_nonce.encode(), nonce.encode()):
            raise OidcRefused("oidc_nonce_mismatch", "the ID token does not belong to this sign-in; start again")
        if not isinstance(claims["sub"], str) or not claims["sub"] or len(claims["sub"]) > 255:
            raise OidcRefused("oidc_invalid_id_token", "the ID token names no account")
        email = claims.get("email")
        if not isinstance(email, str) or len(email) > 254 or not _EMAIL.match(email):
            raise OidcRefused("oidc_email_unverified", "the provider's account has no email address", http_status=403)
        # Google sends a boolean; some providers a string.
        if claims.get("email_verified") not in (True, "true"):
            raise OidcRefused(
                "oidc_email_unverified", "the provider has not verified this email address", http_status=403
            )
        allowed = self.settings.auth_oidc_allowed_domains
        # `hd` is the Google Workspace the account belongs to; an address's domain is not enough
        # (a personal Google account can carry a company address).
        if allowed and str(claims.get("hd", "")).lower() not in allowed:
            raise OidcRefused(
                "oidc_domain_not_allowed",
                "this account is not one of the organisations allowed to sign in here",
                http_status=403,
            )
        return claims

    async def _account(self, claims: dict[str, Any], guest_user_id: uuid.UUID | None) -> User:
        issuer, subject = self.provider.issuer, claims["sub"]
        if (user := await self._linked(issuer, subject)) is not None:
            return user
        email = str(claims["email"]).lower()
        name = _provider_name(claims.get("name"), email.split("@")[0])
        guest = await self.repository.user(guest_user_id) if guest_user_id else None
        try:
            if guest is not None and guest.guest:
                upgraded = await self.repository.upgrade_guest(
                    guest.user_id, email=email, password_hash=None, display_name=name
                )
                if upgraded is not None:
                    await self.repository.revoke_all(upgraded.user_id)  # the guest's tokens said guest
                    await self.store.link(issuer, subject, upgraded.user_id)
                    return upgraded
            locale = str(claims.get("locale", ""))
            user = await self.repository.create_user(
                email=email,
                password_hash=None,
                display_name=name,
                guest=False,
                language="en" if locale.startswith("en") else "ja",
            )
        except EmailTaken:
            # A first sign-in of the same account that finished meanwhile linked it; otherwise
            # another account has this address (see the module doc: not linked by email).
            if (user := await self._linked(issuer, subject)) is not None:
                return user
            raise OidcRefused(
                "oidc_account_exists",
                "an account with this email address already exists; sign in with its password",
                http_status=409,
            ) from None
        await self.store.link(issuer, subject, user.user_id)
        return user

    async def _linked(self, issuer: str, subject: str) -> User | None:
        user_id = await self.store.linked_user(issuer, subject)
        return await self.repository.user(user_id) if user_id else None


def build_oidc_router(
    service: AuthService,
    pool: asyncpg.Pool,
    current_principal: Callable[[Request], Awaitable[Principal]],
    http: httpx.AsyncClient,
    limit_sign_ins: Callable[[Request], Awaitable[None]] | None = None,
) -> APIRouter:
    """The routes, answering 404 while no client id is configured (WP_AUTH_OIDC_CLIENT_ID);
    limit_sign_ins counts each start against the caller's address (it writes a row)."""
    settings = service.settings
    flow = OidcSignIn(service, OidcStore(pool), OidcProvider(settings.auth_oidc_issuer, http), http)
    responses: dict[int | str, dict[str, Any]] = {
        **error_responses(400, 401, 404, 409, 429, 503),
        403: {"model": ErrorBody, "description": "The account may not sign in here (domain, unverified email)"},
        303: {"description": "To the provider (start) or to the app, signed in (callback)"},
    }
    router = APIRouter(prefix="/api/v2/auth/oidc", tags=["auth"], responses=responses)

    def enabled() -> None:
        if not settings.oidc_enabled:
            raise NotFound("sign-in with an identity provider is not enabled")

    async def signed_in_guest(request: Request) -> uuid.UUID | None:
        """The guest this browser is signed in as (the access cookie), if any."""
        try:
            principal = await current_principal(request)
        except DomainError:
            return None
        return uuid.UUID(principal.user_id) if principal.guest else None

    @router.get("/start", status_code=303, response_class=RedirectResponse)
    async def start(request: Request) -> Response:
        """Sends the browser to the provider to sign in (a signed-in guest keeps their account)."""
        enabled()
        if limit_sign_ins is not None:
            await limit_sign_ins(request)
        url, state = await flow.start(await signed_in_guest(request))
        response = RedirectResponse(url, status_code=303)
        response.set_cookie(
            STATE_COOKIE,
            state,
            max_age=LOGIN_TTL_S,
            path=COOKIE_PATH,
            httponly=True,
            secure=settings.auth_cookie_secure,
            samesite="lax",  # the provider's redirect back is a cross-site navigation
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @router.get("/callback", status_code=303, response_class=RedirectResponse)
    async def callback(
        request: Request,
        code: Annotated[str, Query(max_length=2048)] = "",
        state: Annotated[str, Query(max_length=256)] = "",
        error: Annotated[str, Query(max_length=256)] = "",
    ) -> Response:
        """The provider sends the browser back here: signed in, on to the app (tokens in
        HttpOnly cookies), or a JSON error saying why not."""
        enabled()
        try:
            if error:
                raise OidcRefused("oidc_denied", "the sign-in was cancelled or refused at the provider")
            tokens = await flow.finish(code=code, state=state, cookie_state=request.cookies.get(STATE_COOKIE, ""))
        except OidcRefused as exc:
            log.info("OIDC sign-in refused: %s", exc.error_code)
            response: Response = JSONResponse(exc.to_json(), status_code=exc.http_status)
        else:
            response = RedirectResponse(AFTER_SIGN_IN, status_code=303)
            set_token_cookies(response, settings, tokens)
        response.delete_cookie(STATE_COOKIE, path=COOKIE_PATH)  # used once, whatever the outcome
        response.headers["Cache-Control"] = "no-store"
        return response

    return router
