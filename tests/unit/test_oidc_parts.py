"""Pieces of the OIDC sign-in that need no provider (the flow itself: tests/integration/test_oidc.py)."""

from __future__ import annotations

import pytest
from auth_service.oidc import pkce_challenge
from auth_service.settings import AuthSettings
from workplace_kit.config import ConfigError, load_settings


def test_pkce_challenge_is_rfc_7636_s256() -> None:
    # RFC 7636, appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not load_settings(AuthSettings).oidc_enabled
    monkeypatch.setenv("WP_AUTH_OIDC_CLIENT_ID", "1234-abc.apps.googleusercontent.com")
    with pytest.raises(ConfigError, match="WP_AUTH_OIDC_REDIRECT_URL"):
        load_settings(AuthSettings)
    monkeypatch.setenv("WP_AUTH_OIDC_REDIRECT_URL", "https://roleplay.example.co.jp/api/v2/auth/oidc/callback")
    monkeypatch.setenv("WP_AUTH_OIDC_ALLOWED_DOMAINS", " Example.co.jp, example.com ,")
    monkeypatch.setenv("WP_AUTH_OIDC_CLIENT_SECRET", "s3cret")
    settings = load_settings(AuthSettings)
    assert settings.oidc_enabled and settings.auth_oidc_issuer == "https://accounts.google.com"
    assert settings.auth_oidc_allowed_domains == ["example.co.jp", "example.com"]
    assert "s3cret" not in repr(settings)
