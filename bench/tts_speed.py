#!/usr/bin/env python3
"""Speed of the TTS service's engines on this machine, as the service runs them: a typical
2-3 sentence reply, synthesised sentence by sentence into one MP3 (the streamed path,
TtsService.open_stream), and the audio cache on the local Redis.

Per engine: load time (once per process), time to first audio (the first sentence
synthesised and encoded: when a page can start playing), total synthesis time, real-time factor
(synthesis seconds / audio seconds; below 1 is faster than speech), MP3 bytes per second of
audio. Then cache hits: a reply served from Redis, and big audio (WAV) served from the disk
directory. Gemini runs against the wire-format stand-in (tests/contract/gemini_standin.py),
which answers at once: its figures are the service's own overhead, not Google's latency.

Needs Redis (`scripts/localrt.py infra up`; reads .run/env):

    .venv/bin/python bench/tts_speed.py              # 5 replies per engine
    .venv/bin/python bench/tts_speed.py --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "contract"))

REPLIES = {
    "ja": [
        "承知しました。資料は明日の朝までにお送りします。ほかに確認しておきたいことはありますか？",
        "ありがとうございます。その件は私から部長に伝えておきます。結果がわかり次第、ご連絡しますね。",
        "お疲れさまです。会議の時間が十五時に変わりました。場所は三階の会議室です。",
        "なるほど、状況はよくわかりました。まずは原因を一緒に整理してみましょう。",
        "申し訳ありません、確認が遅くなりました。修正版を添付しましたので、ご確認ください。",
    ],
    "en": [
        "Understood. I'll send you the slides by tomorrow morning. Is there anything else you'd like me to check?",
        "Thanks for letting me know. I'll pass that on to the director. I'll get back to you once I hear more.",
        "Good afternoon. The meeting has moved to three o'clock. It's in the conference room on the third floor.",
        "I see, that makes sense. Let's start by going through the cause together.",
        "Sorry for the delay. I've attached the corrected version. Could you take a look when you have a moment?",
    ],
}
ENGINES = [
    ("openjtalk", "ja-mei-calm", "ja"),
    ("kokoro (jf_alpha)", "ja-kokoro-alpha", "ja"),
    ("kokoro (jm_kumo)", "ja-kumo", "ja"),
    ("piper", "en-joe", "en"),
    ("gemini (stand-in)", "ja-gemini-kore", "ja"),
]


def _env() -> None:
    env_file = REPO / ".run" / "env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if "=" in line and not line.lstrip().startswith("#"):
                key, _, value = line.partition("=")
                os.environ.setdefault(key.strip(), value.strip())


class _NoLimit:
    async def reserve(self, chars: int) -> None:
        return None

    async def refund(self, chars: int) -> None:
        return None


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(rounds: int) -> None:
    _env()
    from gemini_standin import GeminiStandIn
    from tts_service.app import offline_engines
    from tts_service.cache import AudioCache
    from tts_service.domain import SpeechRequest, TtsService
    from tts_service.engines.gemini_speech import GeminiSpeech
    from tts_service.settings import TtsSettings
    from tts_service.voices import GEMINI_ENGINE, load_voice_book
    from workplace_content import content
    from workplace_kit.cache import create_redis

    with GeminiStandIn() as gemini, tempfile.TemporaryDirectory() as cache_dir:
        settings = TtsSettings(
            gemini_api_keys=["bench"],
            gemini_base_url=gemini.base_url,
            gemini_api_version="v1beta",
            tts_cache_dir=Path(cache_dir),
            # This run's own audio keys (Redis outlives runs): a pause of its own length.
            tts_sentence_pause_ms=random.randint(240, 260),
        )
        redis = create_redis(settings.redis_url)
        executor = ThreadPoolExecutor(max_workers=settings.tts_synthesis_threads)
        engines = offline_engines(settings)
        loads = {}
        for name, engine in engines.items():
            started = time.perf_counter()
            await asyncio.get_running_loop().run_in_executor(executor, engine.warm_up)
            loads[name] = time.perf_counter() - started
        engines[GEMINI_ENGINE] = GeminiSpeech(settings, _NoLimit())
        cache = AudioCache(
            redis, settings.tts_cache_dir, ttl_s=3600, max_redis_bytes=settings.tts_cache_redis_max_bytes
        )
        table = load_voice_book().table("google", "auto")
        service = TtsService(settings, content(), table, engines, cache, executor)

        print(f"{'engine':<20}{'load s':>8}{'first audio s':>15}{'total s':>9}{'audio s':>9}{'RTF':>7}{'MP3 B/s':>9}")
        requests = []
        for label, voice, language in ENGINES:
            first, total, audio, size = [], [], [], []
            texts = REPLIES[language]
            for i in range(rounds):
                # Every round a miss: past the fifth, the same texts at an imperceptibly other speed.
                request = SpeechRequest(text=texts[i % len(texts)], voice=voice, speed=1.0 + 0.001 * (i // len(texts)))
                started = time.perf_counter()
                stream = await service.open_stream(request)
                first.append(time.perf_counter() - started)
                data = b"".join([piece async for piece in stream.chunks])
                total.append(time.perf_counter() - started)
                audio.append(stream.duration_ms / 1000)
                size.append(len(data))
                requests.append(request)
            engine = table.voice(voice).engine  # type: ignore[union-attr]
            rtf = sum(total) / sum(audio)
            print(
                f"{label:<20}{loads.get(engine, 0):>8.2f}{statistics.median(first):>15.3f}"
                f"{statistics.median(total):>9.2f}{statistics.median(audio):>9.2f}{rtf:>7.2f}"
                f"{sum(size) / sum(audio):>9.0f}"
            )

        hits = []
        for request in requests * 4:
            started = time.perf_counter()
            speech = await service.synthesize(request)
            hits.append(time.perf_counter() - started)
            assert speech.cached
        print(
            f"\ncache hit (Redis), {len(hits)} replies: p50 {1000 * _p(hits, 0.5):.2f} ms, "
            f"p95 {1000 * _p(hits, 0.95):.2f} ms"
        )
        big = SpeechRequest(text=REPLIES["ja"][0] + REPLIES["ja"][1], voice="ja-mei-calm", mime_type="audio/wav")
        made = await service.synthesize(big)
        disk = []
        for _ in range(20):
            started = time.perf_counter()
            assert (await service.synthesize(big)).cached
            disk.append(time.perf_counter() - started)
        where = await cache.where(made.key)
        print(
            f"cache hit ({where}, {len(made.audio) // 1024} KB WAV): p50 {1000 * _p(disk, 0.5):.2f} ms, "
            f"p95 {1000 * _p(disk, 0.95):.2f} ms"
        )
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"\n{os.cpu_count()} CPUs; synthesis threads: {settings.tts_synthesis_threads}; "
            f"peak memory with every engine loaded: {peak_mb:.0f} MB"
        )
        await engines[GEMINI_ENGINE].aclose()
        await redis.aclose()
        executor.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="replies per engine")
    asyncio.run(main(parser.parse_args().rounds))
