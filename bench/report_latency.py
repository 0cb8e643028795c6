#!/usr/bin/env python3
"""Time from the end of a roleplay to its coaching report being readable, on the running local
platform (`task up`, no API key), through the Envoy gateway as the report page sees it.

Each round plays decline-overtime for two learner turns (good or poor, alternately), ends it
(the scenario service's outbox publishes session.ended; feedback waits for the turns'
analyses, writes the report) and polls GET /api/v2/feedback/sessions/{id}/report every 50 ms
until it answers 200. Rounds run one after another; a free chat ended the same way is timed too.

    .venv/bin/python bench/report_latency.py            # 10 scenario rounds, 3 free chats
    .venv/bin/python bench/report_latency.py --rounds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx
from httpx_sse import aconnect_sse

GATEWAY = "http://127.0.0.1:8080"
GOOD = [
    "申し訳ありません、今夜は家族の用事があって残れないんです。",
    "明日の朝8時に来て、会議の前に仕上げるのはいかがでしょうか。",
]
POOR = ["無理です。", "帰ります。"]


async def stream(client: httpx.AsyncClient, url: str, body: dict) -> dict:
    done: dict = {}
    async with aconnect_sse(client, "POST", url, json=body) as source:
        source.response.raise_for_status()
        async for event in source.aiter_sse():
            if event.event == "error":
                raise RuntimeError(event.data)
            if event.event == "done":
                done = json.loads(event.data)
    return done


async def wait_for_report(client: httpx.AsyncClient, session_id: str, ended: float, timeout_s: float = 120) -> float:
    while time.perf_counter() - ended < timeout_s:
        answer = await client.get(f"/api/v2/feedback/sessions/{session_id}/report")
        if answer.status_code == 200:
            return time.perf_counter() - ended
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no report for {session_id} after {timeout_s} s")


async def scenario_round(client: httpx.AsyncClient, messages: list[str]) -> float:
    started = await client.post("/api/v2/scenario/sessions", json={"scenario_id": "decline-overtime"})
    started.raise_for_status()
    session_id = started.json()["session_id"]
    done: dict = {}
    for message in messages:
        done = await stream(client, f"/api/v2/scenario/sessions/{session_id}/messages", {"message": message})
        if done.get("session_ended"):
            break
    ended = time.perf_counter()
    if not done.get("session_ended"):
        (await client.post(f"/api/v2/scenario/sessions/{session_id}/end")).raise_for_status()
        ended = time.perf_counter()
    return await wait_for_report(client, session_id, ended)


async def chat_round(client: httpx.AsyncClient) -> float:
    first = {"message": "おはようございます！週末は何をしていましたか？", "partner": "senior"}
    done = await stream(client, "/api/v2/chat", first)
    session_id = done["session_id"]
    ended = time.perf_counter()
    (await client.post(f"/api/v2/chat/sessions/{session_id}/end")).raise_for_status()
    return await wait_for_report(client, session_id, ended)


def line(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{name:<28} n={len(ms):<3} p50 {statistics.median(ms):7.0f} ms   p95 {p95:7.0f} ms   max {ms[-1]:7.0f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--chats", type=int, default=3)
    args = parser.parse_args()
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=60) as client:
        guest = await client.post("/api/v2/auth/guest", json={"display_name": "report-bench"})
        guest.raise_for_status()
        client.headers["Authorization"] = f"Bearer {guest.json()['access_token']}"
        scenario = [await scenario_round(client, GOOD if n % 2 else POOR) for n in range(args.rounds)]
        chats = [await chat_round(client) for _ in range(args.chats)]
    print("session end -> coaching report readable (through the gateway, offline engines)")
    print(line("scenario roleplay", scenario))
    print(line("free chat", chats))


if __name__ == "__main__":
    asyncio.run(main())
