from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode
from workplace_kit.config import ServiceSettings
from workplace_kit.ratelimit import RATE_PATTERN


class AuthSettings(ServiceSettings):
    service_name: str = "auth"
    # Access tokens are short-lived: a stolen one is useful for minutes, and every service
    # checks them offline against the published keys.
    access_token_ttl_s: int = Field(900, ge=60, le=3600)
    refresh_token_ttl_s: int = Field(30 * 24 * 3600, ge=3600, le=365 * 24 * 3600)
    # Abuse limits (workplace_kit.ratelimit): new guests, registrations and log-ins per address
    # (an office shares one address: room for a whole training group), password attempts per email.
    auth_sign_ins_rate: str = Field("120/hour", pattern=RATE_PATTERN)
    auth_password_attempts_rate: str = Field("10/minute", pattern=RATE_PATTERN)

    # The legacy Flask app's sessions (Flask-Session in Redis), moved to accounts on a visit
    # with its cookie or by `python -m auth_service migrate-legacy`. Empty URL: redis_url.
    legacy_redis_url: str = ""
    legacy_session_key_prefix: str = Field("session:", min_length=1, max_length=100)
    legacy_session_cookie_name: str = Field("session", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    legacy_session_cookie_domain: str = ""  # the legacy app's SESSION_COOKIE_DOMAIN, if it set one
    # The legacy app's SECRET_KEY if it signed its session cookies (SESSION_USE_SIGNER); empty:
    # its cookies carry the bare session id.
    legacy_secret_key: SecretStr = SecretStr("")
    # The zone of the legacy app's naive timestamps (datetime.now() on its servers).
    legacy_timezone: str = "UTC"
    legacy_session_max_bytes: int = Field(4 * 1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Browsers get their tokens as HttpOnly cookies (ask with `X-Token-Delivery: cookie`): the
    # page's scripts never see them. Their names and Secure flag: ServiceSettings (every
    # service's CSRF check knows them).

    # Sign-in with an OpenID Connect provider (Google by default), off unless a client id is set.
    auth_oidc_issuer: str = Field("https://accounts.google.com", pattern=r"^https?://[^\s]+$")
    auth_oidc_client_id: str = ""
    auth_oidc_client_secret: SecretStr = SecretStr("")
    # Where the provider sends the browser back: this service's /api/v2/auth/oidc/callback as
    # the browser reaches it (registered with the provider).
    auth_oidc_redirect_url: str = ""
    # Organisations only, comma separated (e.g. example.co.jp): the ID token's `hd` claim (the
    # Google Workspace domain) must be one of them. Empty: any verified account.
    auth_oidc_allowed_domains: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("auth_oidc_allowed_domains", mode="before")
    @classmethod
    def _split_domains(cls, value: object) -> object:
        if isinstance(value, str):
            return [d.strip().lower() for d in value.split(",") if d.strip()]
        return value

    @model_validator(mode="after")
    def _oidc_complete(self) -> AuthSettings:
        if self.auth_oidc_client_id and not self.auth_oidc_redirect_url.startswith(("https://", "http://")):
            raise ValueError("WP_AUTH_OIDC_REDIRECT_URL must be an http(s) URL when WP_AUTH_OIDC_CLIENT_ID is set")
        return self

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.auth_oidc_client_id)
