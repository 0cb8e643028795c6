from __future__ import annotations

from pydantic import Field
from workplace_kit.config import ServiceSettings


class AuthSettings(ServiceSettings):
    service_name: str = "auth"
    # Access tokens are short-lived: a stolen one is useful for minutes, and every service
    # checks them offline against the published keys.
    access_token_ttl_s: int = Field(900, ge=60, le=3600)
    refresh_token_ttl_s: int = Field(30 * 24 * 3600, ge=3600, le=365 * 24 * 3600)
    # Browsers get their tokens as HttpOnly cookies (ask with `X-Token-Delivery: cookie`): the
    # page's scripts never see them. Secure unless explicitly turned off for plain-HTTP local use.
    auth_cookie_secure: bool = True
    auth_refresh_cookie_name: str = "wp_refresh"
