"""Shared by the integration tests: one real auth service for the session, whose tokens the
other services under test verify (their auth_jwks_url points at it)."""

from __future__ import annotations

import pytest
from auth_service.app import build as build_auth
from auth_service.settings import AuthSettings
from support.identity import Identities
from support.services import running_service


@pytest.fixture(scope="session", autouse=True)
def pubsub_suffix(run_id: str):
    """Every in-process service of this run names its topics with the run's suffix unless a
    test says otherwise. Instances of one service share its outbox table: a relay with another
    suffix would publish the others' events where their consumers never look."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WP_PUBSUB_NAME_SUFFIX", f".t{run_id}")
        yield f".t{run_id}"


@pytest.fixture(scope="session")
async def auth(pubsub_suffix):
    async with running_service(build_auth, AuthSettings(auth_cookie_secure=False)) as svc:
        yield svc


@pytest.fixture(scope="session")
def identities(auth) -> Identities:
    return Identities(auth.http_url)
