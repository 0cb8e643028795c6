#!/usr/bin/env python3
"""CPU per streamed Gemini reply for two readers of the same SSE wire format: httpx (what
google-genai uses) and aiohttp (what the chat path's GeminiStream uses), against the stand-in
(tests/contract/gemini_standin.py: 300 ms to the first chunk, 20 chunks 40 ms apart), 64 streams at a time,
on uvloop as the services run. Prints ms of this process's CPU per reply and replies/s.

    .venv/bin/python bench/gemini_readers.py [--concurrency 64] [--replies 640]
"""

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import httpx
import uvloop

REPO = Path(__file__).resolve().parent.parent
BODY = json.dumps({"contents": [{"role": "user", "parts": [{"text": "来週の会議資料です。"}]}]}).encode()
HEADERS = {"x-goog-api-key": "bench", "content-type": "application/json"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def measure(name: str, one: Callable[[], Awaitable[int]], concurrency: int, replies: int) -> None:
    gate = asyncio.Semaphore(concurrency)

    async def guarded() -> int:
        async with gate:
            return await one()

    await asyncio.gather(*[guarded() for _ in range(concurrency)])  # warm the connection pool
    started, cpu = time.perf_counter(), time.process_time()
    chunks = await asyncio.gather(*[guarded() for _ in range(replies)])
    cpu_ms = 1000 * (time.process_time() - cpu) / replies
    rate = replies / (time.perf_counter() - started)
    print(f"{name:8} {cpu_ms:6.2f} ms CPU per reply  {rate:6.1f} replies/s  ({sum(chunks) / replies:.0f} chunks each)")


async def with_httpx(url: str, concurrency: int, replies: int) -> None:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=1000)) as client:

        async def one() -> int:
            request = client.build_request("POST", url, params={"alt": "sse"}, headers=HEADERS, content=BODY)
            response = await client.send(request, stream=True)
            count = 0
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    json.loads(line[5:])
                    count += 1
            await response.aclose()
            return count

        await measure("httpx", one, concurrency, replies)


async def with_aiohttp(url: str, concurrency: int, replies: int) -> None:
    timeout = aiohttp.ClientTimeout(total=None, sock_read=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000), timeout=timeout) as session:

        async def one() -> int:
            async with session.post(url, params={"alt": "sse"}, headers=HEADERS, data=BODY) as response:
                count = 0
                async for line in response.content:
                    if line.startswith(b"data:"):
                        json.loads(line[5:])
                        count += 1
            return count

        await measure("aiohttp", one, concurrency, replies)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--replies", type=int, default=640)
    args = ap.parse_args()
    port = free_port()
    standin = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "contract" / "gemini_standin.py"), "--port", str(port)]
        + ["--first-token-delay-ms", "300", "--chunks", "20", "--inter-chunk-delay-ms", "40"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    try:
        deadline = time.monotonic() + 20
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if time.monotonic() > deadline or standin.poll() is not None:
                raise SystemExit("the stand-in did not start")
            time.sleep(0.1)
        for reader in (with_httpx, with_aiohttp, with_httpx, with_aiohttp):
            uvloop.run(reader(url, args.concurrency, args.replies))
    finally:
        standin.terminate()
        standin.wait(timeout=10)


if __name__ == "__main__":
    main()
