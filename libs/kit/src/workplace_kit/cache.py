"""Redis: one async client per process, and the AI-response cache.

Only deterministic requests (temperature 0) are cached: the key is a hash of everything that
shapes the answer (engine, model, system instruction, history, message, options), so two
identical requests get the same reply without a second AI call.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .ai.types import DialogueRequest, EngineInfo

log = logging.getLogger(__name__)


def tls_options(url: str, ca_file: str = "") -> dict[str, str]:
    """redis-py's TLS arguments for a rediss:// URL: the server's certificate must verify, against
    ca_file when given (the AUTH string travels in the URL, so never to an unverified server)."""
    if not url.startswith("rediss://"):
        return {}
    return {"ssl_cert_reqs": "required", **({"ssl_ca_certs": ca_file} if ca_file else {})}


def create_redis(url: str, ca_file: str = "") -> aioredis.Redis:
    return aioredis.from_url(url, decode_responses=False, health_check_interval=30, **tls_options(url, ca_file))


@dataclass(frozen=True)
class CachedReply:
    text: str
    engine: EngineInfo
    finish_reason: str


class AIResponseCache:
    """A cache is an optimisation: when Redis fails, replies come from the engine instead."""

    def __init__(self, redis: aioredis.Redis, *, ttl_s: int = 24 * 3600, prefix: str = "ai:reply:v1:"):
        self.redis = redis
        self.ttl_s = ttl_s
        self.prefix = prefix

    @staticmethod
    def cacheable(request: DialogueRequest) -> bool:
        return request.temperature == 0

    def key(self, engine: EngineInfo, request: DialogueRequest) -> str:
        material = {
            "engine": engine.id,
            "model": engine.model,
            "system": request.system_instruction,
            "history": [[t.role, t.text] for t in request.history],
            "message": request.message,
            "partner": request.partner,
            "situation": request.situation,
            "language": request.language,
            "max_output_tokens": request.max_output_tokens,
            "time_of_day": request.time_of_day,
        }
        digest = hashlib.sha256(json.dumps(material, ensure_ascii=False, sort_keys=True).encode()).hexdigest()
        return self.prefix + digest

    async def get(self, engine: EngineInfo, request: DialogueRequest) -> CachedReply | None:
        if not self.cacheable(request):
            return None
        try:
            raw = await self.redis.get(self.key(engine, request))
        except RedisError:
            log.warning("AI-response cache unavailable; asking the engine", exc_info=True)
            return None
        if raw is None:
            return None
        data = json.loads(raw)
        return CachedReply(
            text=data["text"],
            engine=EngineInfo(**data["engine"]),
            finish_reason=data.get("finish_reason", "STOP"),
        )

    async def put(self, engine: EngineInfo, request: DialogueRequest, text: str, finish_reason: str) -> None:
        if not self.cacheable(request):
            return
        payload = {
            "text": text,
            "engine": {"id": engine.id, "label": engine.label, "model": engine.model},
            "finish_reason": finish_reason,
        }
        try:
            await self.redis.set(self.key(engine, request), json.dumps(payload, ensure_ascii=False), ex=self.ttl_s)
        except RedisError:
            log.warning("AI-response cache unavailable; reply not cached", exc_info=True)
