"""Shared by the integration tests: one real auth service for the session, whose tokens the
other services under test verify (their auth_jwks_url points at it)."""

from __future__ import annotations

import pytest
from auth_service.app import build as build_auth
from auth_service.settings import AuthSettings
from support.identity import Identities
from support.services import running_service


@pytest.fixture(scope="session")
async def auth():
    async with running_service(build_auth, AuthSettings(auth_cookie_secure=False)) as svc:
        yield svc


@pytest.fixture(scope="session")
def identities(auth) -> Identities:
    return Identities(auth.http_url)
