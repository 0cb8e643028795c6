"""A small OpenID Connect provider standing in for Google in tests, run by uvicorn on a free port
in a background thread.

It publishes a discovery document and a JWKS, and implements the authorization-code flow with
PKCE: /authorize sends the browser straight back with a code (the "user" is whoever the test put
in `account`), /token checks the client, the redirect URI and the PKCE verifier, and answers with
an ID token signed RS256 as Google's are. A test can change the next ID token's claims
(`claims_override`) or have it signed with a key the provider never published (`rogue_signature`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl, urlencode

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

KID = "standin-1"


@dataclass
class Account:
    """The provider's user the next sign-in is for."""

    subject: str
    email: str
    name: str = "Test Learner"
    email_verified: bool = True
    hosted_domain: str | None = None  # Google's `hd` (a Workspace account)


@dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    nonce: str
    code_challenge: str
    account: Account


@dataclass
class OidcProviderStandIn:
    client_id: str = "workplace-test-client"
    client_secret: str = "test-secret"
    host: str = "127.0.0.1"
    port: int = 0
    account: Account = field(default_factory=lambda: Account("sub-0", "learner@example.com"))
    claims_override: dict[str, Any] = field(default_factory=dict)
    rogue_signature: bool = False
    # What /token received last (tests check the PKCE and client parameters arrived).
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._rogue_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._grants: dict[str, _Grant] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self._discovery),
                Route("/jwks", self._jwks),
                Route("/authorize", self._authorize),
                Route("/token", self._token, methods=["POST"]),
            ]
        )

    @property
    def issuer(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self, account: Account) -> None:
        self.account, self.claims_override, self.rogue_signature = account, {}, False

    # -- endpoints

    async def _discovery(self, _: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def _jwks(self, _: Request) -> Response:
        jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": KID, "use": "sig", "alg": "RS256"})
        return JSONResponse({"keys": [jwk]})

    async def _authorize(self, request: Request) -> Response:
        q = request.query_params
        if (
            q.get("response_type") != "code"
            or q.get("client_id") != self.client_id
            or q.get("code_challenge_method") != "S256"
            or not q.get("code_challenge")
            or not q.get("nonce")
            or "openid" not in q.get("scope", "").split()
        ):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        code = secrets.token_urlsafe(16)
        self._grants[code] = _Grant(q["client_id"], q["redirect_uri"], q["nonce"], q["code_challenge"], self.account)
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q.get('state', '')})}", 302)

    async def _token(self, request: Request) -> Response:
        # application/x-www-form-urlencoded, read without python-multipart
        form = dict(parse_qsl((await request.body()).decode()))
        self.token_requests.append(form)
        grant = self._grants.pop(form.get("code", ""), None)  # a code is used once
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if grant is None or form.get("grant_type") != "authorization_code":
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        verifier = form.get("code_verifier", "").encode()
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).decode().rstrip("=")
        if form.get("redirect_uri") != grant.redirect_uri or challenge != grant.code_challenge:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        now = int(time.time())
        account = grant.account
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": grant.client_id,
            "azp": grant.client_id,
            "sub": account.subject,
            "iat": now,
            "exp": now + 3600,
            "nonce": grant.nonce,
            "email": account.email,
            "email_verified": account.email_verified,
            "name": account.name,
            "locale": "ja",
        }
        if account.hosted_domain:
            claims["hd"] = account.hosted_domain
        claims.update(self.claims_override)
        key = self._rogue_key if self.rogue_signature else self._key
        id_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})
        return JSONResponse({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "id_token": id_token})

    # -- lifecycle

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, log_level="warning", lifespan="off", timeout_graceful_shutdown=1)
        )
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="oidc-standin", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"OIDC stand-in did not start on {self.issuer}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
