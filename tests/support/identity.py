"""Learners for tests and load: a guest account per name from a running auth service (real
tokens, verified by the services as in production). Tokens are refreshed, so a name stays the
same learner (the owner of its sessions) however long a run lasts."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx


@dataclass
class _Learner:
    user_id: str
    access_token: str
    refresh_token: str
    renew_at: float


class Identities:
    def __init__(self, auth_http_url: str):
        self.auth_http_url = auth_http_url
        self.jwks_url = f"{auth_http_url}/.well-known/jwks.json"
        self._learners: dict[str, _Learner] = {}
        self._locks: dict[str, asyncio.Lock] = {}  # per name: learners sign in side by side

    async def _call(self, path: str, body: dict[str, str]) -> dict:
        async with httpx.AsyncClient(timeout=30) as client:
            for _ in range(60):  # the auth service may be restarting under a fault
                try:
                    r = await client.post(f"{self.auth_http_url}{path}", json=body)
                except httpx.HTTPError:
                    await asyncio.sleep(1)
                    continue
                if r.status_code < 500:
                    r.raise_for_status()
                    return r.json()
                await asyncio.sleep(float(r.headers.get("retry-after", 1)))
        raise RuntimeError(f"the auth service did not answer {path}")

    async def _learner(self, name: str) -> _Learner:
        async with self._locks.setdefault(name, asyncio.Lock()):
            known = self._learners.get(name)
            if known is not None and time.monotonic() < known.renew_at:
                return known
            if known is None:
                body = await self._call("/api/v2/auth/guest", {"display_name": name[:40]})
            else:
                body = await self._call("/api/v2/auth/refresh", {"refresh_token": known.refresh_token})
            learner = _Learner(
                body["user"]["id"],
                body["access_token"],
                body["refresh_token"],
                time.monotonic() + body["expires_in"] - 120,
            )
            self._learners[name] = learner
            return learner

    async def token(self, name: str) -> str:
        return (await self._learner(name)).access_token

    async def user_id(self, name: str) -> str:
        return (await self._learner(name)).user_id

    async def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(name)}"}

    async def metadata(self, name: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {await self.token(name)}"),)
