"""Wire the tts service: resources (schema "tts": the budget, inbox and outbox), the engines and
their warm-up, the audio cache, the domain, HTTP and gRPC, the tts.requests consumer, the outbox
relay and the cache's sweeper.

Offline (no Gemini key, or WP_TTS_PROVIDER=offline): Open JTalk, Kokoro and Piper speak, voice
input answers "not available" and the budget is never consulted. With Gemini: every character
speaks with its own Gemini voice within the day's budget, the offline engines stand by (loaded
too) for when Gemini cannot speak, and Gemini also transcribes voice input.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from workplace.events.v1 import events_pb2
from workplace_content import content
from workplace_kit.auth import TokenVerifier, principal_dependency
from workplace_kit.outbox import OutboxRelay
from workplace_kit.ratelimit import Limiter
from workplace_kit.resources import open_resources
from workplace_kit.service import ServiceParts, create_http_app
from workplace_kit.warmup import WarmUp
from workplace_kit.workers import pubsub_consumer

from .budget import DailyBudget
from .cache import AudioCache
from .domain import TtsService
from .engines.base import SpeechEngine
from .engines.gemini_speech import GeminiSpeech
from .engines.kokoro import KokoroEngine
from .engines.openjtalk import OpenJTalkEngine
from .engines.piper import PiperEngine
from .grpc_api import grpc_service
from .http_api import build_router
from .repository import RequestLedger
from .settings import TtsSettings
from .transcription import UnavailableTranscriber, build_transcriber
from .voices import GEMINI_ENGINE, load_voice_book

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
# The subscription it reads (declared in workplace_kit.topology).
REQUESTS_SUBSCRIPTION = "tts.requests"


def writable_dir(path: Path, name: str) -> Path:
    """`path`, created; a directory under the system's temporary one when `path` cannot be
    written (a container's read-only root filesystem, where only /tmp is writable)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return path
    except OSError as exc:
        fallback = Path(tempfile.gettempdir()) / "workplace-tts" / name
        fallback.mkdir(parents=True, exist_ok=True)
        log.warning("%s is not writable (%s); using %s", path, type(exc).__name__, fallback)
        return fallback


def offline_engines(settings: TtsSettings) -> dict[str, Any]:
    models = writable_dir(settings.tts_model_dir, "models")
    engines: list[Any] = [OpenJTalkEngine(), KokoroEngine(models), PiperEngine()]
    return {engine.name: engine for engine in engines}


async def build(stack: AsyncExitStack, settings: TtsSettings) -> ServiceParts:
    res = await open_resources(stack, settings, schema="tts", migrations_dir=MIGRATIONS, redis=True)
    assert res.pool is not None and res.redis is not None
    relay = OutboxRelay(res.pool, res.bus, service=settings.service_name)
    executor = ThreadPoolExecutor(max_workers=settings.tts_synthesis_threads, thread_name_prefix="tts-synth")
    stack.callback(executor.shutdown, wait=False, cancel_futures=True)
    background = ThreadPoolExecutor(max_workers=settings.tts_background_threads, thread_name_prefix="tts-background")
    stack.callback(background.shutdown, wait=False, cancel_futures=True)

    table = load_voice_book().table("google" if settings.uses_google else "offline", settings.tts_ja_engine)
    offline = offline_engines(settings)
    engines: dict[str, Any] = dict(offline)
    transcriber: Any = UnavailableTranscriber()
    if settings.uses_google or settings.gemini_enabled:
        from workplace_kit.ai.gemini import GeminiKeyPool

        pool = GeminiKeyPool(settings)  # one for speech and voice input: key cool-downs are shared
        stack.push_async_callback(pool.aclose)
        transcriber = build_transcriber(settings, pool=pool)
        if settings.uses_google:
            budget = DailyBudget(res.pool, settings.tts_daily_budget_chars)
            engines[GEMINI_ENGINE] = GeminiSpeech(settings, budget, pool=pool)
    typed_engines: dict[str, SpeechEngine] = engines

    cache = AudioCache(
        res.redis,
        writable_dir(settings.tts_cache_dir, "cache"),
        ttl_s=settings.tts_cache_ttl_s,
        max_redis_bytes=settings.tts_cache_redis_max_bytes,
        namespace=settings.tts_cache_namespace,
    )
    service = TtsService(
        settings,
        content(),
        table,
        typed_engines,
        cache,
        executor,
        background_executor=background,
        limiter=Limiter.from_settings(settings),
        transcriber=transcriber,
        ledger=RequestLedger(res.pool, topology=res.bus.topology),
        events_written=relay.kick,
        consumer=REQUESTS_SUBSCRIPTION,
    )

    # Not ready until every offline engine this configuration speaks with is loaded and has
    # spoken once: the first learner's sentence then waits for nothing but itself.
    def warm(engine: Any) -> Any:
        async def load() -> None:
            await asyncio.get_running_loop().run_in_executor(executor, engine.warm_up)

        return load

    # The offline engines load even with Gemini: they speak when Gemini cannot.
    warm_up = WarmUp({name: warm(engine) for name, engine in offline.items()})
    app = create_http_app(
        settings,
        title="Workplace Roleplay TTS API",
        description="Speech for the AI characters (each its own voice), its audio cache, and voice input.",
        readiness=[res.check_database, warm_up.check],
    )
    verifier = TokenVerifier.from_settings(settings)
    app.include_router(build_router(service, principal_dependency(verifier, settings.auth_cookie_name)))
    app.state.service = service  # for in-process tests
    consumer = warm_up.after_warm_up(
        pubsub_consumer(
            res.bus,
            REQUESTS_SUBSCRIPTION,
            events_pb2.TtsRequest,
            service.handle_request,
            max_messages=settings.tts_background_max_messages,
            healthy=res.check_database,  # while the database is down, no event spends an attempt
        )
    )
    return ServiceParts(
        http_app=app,
        grpc_services=[grpc_service(service, verifier)],
        workers=[consumer, cache.run_sweeper],
        outbox_relay=relay.run,
        warm_up=warm_up,
    )
