"""Access tokens an attacker would try, built from one good token (and, for the ones that need
the service's real signing key, that key): shared by the service-level and gateway tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def attack_tokens(good: str, real_private_key: Any, real_kid: str) -> dict[str, str]:
    header, _, signature = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    kid = jwt.get_unverified_header(good)["kid"]
    other_key = ec.generate_private_key(ec.SECP256R1())
    return {
        "tampered": f"{header}.{_b64(claims | {'sub': str(uuid.uuid4())})}.{signature}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}.",
        "HS256 with the public key as secret": _hs256_confusion(claims, kid),
        "forged with another key": jwt.encode(claims, other_key, algorithm="ES256", headers={"kid": kid}),
        "unknown key": jwt.encode(claims, other_key, algorithm="ES256", headers={"kid": "made-up"}),
        # Signed with the service's real key, but no longer (or not) meant to be accepted:
        "expired": jwt.encode(claims | {"exp": claims["iat"] - 120}, real_private_key, "ES256", {"kid": real_kid}),
        "wrong audience": jwt.encode(claims | {"aud": "other-app"}, real_private_key, "ES256", {"kid": real_kid}),
        "wrong issuer": jwt.encode(claims | {"iss": "someone"}, real_private_key, "ES256", {"kid": real_kid}),
        "garbage": "not.a.token",
    }


def _hs256_confusion(claims: dict[str, Any], kid: str) -> str:
    """The classic algorithm confusion: HMAC-signed with a guessable secret, claiming the real kid."""
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": kid})
    body = _b64(claims)
    mac = hmac.new(kid.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{base64.urlsafe_b64encode(mac).decode().rstrip('=')}"
