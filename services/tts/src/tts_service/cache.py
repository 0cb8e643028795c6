"""The audio cache: audio by its key (audio.cache_key), in Redis up to a size, bigger audio in a
directory with Redis holding where it is. Entries expire after the TTL: Redis drops the entry,
`sweep()` the files of the directory.

For the pages the cache is an optimisation: when Redis cannot answer, audio is synthesised
again (get answers None, put logs). For tts.requests it is the result: there `put(...,
strict=True)` raises, and the event is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# Redis keys: tts:audio:<namespace>:<key>. A new namespace (tts_cache_namespace) starts an
# empty cache without touching the old one (the old keys expire on their own).
PREFIX = "tts:audio:"
_EXTENSIONS = {"audio/mpeg": ".mp3", "audio/wav": ".wav"}


@dataclass(frozen=True)
class CachedAudio:
    key: str
    data: bytes
    mime_type: str
    sample_rate: int
    duration_ms: int
    voice: str
    engine: str


class AudioCache:
    def __init__(
        self, redis: aioredis.Redis, directory: Path, *, ttl_s: int, max_redis_bytes: int, namespace: str = "v1"
    ) -> None:
        self.redis = redis
        self.prefix = f"{PREFIX}{namespace}:"
        self.directory = Path(directory)
        self.ttl_s = ttl_s
        self.max_redis_bytes = max_redis_bytes

    def _path(self, key: str, mime_type: str) -> Path:
        return self.directory / key[:2] / (key + _EXTENSIONS.get(mime_type, ".bin"))

    async def get(self, key: str) -> CachedAudio | None:
        try:
            fields = cast(dict[bytes, bytes], await self.redis.hgetall(self.prefix + key))
        except RedisError:
            log.warning("audio cache unavailable; synthesising", exc_info=True)
            return None
        if not fields or b"mime" not in fields:
            return None
        mime_type = fields[b"mime"].decode()
        if b"data" in fields:
            data = fields[b"data"]
        else:
            path = self._path(key, mime_type)
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError:
                # Swept, or written by a replica whose directory this one does not see.
                return None
        return CachedAudio(
            key=key,
            data=data,
            mime_type=mime_type,
            sample_rate=int(fields.get(b"sr", b"0")),
            duration_ms=int(fields.get(b"ms", b"0")),
            voice=fields.get(b"voice", b"").decode(),
            engine=fields.get(b"engine", b"").decode(),
        )

    async def where(self, key: str) -> str | None:
        """ "redis" or "disk" for a stored key (for tests and the bench), None when absent."""
        fields = cast(dict[bytes, bytes], await self.redis.hgetall(self.prefix + key))
        if not fields:
            return None
        return "redis" if b"data" in fields else "disk"

    async def put(self, audio: CachedAudio, *, strict: bool = False) -> str | None:
        """Store; returns "redis" or "disk" (None when it could not, unless strict)."""
        fields: dict[str, bytes | str | int] = {
            "mime": audio.mime_type,
            "sr": audio.sample_rate,
            "ms": audio.duration_ms,
            "voice": audio.voice,
            "engine": audio.engine,
        }
        where = "redis"
        try:
            if len(audio.data) > self.max_redis_bytes:
                await asyncio.to_thread(self._write_file, self._path(audio.key, audio.mime_type), audio.data)
                fields["path"] = "1"
                where = "disk"
            else:
                fields["data"] = audio.data
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.prefix + audio.key)
                pipe.hset(self.prefix + audio.key, mapping=fields)  # type: ignore[arg-type]
                pipe.expire(self.prefix + audio.key, self.ttl_s)
                await pipe.execute()
        except (RedisError, OSError):
            if strict:
                raise
            log.warning("audio not cached", exc_info=True)
            return None
        return where

    @staticmethod
    def _write_file(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # readers see the whole file or none

    def _sweep_sync(self) -> int:
        if not self.directory.is_dir():
            return 0
        # A file outlives its Redis entry by an hour, so no entry ever points at a swept file.
        cutoff = time.time() - self.ttl_s - 3600
        removed = 0
        for path in self.directory.glob("*/*"):
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed

    async def sweep(self) -> int:
        """Delete the files whose entries have expired; returns how many."""
        return await asyncio.to_thread(self._sweep_sync)

    async def run_sweeper(self, interval_s: float = 3600.0) -> None:
        """A worker: sweep now and then."""
        while True:
            try:
                removed = await self.sweep()
                if removed:
                    log.info("expired audio files removed", extra={"files": removed})
            except OSError:
                log.warning("audio cache sweep failed", exc_info=True)
            await asyncio.sleep(interval_s)
