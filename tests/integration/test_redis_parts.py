"""The parts that keep state in Redis, against the real Redis of the test run: the AI-response
cache and the web service's feedback fan-out."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid

from web_service.feedback_fanout import FeedbackFanout
from workplace.events.v1 import events_pb2
from workplace_kit.ai.types import DialogueRequest, EngineInfo, Turn
from workplace_kit.cache import AIResponseCache, create_redis


def _request(**changes) -> DialogueRequest:
    base = dict(
        system_instruction="sys", message="こんにちは", history=(Turn("user", "a"), Turn("model", "b")), temperature=0.0
    )
    base.update(changes)
    return DialogueRequest(**base)


async def test_ai_cache_only_for_temperature_zero_and_keyed_on_everything():
    redis = create_redis(os.environ["WP_REDIS_URL"])
    cache = AIResponseCache(redis, ttl_s=60, prefix=f"test:{uuid.uuid4().hex}:")
    engine = EngineInfo("gemini", "Gemini", "flash")
    request = _request()
    assert await cache.get(engine, request) is None
    await cache.put(engine, request, "どうも", "STOP")
    hit = await cache.get(engine, request)
    assert hit is not None and hit.text == "どうも" and hit.engine == engine
    for changed in (
        _request(message="やあ"),
        _request(system_instruction="other"),
        _request(history=()),
        _request(partner="boss"),
    ):
        assert await cache.get(engine, changed) is None
    assert await cache.get(EngineInfo("gemini", "Gemini", "pro"), request) is None
    warm = _request(temperature=0.7)
    await cache.put(engine, warm, "x", "STOP")
    assert await cache.get(engine, warm) is None
    await redis.aclose()


async def test_fanout_reaches_listeners_of_that_session_only():
    redis = create_redis(os.environ["WP_REDIS_URL"])
    fanout = FeedbackFanout(redis)
    mine, other = str(uuid.uuid4()), str(uuid.uuid4())
    async with fanout.listen(mine, heartbeat_s=0.2) as events:
        await fanout.on_feedback_ready(events_pb2.FeedbackReady(session_id=other, turn_id="x"))
        await fanout.on_feedback_ready(events_pb2.FeedbackReady(session_id=mine, turn_id="t1"))
        received = []
        async for event in events:
            if event is not None:
                received.append(event.turn_id)
                break
        assert received == ["t1"]
        # Silence yields heartbeats (None) so the SSE stream can ping.
        assert await asyncio.wait_for(anext(events), timeout=2) is None
    await redis.aclose()


async def test_many_streams_share_one_redis_connection_per_process():
    """500 open streams used to hold 500 Redis clients; now one subscription serves them all,
    and each stream still gets only its own session's events."""
    redis = create_redis(os.environ["WP_REDIS_URL"])
    fanout = FeedbackFanout(redis)
    before = len(await redis.client_list())
    sessions = [str(uuid.uuid4()) for _ in range(50)]
    async with contextlib.AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(fanout.listen(s, heartbeat_s=0.5)) for s in sessions]
        assert len(await redis.client_list()) - before <= 2  # the subscription (+ a pooled command connection)
        for index in (0, 49):
            await fanout.on_feedback_ready(events_pb2.FeedbackReady(session_id=sessions[index], turn_id=f"t{index}"))
        for index in (0, 49):
            event = await asyncio.wait_for(anext(streams[index]), timeout=5)
            assert event is not None and event.turn_id == f"t{index}"
        assert await asyncio.wait_for(anext(streams[1]), timeout=2) is None  # nothing for the others
    await fanout.aclose()
    await redis.aclose()
