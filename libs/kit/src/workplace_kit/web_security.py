"""What keeps a browser's session ours: the security headers of every response and CSRF
protection of every state-changing request. Every service's app gets both (service.py); the
gateway adds the same headers (scripts/generate.py writes SECURITY_HEADERS into its config).

CSRF: the pages' tokens travel in SameSite=Strict cookies, which a browser does not send with
a request another site starts. On top of that (double protection while older browsers are
about), a state-changing request that carries one of our auth cookies must also carry the
header X-CSRF-Token with the value of the `wp_csrf` cookie: a script of another site can read
neither. A request authenticated by `Authorization: Bearer` is not at risk (a browser never
adds that header by itself) and is not checked. A state-changing request a browser marks as
coming from another origin (Origin header) is refused even without cookies: it could sign the
browser in to an account of the attacker's (login CSRF).

    from workplace_kit.web_security import ensure_csrf_cookie
    ensure_csrf_cookie(request, response, settings)   # when a page is rendered
"""

from __future__ import annotations

import secrets
import urllib.parse
from collections.abc import Iterable

from starlette.requests import Request, cookie_parser
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .config import ServiceSettings

# Every response's security headers; the gateway and the services send these same values.
# CSP: scripts, styles and everything else from our origin only, never inline (no
# 'unsafe-inline'), so injected markup cannot run; media and microphone recordings may be blobs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Powerful browser features off, except the microphone for our own pages (spoken practice).
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(self), midi=(), payment=(), screen-wake-lock=(), serial=(), usb=(), xr-spatial-tracking=()"
)
SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    # Two years, subdomains too: browsers then never speak plain HTTP to us (ignored over HTTP).
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),
    ("Permissions-Policy", PERMISSIONS_POLICY),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
)

CSRF_COOKIE_NAME = "wp_csrf"
CSRF_HEADER_NAME = "X-CSRF-Token"
# Long enough to outlive the refresh token's cookie: a page restored from the browser's cache
# still finds one.
CSRF_COOKIE_MAX_AGE_S = 400 * 24 * 3600
# Methods that change nothing (RFC 9110 safe methods); every other one is checked.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def set_csrf_cookie(response: Response, settings: ServiceSettings, token: str | None = None) -> str:
    """Give the browser a CSRF token: readable by the page's scripts (not HttpOnly), which send
    it back in the X-CSRF-Token header; SameSite=Strict and Secure like the auth cookies."""
    token = token or new_csrf_token()
    response.set_cookie(
        CSRF_COOKIE_NAME,
        token,
        max_age=CSRF_COOKIE_MAX_AGE_S,
        path="/",
        secure=settings.auth_cookie_secure,
        httponly=False,
        samesite="strict",
    )
    return token


def ensure_csrf_cookie(request: Request, response: Response, settings: ServiceSettings) -> None:
    """Set the CSRF cookie unless the browser already has one (its other tabs keep working)."""
    if not request.cookies.get(CSRF_COOKIE_NAME):
        set_csrf_cookie(response, settings)


def clear_csrf_cookie(response: Response, settings: ServiceSettings) -> None:
    response.delete_cookie(CSRF_COOKIE_NAME, path="/", secure=settings.auth_cookie_secure, samesite="strict")


def same_origin(origin: str, host: str) -> bool:
    """Whether a browser's Origin header names the host the request was sent to (its Host
    header). Schemes are not compared: behind the gateway's TLS the service sees plain HTTP."""
    try:
        theirs = urllib.parse.urlsplit(origin)
        default_port = _DEFAULT_PORTS.get(theirs.scheme)
        if default_port is None or not theirs.hostname:
            return False  # "null" (sandboxed frames, file:), or not an origin at all
        ours = urllib.parse.urlsplit("//" + host)
        return bool(ours.hostname) and (theirs.hostname, theirs.port or default_port) == (
            ours.hostname,
            ours.port or default_port,
        )
    except ValueError:  # a port that is not a number, a malformed IPv6 address
        return False


def _has_bearer(authorization: str) -> bool:
    scheme, _, credentials = authorization.strip().partition(" ")
    return scheme.lower() == "bearer" and bool(credentials.strip())


class CsrfProtection:
    """Refuses (403, our JSON error format) a state-changing request that a browser could have
    been made to send: one from another origin, or one carrying our auth cookies without the
    matching X-CSRF-Token header. Pure ASGI and headers only: nothing is read or wrapped, so a
    streamed reply costs nothing more."""

    def __init__(self, app: ASGIApp, cookie_names: Iterable[str]):
        self.app = app
        self.cookie_names = tuple(cookie_names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        refusal = self.refusal(scope)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        body = {"error": "csrf", "message": refusal}
        await JSONResponse(body, status_code=403)(scope, receive, send)

    def refusal(self, scope: Scope) -> str | None:
        """Why the request is refused, or None when it may go on."""
        headers: dict[str, str] = {}
        cookie_header: list[str] = []
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            if key == "cookie":
                cookie_header.append(value.decode("latin-1"))
            else:
                headers.setdefault(key, value.decode("latin-1"))
        if _has_bearer(headers.get("authorization", "")):
            return None  # an API client's own token: a browser never sends one by itself
        origin = headers.get("origin")
        if origin is not None and not same_origin(origin, headers.get("host", "")):
            return "a state-changing request from another origin is not accepted"
        cookies = cookie_parser("; ".join(cookie_header)) if cookie_header else {}
        if not any(cookies.get(name) for name in self.cookie_names):
            return None  # nothing of ours for a forged request to use
        expected = cookies.get(CSRF_COOKIE_NAME, "")
        sent = headers.get(CSRF_HEADER_NAME.lower(), "")
        if not expected or not sent:
            return f"the {CSRF_HEADER_NAME} header must carry the {CSRF_COOKIE_NAME} cookie's value"
        if not secrets.compare_digest(sent.encode(), expected.encode()):
            return f"the {CSRF_HEADER_NAME} header does not match the {CSRF_COOKIE_NAME} cookie"
        return None


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response a service sends that does not set them
    itself, so pages and APIs reached without the gateway are protected the same way."""

    def __init__(self, app: ASGIApp, headers: Iterable[tuple[str, str]] = SECURITY_HEADERS):
        self.app = app
        self.headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", ())}
                extra = [(name, value) for name, value in self.headers if name not in present]
                if extra:
                    message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
