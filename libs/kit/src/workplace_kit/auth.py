"""Access tokens: every service verifies them itself (defence in depth), offline, through this module.

The auth service issues short-lived JWTs signed with ES256 (ECDSA P-256), with the key id in the
header (`kid`), and publishes its public keys as a JWKS (old and new ones side by side while a
key rotates). A `TokenVerifier` accepts ES256 and nothing else (checked before any key is
looked at), keeps the published keys by kid, and fetches the JWKS again when a token names a kid
it does not know, at most once per `refetch_min_interval_s`, so a flood of made-up kids cannot
hammer the auth service. The keys are fetched again as well once they are `max_key_age_s` old,
so a key the auth service withdrew stops being trusted.

    verifier = TokenVerifier.from_settings(settings)
    current_principal = principal_dependency(verifier, settings.auth_cookie_name)

    @app.get("/api/v2/things")
    async def things(principal: Annotated[Principal, Depends(current_principal)]) -> ...

A refused token is a 401 (`Unauthenticated`, gRPC UNAUTHENTICATED); keys that cannot be fetched
when one is needed are a 503 (`Unavailable`): the token may be fine, only checking it is not
possible now.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import grpc
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import Request
from jwt.algorithms import ECAlgorithm
from prometheus_client import Counter

from .config import ServiceSettings
from .errors import DomainError, Unavailable

log = logging.getLogger(__name__)

# The one signing algorithm of the platform's access tokens.
ALGORITHM = "ES256"
# The gateway puts a verified token's subject here (after removing any a client sent); for
# logs and per-account limits. Services still verify the token itself.
SUBJECT_HEADER = "x-verified-user-id"
JWKS_FETCH_TIMEOUT_S = 5.0
# Far above any token or JWKS the auth service issues; bounds the work a forged one can cause.
MAX_TOKEN_CHARS = 8192
MAX_KID_CHARS = 256
MAX_JWKS_BYTES = 256 * 1024
# Claims every access token carries (the contract with the auth service).
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "jti", "guest")

Reason = Literal[
    "missing",
    "malformed",
    "alg_not_allowed",
    "unknown_key",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
    "missing_claim",
]
REASONS: frozenset[str] = frozenset(get_args(Reason))

# Fetches the JWKS document ({"keys": [...]}); injectable (tests, another HTTP client).
JwksFetcher = Callable[[], Awaitable[Mapping[str, Any]]]

TOKENS_REFUSED = Counter(
    "workplace_auth_tokens_refused_total", "Access tokens refused, by reason (expired, bad_signature, ...)", ["reason"]
)
JWKS_FETCHES = Counter(
    "workplace_auth_jwks_fetches_total", "Fetches of the auth service's public keys, by outcome", ["outcome"]
)


@dataclass(frozen=True)
class Principal:
    """Who a verified access token speaks for."""

    user_id: str
    guest: bool
    scopes: frozenset[str]
    expires_at: datetime  # aware, UTC
    token_id: str


class InvalidToken(Exception):
    """An access token is refused; `reason` says why (one of REASONS), `detail` is for logs only."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: Reason = reason
        self.detail = detail


_MESSAGES: dict[str, str] = {
    "missing": "authentication required",
    "expired": "the access token has expired",
}


class Unauthenticated(DomainError):
    """No valid access token: HTTP 401, gRPC UNAUTHENTICATED.

    The message tells a client whether to sign in (no token) or to refresh (expired), and says
    nothing more about why a token was refused.
    """

    http_status = 401
    grpc_code_name = "UNAUTHENTICATED"
    error_code = "unauthenticated"

    def __init__(self, message: str | None = None, *, reason: Reason = "missing") -> None:
        super().__init__(message or _MESSAGES.get(reason, "the access token is not valid"))
        self.reason: Reason = reason

    def http_headers(self) -> dict[str, str]:
        """RFC 6750: a request without a token gets the bare challenge, a refused token the error."""
        if self.reason == "missing":
            return {"WWW-Authenticate": "Bearer"}
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}


def bearer_token(authorization_header: str | None, cookie: str | None) -> str:
    """The access token of a request: `Authorization: Bearer <token>` wins, else the cookie's value.

    Raises InvalidToken("missing") when there is neither, ("malformed") for an empty bearer.
    An Authorization header of another scheme (Basic) is not ours: the cookie still counts.
    """
    if authorization_header:
        scheme, _, credentials = authorization_header.strip().partition(" ")
        if scheme.lower() == "bearer":
            token = credentials.strip()
            if not token or any(c.isspace() for c in token):
                raise InvalidToken("malformed", "the bearer credentials are empty or contain spaces")
            return token
    if cookie and cookie.strip():
        return cookie.strip()
    raise InvalidToken("missing")


def _http_fetcher(url: str, timeout_s: float) -> JwksFetcher:
    """GET the JWKS with the standard library, in a thread: the event loop never waits on it."""
    # No proxy: the auth service is an internal address, never one to send through HTTP_PROXY.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def get() -> object:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with opener.open(request, timeout=timeout_s) as response:  # an error status raises HTTPError
            body = response.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError(f"the JWKS is larger than {MAX_JWKS_BYTES} bytes")
        return json.loads(body)

    async def fetch() -> Mapping[str, Any]:
        # urllib's timeout bounds each socket operation; this bounds the whole fetch (DNS included).
        data = await asyncio.wait_for(asyncio.to_thread(get), timeout=timeout_s)
        if not isinstance(data, dict):
            raise ValueError("the JWKS is not a JSON object")
        return data

    return fetch


def _parse_jwks(jwks: object) -> dict[str, ec.EllipticCurvePublicKey]:
    """The usable ES256 public keys of a JWKS by kid; entries of another kind are skipped."""
    if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
        raise ValueError("not a JWKS: no list of keys")
    keys: dict[str, ec.EllipticCurvePublicKey] = {}
    for entry in jwks["keys"]:
        if not isinstance(entry, Mapping):
            continue
        kid = entry.get("kid")
        if (
            entry.get("kty") != "EC"
            or entry.get("crv") != "P-256"
            or entry.get("alg", ALGORITHM) != ALGORITHM
            or entry.get("use", "sig") != "sig"
            or not isinstance(kid, str)
            or not kid
        ):
            log.debug("JWKS entry skipped (not an ES256 signing key)", extra={"kid": str(kid)[:MAX_KID_CHARS]})
            continue
        try:
            # The public coordinates only, whatever else an entry carries.
            key = ECAlgorithm.from_jwk({"kty": "EC", "crv": "P-256", "x": entry.get("x"), "y": entry.get("y")})
        except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
            log.warning("JWKS entry skipped: %s", exc, extra={"kid": kid[:MAX_KID_CHARS]})
            continue
        if isinstance(key, ec.EllipticCurvePublicKey):
            keys[kid] = key
    return keys


def _number(claims: Mapping[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken("malformed", f"{name} is not a number")
    return float(value)


class TokenVerifier:
    """Verifies access tokens against the auth service's published keys (see the module doc)."""

    def __init__(
        self,
        jwks_url: str,
        issuer: str,
        audience: str,
        *,
        leeway_s: float = 30,
        fetch_jwks: JwksFetcher | None = None,
        clock: Callable[[], float] = time.time,
        refetch_min_interval_s: float = 30,
        max_key_age_s: float = 300,
    ) -> None:
        if fetch_jwks is None:
            if urllib.parse.urlsplit(jwks_url).scheme not in ("http", "https"):
                raise ValueError(f"the JWKS URL must be http(s): {jwks_url!r}")
            fetch_jwks = _http_fetcher(jwks_url, JWKS_FETCH_TIMEOUT_S)
        self.jwks_url = jwks_url
        self._issuer = issuer
        self._audience = audience
        self._leeway_s = leeway_s
        self._fetch_jwks = fetch_jwks
        self._clock = clock
        self._refetch_min_interval_s = refetch_min_interval_s
        self._max_key_age_s = max_key_age_s
        self._keys: dict[str, ec.EllipticCurvePublicKey] = {}
        self._fetched_at: float | None = None  # the last fetch that succeeded
        self._attempted_at: float | None = None  # the last fetch, whatever its outcome
        self._last_fetch_failed = False
        self._fetch_lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: ServiceSettings, **options: Any) -> TokenVerifier:
        """A verifier for the platform's tokens: WP_AUTH_JWKS_URL, WP_AUTH_ISSUER, WP_AUTH_AUDIENCE."""
        return cls(settings.auth_jwks_url, settings.auth_issuer, settings.auth_audience, **options)

    async def verify(self, token: str) -> Principal:
        """The principal of a valid token; InvalidToken if refused, Unavailable if keys cannot be had."""
        try:
            return await self._verify(token)
        except InvalidToken as exc:
            TOKENS_REFUSED.labels(exc.reason).inc()
            raise

    async def _verify(self, token: str) -> Principal:
        kid = self._checked_header(token)
        key = await self._key_for(kid)
        claims = self._verified_claims(token, key)
        return self._principal(claims)

    def _checked_header(self, token: str) -> str:
        """The token's kid, once its header is well-formed and names ES256 (before any key)."""
        if not token:
            raise InvalidToken("missing")
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
            raise InvalidToken("malformed", "not a compact JWS")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed", str(exc)) from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise InvalidToken("alg_not_allowed", f"alg {str(alg)[:20]!r}")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise InvalidToken("malformed", "typ is not JWT")
        if "crit" in header or "b64" in header:
            raise InvalidToken("malformed", "extensions (crit, b64) are not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_CHARS:
            raise InvalidToken("unknown_key", "no usable kid in the header")
        return kid

    def _keys_fresh(self, now: float) -> bool:
        return self._fetched_at is not None and 0 <= now - self._fetched_at < self._max_key_age_s

    def _may_fetch(self, now: float) -> bool:
        # A clock that went back counts as "long ago": fetching is allowed.
        return self._attempted_at is None or not 0 <= now - self._attempted_at < self._refetch_min_interval_s

    async def _key_for(self, kid: str) -> ec.EllipticCurvePublicKey:
        key = self._keys.get(kid)
        if key is not None and (self._keys_fresh(self._clock()) or self._fetch_lock.locked()):
            return key  # a known key; if it is being refreshed right now, the current one serves
        async with self._fetch_lock:
            now = self._clock()
            key = self._keys.get(kid)  # another request may have fetched while this one waited
            if key is not None and self._keys_fresh(now):
                return key
            if not self._may_fetch(now):
                if key is not None:
                    return key  # old, but the last fetch was moments ago (and failed)
                if self._last_fetch_failed:
                    raise self._keys_unavailable()
                raise InvalidToken("unknown_key", f"kid {kid[:40]!r} is not published")
            self._attempted_at = now
            try:
                keys = _parse_jwks(await self._fetch_jwks())
            except Exception as exc:  # noqa: BLE001 - any failure to get the keys is an outage
                self._last_fetch_failed = True
                JWKS_FETCHES.labels("error").inc()
                log.warning("cannot fetch the auth service's keys from %s: %r", self.jwks_url, exc)
                if key is not None:
                    return key  # keep trusting what was published rather than refuse everyone
                raise self._keys_unavailable() from exc
            JWKS_FETCHES.labels("ok").inc()
            self._keys, self._fetched_at, self._last_fetch_failed = keys, now, False
            key = keys.get(kid)
            if key is None:
                raise InvalidToken("unknown_key", f"kid {kid[:40]!r} is not published")
            return key

    @staticmethod
    def _keys_unavailable() -> Unavailable:
        return Unavailable("sign-in cannot be checked right now; try again shortly")

    def _verified_claims(self, token: str, key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self._audience,
                issuer=self._issuer,
                # Times are checked below, against the verifier's clock.
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidSignatureError:
            raise InvalidToken("bad_signature") from None
        except jwt.InvalidAlgorithmError:
            raise InvalidToken("alg_not_allowed") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken("missing_claim", exc.claim) from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("wrong_issuer") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("wrong_audience") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed", str(exc)) from None
        now = self._clock()
        exp, iat = _number(claims, "exp"), _number(claims, "iat")
        if exp <= now - self._leeway_s:
            raise InvalidToken("expired")
        if iat > now + self._leeway_s:
            raise InvalidToken("not_yet_valid", "issued in the future")
        if claims.get("nbf") is not None and _number(claims, "nbf") > now + self._leeway_s:
            raise InvalidToken("not_yet_valid")
        return claims

    @staticmethod
    def _principal(claims: Mapping[str, Any]) -> Principal:
        user_id, token_id, guest = claims["sub"], claims["jti"], claims["guest"]
        if not isinstance(user_id, str) or not isinstance(token_id, str) or not isinstance(guest, bool):
            raise InvalidToken("malformed", "sub and jti must be strings, guest a boolean")
        if not user_id or not token_id:
            raise InvalidToken("missing_claim", "sub or jti is empty")
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise InvalidToken("malformed", "scope is not a string")
        try:
            expires_at = datetime.fromtimestamp(_number(claims, "exp"), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidToken("malformed", "exp is out of range") from None
        return Principal(user_id, guest, frozenset(scope.split()), expires_at, token_id)


def principal_dependency(verifier: TokenVerifier, cookie_name: str) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the request's Principal, or a 401 in the kit's JSON error format.

    The token comes from `Authorization: Bearer`, else from the cookie `cookie_name`
    (settings.auth_cookie_name). Keys that cannot be fetched answer 503 (Unavailable).
    """

    async def current_principal(request: Request) -> Principal:
        try:
            token = bearer_token(request.headers.get("authorization"), request.cookies.get(cookie_name))
            return await verifier.verify(token)
        except InvalidToken as exc:
            log.debug("access token refused: %s", exc.reason)
            raise Unauthenticated(reason=exc.reason) from None

    return current_principal


async def principal_from_metadata(verifier: TokenVerifier, context: grpc.aio.ServicerContext) -> Principal:
    """The Principal of a gRPC call, from its `authorization: Bearer <token>` metadata.

    Raises Unauthenticated (UNAUTHENTICATED through the kit's interceptor), or Unavailable when
    the keys cannot be fetched.
    """
    values = [value for key, value in (context.invocation_metadata() or ()) if key.lower() == "authorization"]
    try:
        if len(values) > 1:
            raise InvalidToken("malformed", "more than one authorization entry")
        value = values[0] if values else None
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        return await verifier.verify(bearer_token(value, None))
    except InvalidToken as exc:
        log.debug("access token refused: %s", exc.reason)
        raise Unauthenticated(reason=exc.reason) from None
