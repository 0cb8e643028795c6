#!/usr/bin/env python3
"""Chat streaming benchmark: what the platform adds to the AI's own latency, and how many
concurrent reply streams one chat process holds.

Runs against the real chat service process (python -m chat_service) and the real PostgreSQL,
Redis and Pub/Sub emulator of `scripts/localrt.py infra up`; the AI is the Gemini stand-in
(tests/contract/gemini_standin.py, a separate process speaking Gemini's REST wire format)
with a fixed first-token delay, reached through the real google-genai client.

    .venv/bin/python bench/chat_stream.py [--first-token-ms 200] [--levels 1,8,32,64,128]
                                          [--hold-levels 100,200,400,800] [--hold-seconds 8]

Added latency to first token = (time from sending the request to the first `delta` event)
minus the stand-in's configured first-token delay. The same figure measured directly against
the stand-in (baseline) shows how much of it is the stand-in and the client themselves.
Everything runs on loopback; loops are bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Sample:
    ttfb_ms: float = 0.0  # first byte of the response (the `start` event)
    ttft_ms: float = 0.0  # first `delta` event: the AI's first token reached the learner
    total_ms: float = 0.0
    ok: bool = False
    error: str = ""


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()


@dataclass
class Stack:
    procs: list[Proc] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        log = REPO / ".run" / "logs" / f"bench-{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        popen = subprocess.Popen(argv, env=env, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT)
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop()


async def wait_http(url: str, proc: Proc, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited; see {proc.log}")
            try:
                await client.get(url, timeout=1)
                return
            except httpx.HTTPError:
                await asyncio.sleep(0.2)
    raise TimeoutError(f"{proc.name} did not answer at {url}; see {proc.log}")


@dataclass
class OpenStreams:
    now: int = 0
    peak: int = 0

    def opened(self) -> None:
        self.now += 1
        self.peak = max(self.peak, self.now)


async def one_chat(client: httpx.AsyncClient, url: str, n: int, streams: OpenStreams | None = None) -> Sample:
    sample = Sample()
    body = {"message": f"お疲れさまです。今日の進捗はどうですか？（{n}）", "partner": "colleague", "temperature": 0.7}
    t0 = time.perf_counter()
    try:
        async with client.stream("POST", url, json=body, headers={"X-User-Id": f"bench-{n % 50}"}) as r:
            if r.status_code != 200:
                sample.error = f"HTTP {r.status_code}"
                return sample
            event = ""
            async for line in r.aiter_lines():
                now = (time.perf_counter() - t0) * 1000
                if not sample.ttfb_ms:
                    sample.ttfb_ms = now
                    if streams is not None:
                        streams.opened()
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    if event == "delta" and not sample.ttft_ms:
                        sample.ttft_ms = now
                    elif event == "error":
                        sample.error = line[5:].strip()[:120]
                    elif event == "done":
                        sample.ok = True
        sample.total_ms = (time.perf_counter() - t0) * 1000
    except httpx.HTTPError as exc:
        sample.error = type(exc).__name__
    finally:
        if streams is not None and sample.ttfb_ms:
            streams.now -= 1
    return sample


async def hold_level(url: str, count: int, rate_per_s: float) -> tuple[list[Sample], int]:
    """Open `count` streams at a steady arrival rate; they last long enough to all be open at
    once. Returns the samples and the peak number of streams open together."""
    streams = OpenStreams()
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(timeout=httpx.Timeout(300, connect=60), limits=limits) as client:

        async def arrive(i: int) -> Sample:
            await asyncio.sleep(i / rate_per_s)
            return await one_chat(client, url, i, streams)

        samples = await asyncio.gather(*(arrive(i) for i in range(count)))
    return list(samples), streams.peak


async def one_direct(client: httpx.AsyncClient, standin_url: str) -> Sample:
    """Baseline: the same stream straight from the stand-in, no platform in between."""
    sample = Sample()
    body = {"contents": [{"role": "user", "parts": [{"text": "お疲れさまです。"}]}]}
    url = f"{standin_url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    t0 = time.perf_counter()
    async with client.stream("POST", url, json=body, headers={"x-goog-api-key": "k"}) as r:
        async for line in r.aiter_lines():
            if line.startswith("data:") and not sample.ttft_ms:
                sample.ttft_ms = (time.perf_counter() - t0) * 1000
    sample.total_ms = (time.perf_counter() - t0) * 1000
    sample.ok = r.status_code == 200
    return sample


async def run_level(make, concurrency: int, total: int) -> list[Sample]:
    limits = httpx.Limits(max_connections=concurrency + 10, max_keepalive_connections=concurrency + 10)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120, connect=30), limits=limits) as client:
        counter = iter(range(total))
        samples: list[Sample] = []

        async def worker() -> None:
            for n in counter:
                samples.append(await make(client, n))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return samples


def summarise(samples: list[Sample], delay_ms: float) -> dict:
    ok = [s for s in samples if s.ok]
    added = [s.ttft_ms - delay_ms for s in ok]
    return {
        "requests": len(samples),
        "errors": len(samples) - len(ok),
        "added_ttft_ms": {q: round(pct(added, q), 1) for q in (50, 95, 99)},
        "ttfb_ms": {q: round(pct([s.ttfb_ms for s in ok], q), 1) for q in (50, 95, 99)},
        "first_errors": sorted({s.error for s in samples if not s.ok})[:3],
    }


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--first-token-ms", type=float, default=200)
    ap.add_argument("--levels", default="1,8,32,64,128")
    ap.add_argument("--requests-per-level", type=int, default=0, help="default: max(30, 3 x concurrency)")
    ap.add_argument("--hold-levels", default="100,200,400,800")
    ap.add_argument("--hold-seconds", type=float, default=25, help="how long each held stream lasts")
    ap.add_argument("--arrival-rate", type=float, default=40, help="new streams per second in the capacity phase")
    ap.add_argument("--hold-p95-limit-ms", type=float, default=1000, help="added TTFT p95 above this ends the ramp")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    env_file = REPO / ".run" / "env"
    if not env_file.exists():
        print("run `python scripts/localrt.py infra up` first (task bench does)", file=sys.stderr)
        return 2
    base_env = {**os.environ, **read_env_file(env_file), "WP_LOG_LEVEL": "WARNING", "WP_ENVIRONMENT": "test"}
    run = uuid.uuid4().hex[:6]
    stack = Stack()
    results: dict = {"first_token_delay_ms": args.first_token_ms, "levels": {}, "hold": {}}
    try:
        # Stand-in A: fixed first-token delay, short replies (latency phase).
        # Stand-in B: same delay, replies that last --hold-seconds (capacity phase).
        chunks = 10
        ports = {"a": free_port(), "b": free_port()}
        standins = {
            "a": stack.start(
                "standin-a",
                [
                    PY,
                    "tests/contract/gemini_standin.py",
                    "--port",
                    str(ports["a"]),
                    "--first-token-delay-ms",
                    str(args.first_token_ms),
                    "--chunks",
                    "5",
                    "--inter-chunk-delay-ms",
                    "10",
                ],
                base_env,
            ),
            "b": stack.start(
                "standin-b",
                [
                    PY,
                    "tests/contract/gemini_standin.py",
                    "--port",
                    str(ports["b"]),
                    "--first-token-delay-ms",
                    str(args.first_token_ms),
                    "--chunks",
                    str(chunks),
                    "--inter-chunk-delay-ms",
                    str(args.hold_seconds * 1000 / chunks),
                ],
                base_env,
            ),
        }
        chats = {}
        for key in ("a", "b"):
            http_port, grpc_port = free_port(), free_port()
            env = {
                **base_env,
                "WP_SERVICE_NAME": f"chat-bench-{key}",
                "WP_HTTP_PORT": str(http_port),
                "WP_GRPC_PORT": str(grpc_port),
                "WP_PUBSUB_NAME_SUFFIX": f".bench{run}",
                "WP_AI_PROVIDER": "gemini",
                "WP_GEMINI_API_KEYS": "bench-key",
                "WP_GEMINI_BASE_URL": f"http://127.0.0.1:{ports[key]}",
                "WP_GEMINI_RETRY_ATTEMPTS": "1",
                "WP_GEMINI_TIMEOUT_S": "120",
                "WP_DATABASE_POOL_MAX": "20",
            }
            chats[key] = (stack.start(f"chat-{key}", [PY, "-m", "chat_service"], env), f"http://127.0.0.1:{http_port}")
        for key in ("a", "b"):
            await wait_http(f"http://127.0.0.1:{ports[key]}/", standins[key])
            await wait_http(chats[key][1] + "/healthz", chats[key][0])
        chat_url = chats["a"][1] + "/api/v2/chat"
        await run_level(lambda c, n: one_chat(c, chat_url, n), 4, 12)  # warm-up

        print(f"\nLatency: first-token delay of the stand-in = {args.first_token_ms:.0f} ms")
        print(
            f"{'conc':>5} {'reqs':>5} {'err':>4} | {'added TTFT p50':>14} {'p95':>7} {'p99':>7} | "
            f"{'baseline p50':>12} {'p95':>7} | {'TTFB p50':>8}"
        )
        for level in [int(x) for x in args.levels.split(",") if x]:
            total = args.requests_per_level or max(30, 3 * level)
            samples = await run_level(lambda c, n: one_chat(c, chat_url, n), level, total)
            base = await run_level(lambda c, n: one_direct(c, f"http://127.0.0.1:{ports['a']}"), level, total)
            s, b = summarise(samples, args.first_token_ms), summarise(base, args.first_token_ms)
            results["levels"][level] = {"platform": s, "baseline": b}
            print(
                f"{level:>5} {s['requests']:>5} {s['errors']:>4} | {s['added_ttft_ms'][50]:>14} "
                f"{s['added_ttft_ms'][95]:>7} {s['added_ttft_ms'][99]:>7} | {b['added_ttft_ms'][50]:>12} "
                f"{b['added_ttft_ms'][95]:>7} | {s['ttfb_ms'][50]:>8}"
            )

        hold_url = chats["b"][1] + "/api/v2/chat"
        hold_pid = chats["b"][0].popen.pid
        # Stand-in B spaces every chunk, the first included: measure its own first-token time
        # and count only what the platform adds on top of it.
        direct = await run_level(lambda c, n: one_direct(c, f"http://127.0.0.1:{ports['b']}"), 1, 3)
        hold_delay_ms = statistics.median(s.ttft_ms for s in direct)
        results["hold_standin_first_token_ms"] = round(hold_delay_ms, 1)
        print(
            f"\nCapacity: one chat process; streams arrive at {args.arrival_rate:.0f}/s and each lasts "
            f"~{args.hold_seconds:.0f} s, so they pile up until all are open together"
        )
        print(f"{'streams':>7} {'peak open':>9} {'err':>4} | {'added TTFT p50':>14} {'p95':>7} | {'peak RSS MB':>11}")
        held_ok = 0
        for level in [int(x) for x in args.hold_levels.split(",") if x]:
            peak = [rss_mb(hold_pid)]

            async def sample_rss(into: list[float]) -> None:
                while True:
                    await asyncio.sleep(0.5)
                    into.append(rss_mb(hold_pid))

            sampler = asyncio.create_task(sample_rss(peak))
            samples, peak_open = await hold_level(hold_url, level, args.arrival_rate)
            sampler.cancel()
            s = summarise(samples, hold_delay_ms)
            s["peak_rss_mb"] = round(max(peak), 1)
            s["peak_open_streams"] = peak_open
            results["hold"][level] = s
            print(
                f"{level:>7} {peak_open:>9} {s['errors']:>4} | {s['added_ttft_ms'][50]:>14} "
                f"{s['added_ttft_ms'][95]:>7} | {s['peak_rss_mb']:>11}"
            )
            if s["errors"] or s["added_ttft_ms"][95] > args.hold_p95_limit_ms:
                break
            held_ok = peak_open
        results["max_concurrent_streams_held"] = held_ok
        print(
            f"\nMost concurrent streams one chat process held (no errors, added TTFT p95 <= "
            f"{args.hold_p95_limit_ms:.0f} ms): {held_ok}"
        )
        out = REPO / "bench" / "results" / f"chat_stream-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
        print(f"results: {out.relative_to(REPO)}")
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
