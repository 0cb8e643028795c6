"""Chat → Pub/Sub → feedback, in-process services on the real PostgreSQL, Redis and emulator.

The chat service runs once with the offline engine and once with Gemini (the real
google-genai client against the stand-in server); the feedback service consumes the turn
events both publish.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from chat_service.app import build as build_chat
from chat_service.repository import ConcurrentTurnError, Session
from chat_service.settings import ChatSettings
from feedback_service.app import build as build_feedback
from feedback_service.settings import FeedbackSettings
from gemini_standin import Fail, FailMidStream, GeminiStandIn, Reply
from httpx_sse import aconnect_sse
from support.identity import Identities
from support.services import running_service
from web_service.app import build as build_web
from web_service.feedback_fanout import FeedbackFanout
from web_service.settings import WebSettings
from workplace.chat.v1 import chat_pb2, chat_pb2_grpc
from workplace.events.v1 import events_pb2
from workplace.feedback.v1 import feedback_pb2, feedback_pb2_grpc
from workplace_kit.ai.metrics import AI_REPLIES
from workplace_kit.ai.types import Turn
from workplace_kit.bus import EventBus, Handled
from workplace_kit.cache import create_redis
from workplace_kit.topology import DEFAULT, SUBSCRIPTIONS, SubscriptionSpec, Topology

FAST_RETRY = {"gemini_retry_attempts": 2, "gemini_retry_initial_delay_s": 0.01, "gemini_retry_max_delay_s": 0.02}


@pytest.fixture(scope="session")
def suffix(run_id: str) -> str:
    """Appended to every topic and subscription name: this run's events stay its own."""
    return f".t{run_id}"


@pytest.fixture(scope="session")
async def feedback(suffix, identities):
    settings = FeedbackSettings(pubsub_name_suffix=suffix, ai_provider="offline", auth_jwks_url=identities.jwks_url)
    async with running_service(build_feedback, settings) as svc:
        yield svc


OBSERVER = "test.feedback-ready-observer"


@pytest.fixture(scope="session")
async def ready_events(suffix) -> AsyncIterator[list[events_pb2.FeedbackReady]]:
    """Everything published on feedback.ready during the run, as a subscriber would see it."""
    received: list[events_pb2.FeedbackReady] = []
    observed = Topology(
        subscriptions=SUBSCRIPTIONS + (SubscriptionSpec(OBSERVER, "feedback.ready", consumer="test"),),
        suffix=suffix,
    )
    bus = EventBus("workplace-local", service_name="test-observer", topology=observed)
    await bus.provision(topics=["feedback.ready"])

    async def on_ready(event, _envelope):
        received.append(event)

    sub = await bus.subscribe(OBSERVER, events_pb2.FeedbackReady, on_ready)
    yield received
    await sub.close()
    await bus.close()


# The learners' identities (guest accounts of the session's auth service), for the helpers below.
LEARNERS: list[Identities] = []


@pytest.fixture(scope="session")
async def chat(suffix, feedback, ready_events, identities):
    LEARNERS[:] = [identities]
    settings = ChatSettings(pubsub_name_suffix=suffix, ai_provider="offline", auth_jwks_url=identities.jwks_url)
    async with running_service(build_chat, settings) as svc:
        yield svc


@pytest.fixture(scope="session")
def standin():
    with GeminiStandIn() as server:
        yield server


@pytest.fixture(scope="session")
async def gemini_chat(suffix, feedback, standin, identities):
    settings = ChatSettings(
        auth_jwks_url=identities.jwks_url,
        pubsub_name_suffix=suffix,
        ai_provider="gemini",
        gemini_api_keys=["test-key-1"],
        gemini_base_url=standin.base_url,
        **FAST_RETRY,
    )
    async with running_service(build_chat, settings) as svc:
        yield svc


async def sse_chat(base_url: str, body: dict, *, user: str = "learner-1") -> tuple[int, list[tuple[str, dict]]]:
    """POST /api/v2/chat; returns (status, [(event, data), ...]) or the JSON error body."""
    async with httpx.AsyncClient(timeout=60) as client:
        async with aconnect_sse(
            client, "POST", base_url + "/api/v2/chat", json=body, headers=await LEARNERS[0].headers(user)
        ) as source:
            if source.response.status_code != 200:
                await source.response.aread()
                return source.response.status_code, [("http-error", source.response.json())]
            return 200, [(e.event, json.loads(e.data)) async for e in source.aiter_sse()]


async def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.2):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def history(base_url: str, session_id: str, user: str = "learner-1") -> list[dict]:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{base_url}/api/v2/chat/sessions/{session_id}", headers=await LEARNERS[0].headers(user))
        r.raise_for_status()
        return r.json()["messages"]


async def test_reply_streams_as_sse_and_history_is_kept(chat):
    status, events = await sse_chat(
        chat.http_url, {"message": "おはようございます。週末は何をしていましたか？", "partner": "boss"}
    )
    assert status == 200
    kinds = [k for k, _ in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("delta") >= 1
    start, done = events[0][1], events[-1][1]
    assert start["engine"]["id"] == "offline-retrieval"
    text = "".join(d["text"] for k, d in events if k == "delta")
    assert text.strip() == done["text"]
    assert any("\u3040" <= ch <= "\u30ff" for ch in done["text"]), "Japanese in, Japanese out"

    session_id = start["session_id"]
    status, events = await sse_chat(
        chat.http_url, {"message": "最近、映画を見に行きました。", "session_id": session_id}
    )
    assert status == 200 and events[-1][0] == "done"
    messages = await history(chat.http_url, session_id)
    assert [m["role"] for m in messages] == ["user", "model", "user", "model"]
    assert messages[0]["text"] == "おはようございます。週末は何をしていましたか？"
    assert messages[2]["turn_id"] == events[0][1]["user_turn_id"]


async def test_english_learner_gets_english_reply(chat):
    status, events = await sse_chat(chat.http_url, {"message": "Hi! How was your weekend?", "partner": "colleague"})
    assert status == 200
    reply = events[-1][1]["text"]
    assert not any("\u3040" <= ch <= "\u30ff" for ch in reply)


async def test_grpc_stream_reply_matches_http_domain(chat, identities):
    me = await identities.metadata("grpc-user")
    async with grpc.aio.insecure_channel(chat.grpc_address) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        request = chat_pb2.StreamReplyRequest(
            message="お疲れさまです。今日のランチはどこに行きましたか？",
            partner=chat_pb2.PARTNER_SENIOR,
            situation="lunch",
        )
        responses = [r async for r in stub.StreamReply(request, metadata=me)]
        assert responses[0].WhichOneof("event") == "started"
        assert responses[-1].WhichOneof("event") == "done"
        deltas = "".join(r.delta.text for r in responses if r.WhichOneof("event") == "delta")
        assert deltas.strip() == responses[-1].done.text
        session_id = responses[0].started.session_id

        hist = await stub.GetHistory(chat_pb2.GetHistoryRequest(session_id=session_id), metadata=me)
        assert hist.partner == chat_pb2.PARTNER_SENIOR and hist.situation == "lunch"
        assert [m.text for m in hist.messages][0] == request.message
        assert len(hist.messages) == 2

        situations = await stub.ListSituations(chat_pb2.ListSituationsRequest())
        assert {"break", "lunch"} <= {s.id for s in situations.situations}

        for unusable in ("   ", "NUL\x00inside"):
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                async for _ in stub.StreamReply(chat_pb2.StreamReplyRequest(message=unusable), metadata=me):
                    pass
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT, unusable
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetHistory(chat_pb2.GetHistoryRequest(session_id=str(uuid.uuid4())), metadata=me)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND

        # Another learner's session is not found; a user_id in the request changes nothing;
        # no token, or a forged one, is UNAUTHENTICATED.
        other = await identities.metadata("grpc-intruder")
        with pytest.raises(grpc.aio.AioRpcError) as foreign:
            await stub.GetHistory(chat_pb2.GetHistoryRequest(session_id=session_id), metadata=other)
        assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
        posing = chat_pb2.StreamReplyRequest(
            user_id=await identities.user_id("grpc-user"), message="乗っ取り", session_id=session_id
        )
        with pytest.raises(grpc.aio.AioRpcError) as hijack:
            async for _ in stub.StreamReply(posing, metadata=other):
                pass
        assert hijack.value.code() == grpc.StatusCode.NOT_FOUND
        for metadata in ((), (("authorization", "Bearer forged.token.value"),)):
            with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                await stub.GetHistory(chat_pb2.GetHistoryRequest(session_id=session_id), metadata=metadata)
            assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert (
            len((await stub.GetHistory(chat_pb2.GetHistoryRequest(session_id=session_id), metadata=me)).messages) == 2
        )


async def test_bad_input_gets_clear_errors_and_loses_nothing(chat):
    status, events = await sse_chat(chat.http_url, {"message": "こんにちは"})
    session_id = events[0][1]["session_id"]
    before = await history(chat.http_url, session_id)

    status, body = await sse_chat(chat.http_url, {"message": "", "session_id": session_id})
    assert status == 422 and "message" in body[0][1]["message"]
    # The characters and situations come from the content; the request schema lists them.
    status, body = await sse_chat(chat.http_url, {"message": "やあ", "situation": "moon-base"})
    assert status == 422 and body[0][1]["problems"][0]["field"] == "situation"
    status, body = await sse_chat(chat.http_url, {"message": "やあ", "partner": "ceo"})
    assert status == 422 and body[0][1]["problems"][0]["field"] == "partner"
    status, body = await sse_chat(chat.http_url, {"message": "やあ", "session_id": str(uuid.uuid4())})
    assert status == 404
    status, body = await sse_chat(chat.http_url, {"message": "やあ", "session_id": "not-an-id"})
    assert status == 422 and body[0][1]["problems"][0]["field"] == "session_id"
    # Someone else's session is not found, not leaked.
    status, body = await sse_chat(chat.http_url, {"message": "やあ", "session_id": session_id}, user="intruder")
    assert status == 404
    status, body = await sse_chat(chat.http_url, {"message": "あ" * 2001, "session_id": session_id})
    assert status == 422 and body[0][1]["problems"][0]["field"] == "message"
    status, body = await sse_chat(chat.http_url, {"message": "   ", "session_id": session_id})
    assert status == 422 and body[0][1]["problems"][0]["field"] == "message"
    # PostgreSQL cannot store NUL: refused when the request is read, not after the reply.
    status, body = await sse_chat(chat.http_url, {"message": "こんにちは\x00です", "session_id": session_id})
    assert status == 422 and body[0][1]["problems"][0]["field"] == "message"
    status, body = await sse_chat(chat.http_url, {"message": "やあ", "temperature": "0.5"})
    assert status == 422 and body[0][1]["problems"][0]["field"] == "temperature"
    async with httpx.AsyncClient() as client:
        r = await client.post(
            chat.http_url + "/api/v2/chat", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422 and r.json()["error"] == "invalid_request"
        assert "Traceback" not in r.text
    assert await history(chat.http_url, session_id) == before


async def test_temperature_zero_is_answered_from_cache(chat):
    body = {
        "message": f"今日の会議の準備は進んでいますか？ ({uuid.uuid4().hex[:6]})",
        "temperature": 0,
        "partner": "boss",
    }
    _, first = await sse_chat(chat.http_url, body)
    _, second = await sse_chat(chat.http_url, body)
    assert first[0][1]["cached"] is False
    assert second[0][1]["cached"] is True and second[-1][1]["cached"] is True
    assert first[-1][1]["text"] == second[-1][1]["text"]
    # Each request is still its own stored turn in its own session.
    assert first[0][1]["session_id"] != second[0][1]["session_id"]
    assert len(await history(chat.http_url, second[0][1]["session_id"])) == 2


async def test_feedback_arrives_for_each_learner_turn(chat, feedback, ready_events):
    _, events = await sse_chat(chat.http_url, {"message": "昨日のプレゼン、うまくいって本当に嬉しかったです！"})
    session_id = events[0][1]["session_id"]
    first_turn = events[0][1]["user_turn_id"]
    _, events = await sse_chat(
        chat.http_url, {"message": "でも部長に厳しく言われて、少し落ち込んでいます。", "session_id": session_id}
    )
    second_turn = events[0][1]["user_turn_id"]

    # The learner who chatted reads their feedback with their own token.
    mine = await LEARNERS[0].headers("learner-1")

    async def analyses():
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{feedback.http_url}/api/v2/feedback/sessions/{session_id}/turns", headers=mine)
            return r.json() if r.status_code == 200 and len(r.json()) == 2 else None

    found = await wait_for(analyses)
    by_turn = {a["turn_id"]: a for a in found}
    assert by_turn[first_turn]["polarity"] > 0
    assert by_turn[second_turn]["polarity"] < 0
    assert all(a["summary"] and a["engine"].startswith("offline") for a in found)

    async with grpc.aio.insecure_channel(feedback.grpc_address) as channel:
        stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
        me = await LEARNERS[0].metadata("learner-1")
        one = await stub.GetTurnAnalysis(feedback_pb2.GetTurnAnalysisRequest(turn_id=first_turn), metadata=me)
        assert one.analysis.session_id == session_id and one.analysis.analysis.dominant_emotion
        assert one.analysis.user_id == await LEARNERS[0].user_id("learner-1")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetTurnAnalysis(feedback_pb2.GetTurnAnalysisRequest(turn_id="nope"), metadata=me)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with pytest.raises(grpc.aio.AioRpcError) as err:  # a chat still running has no report yet
            await stub.GetReport(feedback_pb2.GetReportRequest(session_id=session_id), metadata=me)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND

    await wait_for(lambda: _async({first_turn, second_turn} <= {e.turn_id for e in ready_events}))


async def _async(value):
    return value


async def test_redelivered_turn_is_analysed_once(feedback, ready_events):
    service = feedback.app.state.service
    event = events_pb2.ConversationTurn(
        event_id=str(uuid.uuid4()),
        session_id=str(uuid.uuid4()),
        user_id="u",
        source_service="chat",
        user_turn_id=str(uuid.uuid4()),
        reply_turn_id=str(uuid.uuid4()),
        learner_text="ありがとうございます、助かりました。",
        language="ja",
    )
    first = await service.handle_turn(event)
    again = await service.handle_turn(event)
    # The same turn under a new event id (a producer that re-created the event) too.
    renamed = events_pb2.ConversationTurn()
    renamed.CopyFrom(event)
    renamed.event_id = str(uuid.uuid4())
    third = await service.handle_turn(renamed)
    assert (first, again, third) == (Handled.OK, Handled.DUPLICATE, Handled.DUPLICATE)
    await wait_for(lambda: _async(any(e.turn_id == event.user_turn_id for e in ready_events)))
    await asyncio.sleep(1.0)
    assert sum(e.turn_id == event.user_turn_id for e in ready_events) == 1


async def test_gemini_request_carries_persona_history_and_config(gemini_chat, standin):
    standin.reset()
    _, events = await sse_chat(
        gemini_chat.http_url,
        {"message": "はじめまして。今日からお世話になります。", "partner": "boss", "situation": "morning"},
    )
    assert events[0][1]["engine"]["id"] == "gemini"
    session_id = events[0][1]["session_id"]
    standin.script(Reply(["そうですか、", "よろしくお願いしますね。"]))
    _, events = await sse_chat(
        gemini_chat.http_url, {"message": "よろしくお願いします！", "session_id": session_id, "temperature": 0.3}
    )
    assert events[-1][1]["text"] == "そうですか、よろしくお願いしますね。"
    req = standin.requests[-1]
    assert req.action == "streamGenerateContent" and req.api_key == "test-key-1"
    body = req.body
    assert "上司" in body["systemInstruction"]["parts"][0]["text"]
    roles = [c["role"] for c in body["contents"]]
    assert roles == ["user", "model", "user"]
    assert body["contents"][0]["parts"][0]["text"] == "はじめまして。今日からお世話になります。"
    assert body["contents"][-1]["parts"][0]["text"] == "よろしくお願いします！"
    assert body["generationConfig"]["temperature"] == pytest.approx(0.3)


async def test_gemini_overload_reports_error_and_stores_nothing(gemini_chat, standin):
    standin.reset()
    _, events = await sse_chat(gemini_chat.http_url, {"message": "こんにちは"})
    session_id = events[0][1]["session_id"]
    before = await history(gemini_chat.http_url, session_id)

    standin.script(Fail(503), times=None)
    unavailable_before = AI_REPLIES.labels("gemini", "unavailable")._value.get()
    _, events = await sse_chat(gemini_chat.http_url, {"message": "今日は忙しいですか？", "session_id": session_id})
    assert events[-1][0] == "error" and events[-1][1]["error"] == "unavailable"
    assert AI_REPLIES.labels("gemini", "unavailable")._value.get() == unavailable_before + 1
    assert len([r for r in standin.requests if r.status == 503]) >= 2, "retried before giving up"
    assert await history(gemini_chat.http_url, session_id) == before

    standin.reset()
    standin.script(FailMidStream(chunks=["途中まで"]))
    _, events = await sse_chat(gemini_chat.http_url, {"message": "今日は忙しいですか？", "session_id": session_id})
    assert events[-1][0] == "error"
    assert await history(gemini_chat.http_url, session_id) == before

    standin.reset()
    standin.script(Fail(429), Reply(["大丈夫ですよ。"]))
    _, events = await sse_chat(gemini_chat.http_url, {"message": "今日は忙しいですか？", "session_id": session_id})
    assert events[-1][0] == "done" and events[-1][1]["text"] == "大丈夫ですよ。"
    assert len(await history(gemini_chat.http_url, session_id)) == len(before) + 2


async def test_turn_that_can_never_be_analysed_is_dead_lettered_at_once(feedback, suffix):
    """A turn event the feedback service can never handle (here: a learner turn id that is
    not an id) goes straight to the dead-letter topic; the service keeps serving."""
    poison = events_pb2.ConversationTurn(
        event_id=str(uuid.uuid4()),
        session_id=str(uuid.uuid4()),
        user_turn_id="not-a-uuid",
        learner_text="こんにちは",
        source_service="chat",
    )
    bus = EventBus("workplace-local", service_name="test-producer", topology=DEFAULT.with_suffix(suffix))
    try:
        await bus.publish(poison, ordering_key=poison.session_id)
        dlq = bus.subscription_path("feedback.conversation-turns.dlq")

        async def dead_lettered():
            for received in await bus._pull_now(dlq, 10):
                await bus._subscriber.acknowledge(request={"subscription": dlq, "ack_ids": [received.ack_id]})
                if received.message.attributes.get("event_id") == poison.event_id:
                    return received.message.attributes
            return None

        attributes = await wait_for(dead_lettered, timeout=30, interval=0.5)
        assert attributes["dead_letter_reason"] == "permanent"
        assert "UUID" in attributes["dead_letter_detail"]
    finally:
        await bus.close()
    async with httpx.AsyncClient() as client:
        assert (await client.get(feedback.http_url + "/readyz")).status_code == 200


async def test_database_outage_is_a_503_before_the_reply_and_not_saved_after_it(chat, monkeypatch):
    """The database fails: before anything streams the answer is a 503 with Retry-After; if it
    fails once the reply has streamed, storing is retried briefly, then the stream ends with
    `not_saved` and nothing of the turn is stored (the page puts the message back)."""
    service = chat.app.state.service
    _, events = await sse_chat(chat.http_url, {"message": "お疲れさまです。"})
    session_id = events[0][1]["session_id"]
    before = await history(chat.http_url, session_id)

    async def refused(*args, **kwargs):
        raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5440)")

    with monkeypatch.context() as patch:
        patch.setattr(service.repository, "ping", refused)
        async with httpx.AsyncClient() as client:
            r = await client.post(
                chat.http_url + "/api/v2/chat",
                json={"message": "こんにちは"},
                headers=await LEARNERS[0].headers("learner-1"),
            )
        assert r.status_code == 503 and r.json()["error"] == "unavailable"
        assert int(r.headers["retry-after"]) > 0 and "5440" not in r.text

    with monkeypatch.context() as patch:
        patch.setattr(service.repository, "store_exchange", refused)
        patch.setattr(service.settings, "chat_store_retry_s", 0.5)
        _, events = await sse_chat(chat.http_url, {"message": "今日もよろしくお願いします。", "session_id": session_id})
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "start" and "delta" in kinds and kinds[-1] == "error", kinds
    assert events[-1][1]["error"] == "not_saved"
    assert await history(chat.http_url, session_id) == before


async def test_options_come_from_the_content_over_http_and_grpc(chat):
    async with httpx.AsyncClient() as client:
        options = (await client.get(chat.http_url + "/api/v2/chat/options")).json()
        schema = (await client.get(chat.http_url + "/openapi.json")).json()
    assert [c["id"] for c in options["characters"]] == ["colleague", "senior", "boss"]
    assert options["characters"][2] == {"id": "boss", "label_ja": "上司", "label_en": "Boss"}
    assert options["max_message_chars"] == 2000 and "break" in {s["id"] for s in options["situations"]}
    request_schema = next(v for k, v in schema["components"]["schemas"].items() if k.startswith("ChatRequest"))
    assert request_schema["properties"]["partner"]["enum"] == ["colleague", "senior", "boss"]
    assert request_schema["properties"]["message"]["maxLength"] == 2000
    async with grpc.aio.insecure_channel(chat.grpc_address) as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        reply = await stub.GetOptions(chat_pb2.GetOptionsRequest())
        assert [c.id for c in reply.characters] == ["colleague", "senior", "boss"]
        assert reply.max_message_chars == 2000
        # A client of the older enum and one of partner_id reach the same character.
        me = await LEARNERS[0].metadata("g")
        for request in (
            chat_pb2.StreamReplyRequest(message="こんにちは", partner=chat_pb2.PARTNER_BOSS),
            chat_pb2.StreamReplyRequest(message="こんにちは", partner_id="boss"),
        ):
            session_id = [r async for r in stub.StreamReply(request, metadata=me)][0].started.session_id
            history = await stub.GetHistory(chat_pb2.GetHistoryRequest(session_id=session_id), metadata=me)
            assert history.partner_id == "boss" and history.partner == chat_pb2.PARTNER_BOSS


def _exchange(session, *, expected: int, user_turn: uuid.UUID | None = None, is_new: bool = False) -> dict:
    """Arguments of one store_exchange call (fresh ids unless given)."""
    user_turn = user_turn or uuid.uuid4()
    event = events_pb2.ConversationTurn(event_id=str(uuid.uuid4()), session_id=str(session.session_id))
    return {
        "is_new": is_new,
        "expected_index": expected,
        "user_turn_id": user_turn,
        "user_text": f"質問 {expected}",
        "reply_turn_id": uuid.uuid4(),
        "reply_text": f"答え {expected}",
        "engine_id": "offline",
        "event": event,
    }


async def test_repository_stores_each_exchange_once_and_refuses_a_concurrent_turn(chat):
    """store_exchange on the real database: a retried exchange (first turn or later) is stored
    once, two turns racing on one session store one, and recent_turns counts every message
    while returning only the last ones."""
    repo = chat.app.state.service.repository
    session = Session(uuid.uuid4(), "repo-learner", "boss", "break", "ja")

    first = _exchange(session, expected=0, is_new=True)
    await repo.store_exchange(session, **first)
    await repo.store_exchange(session, **first)  # the commit's answer was lost: sent again
    assert await repo.recent_turns(session.session_id, 10) == (2, [Turn("user", "質問 0"), Turn("model", "答え 0")])

    second = _exchange(session, expected=2)
    await repo.store_exchange(session, **second)
    await repo.store_exchange(session, **second)
    count, last = await repo.recent_turns(session.session_id, 3)
    assert count == 4 and [t.text for t in last] == ["答え 0", "質問 2", "答え 2"]
    assert await repo.recent_turns(session.session_id, 0) == (4, [])

    # Two learners' tabs answer the same turn at once: one is stored, the other is refused.
    racing = [_exchange(session, expected=4), _exchange(session, expected=4)]
    outcomes = await asyncio.gather(*(repo.store_exchange(session, **r) for r in racing), return_exceptions=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["ConcurrentTurnError", "NoneType"]
    assert (await repo.recent_turns(session.session_id, 100))[0] == 6
    with pytest.raises(ConcurrentTurnError):
        await repo.store_exchange(session, **_exchange(session, expected=2))  # a stale tab
    assert [m.turn_index for m in await repo.history(session.session_id)] == list(range(6))
    assert await repo.recent_turns(uuid.uuid4(), 5) == (0, [])


async def test_chat_acts_only_for_the_verified_learner(chat, identities):
    """No token, a forged one or a user id header: 401; another learner's session: 404."""
    status, events = await sse_chat(chat.http_url, {"message": "おはようございます。"}, user="owner")
    session_id = events[0][1]["session_id"]
    owner_id = await identities.user_id("owner")
    async with httpx.AsyncClient(base_url=chat.http_url, timeout=30) as client:
        for headers in ({}, {"X-User-Id": owner_id}, {"Authorization": "Bearer e30.e30.sig"}):
            r = await client.post("/api/v2/chat", json={"message": "やあ", "session_id": session_id}, headers=headers)
            assert r.status_code == 401 and r.json()["error"] == "unauthenticated", headers
            r = await client.get(f"/api/v2/chat/sessions/{session_id}", headers=headers)
            assert r.status_code == 401, headers
        # A browser's HttpOnly cookie works like the header.
        token = await identities.token("owner")
        r = await client.get(f"/api/v2/chat/sessions/{session_id}", cookies={"wp_access": token})
        assert r.status_code == 200 and len(r.json()["messages"]) == 2
        r = await client.get(f"/api/v2/chat/sessions/{session_id}", headers=await identities.headers("stranger"))
        assert r.status_code == 404
    assert len(await history(chat.http_url, session_id, user="owner")) == 2  # nothing was added


# --------------------------------------------------------------------------- whose feedback


async def _analysed_session(chat, identities, user: str) -> tuple[str, str]:
    """A session of `user` with one analysed learner turn: (session_id, turn_id)."""
    _, events = await sse_chat(chat.http_url, {"message": "新しい仕事、とても楽しみです！"}, user=user)
    session_id, turn_id = events[0][1]["session_id"], events[0][1]["user_turn_id"]
    return session_id, turn_id


async def _wait_analysed(feedback, identities, user: str, session_id: str, count: int = 1) -> list[dict]:
    mine = await identities.headers(user)

    async def analyses():
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{feedback.http_url}/api/v2/feedback/sessions/{session_id}/turns", headers=mine)
            return r.json() if r.status_code == 200 and len(r.json()) >= count else None

    return await wait_for(analyses)


async def test_feedback_is_read_by_its_learner_only_over_http_and_grpc(chat, feedback, identities):
    """Another learner's turn or session: 404 / NOT_FOUND (as one that does not exist); no
    token or a forged one: 401 / UNAUTHENTICATED; a user id in a request changes nothing."""
    session_id, turn_id = await _analysed_session(chat, identities, "fb-owner")
    (analysis,) = await _wait_analysed(feedback, identities, "fb-owner", session_id)
    assert analysis["turn_id"] == turn_id and analysis["learner_text"] == "新しい仕事、とても楽しみです！"
    owner_id = await identities.user_id("fb-owner")
    paths = (f"/api/v2/feedback/turns/{turn_id}", f"/api/v2/feedback/sessions/{session_id}/turns")
    async with httpx.AsyncClient(base_url=feedback.http_url, timeout=30) as client:
        intruder = await identities.headers("fb-intruder")
        for path in paths:
            r = await client.get(path, headers=intruder)
            assert r.status_code == 404 and "楽しみ" not in r.text, path
            assert r.json() == (await client.get(path.replace(turn_id, str(uuid.uuid4())), headers=intruder)).json()
            for headers in ({}, {"X-User-Id": owner_id}, {"Authorization": "Bearer e30.e30.sig"}):
                r = await client.get(path, headers=headers)
                assert r.status_code == 401 and r.json()["error"] == "unauthenticated", (path, headers)
                assert r.headers["www-authenticate"].startswith("Bearer")
            # The page's HttpOnly cookie works like the header.
            client.cookies.set("wp_access", await identities.token("fb-owner"))
            assert (await client.get(path)).status_code == 200, path
            client.cookies.clear()
        # A session id nobody has analyses for: an empty list, whoever asks.
        r = await client.get(f"/api/v2/feedback/sessions/{uuid.uuid4()}/turns", headers=intruder)
        assert r.status_code == 200 and r.json() == []

    async with grpc.aio.insecure_channel(feedback.grpc_address) as channel:
        stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
        me, other = await identities.metadata("fb-owner"), await identities.metadata("fb-intruder")
        listed = await stub.ListSessionAnalyses(
            feedback_pb2.ListSessionAnalysesRequest(session_id=session_id), metadata=me
        )
        assert [a.turn_id for a in listed.analyses] == [turn_id] and listed.analyses[0].user_id == owner_id
        calls = {
            "GetTurnAnalysis": (stub.GetTurnAnalysis, feedback_pb2.GetTurnAnalysisRequest(turn_id=turn_id)),
            "ListSessionAnalyses": (
                stub.ListSessionAnalyses,
                feedback_pb2.ListSessionAnalysesRequest(session_id=session_id),
            ),
            "GetReport": (stub.GetReport, feedback_pb2.GetReportRequest(session_id=session_id)),
        }
        for name, (call, request) in calls.items():
            with pytest.raises(grpc.aio.AioRpcError) as foreign:
                await call(request, metadata=other)
            assert foreign.value.code() == grpc.StatusCode.NOT_FOUND, name
            assert "楽しみ" not in (foreign.value.details() or "")
        calls["GetStrengths"] = (stub.GetStrengths, feedback_pb2.GetStrengthsRequest(user_id=owner_id))
        for name, (call, request) in calls.items():
            for metadata in ((), (("authorization", "Bearer forged.token.value"),), (("x-user-id", owner_id),)):
                with pytest.raises(grpc.aio.AioRpcError) as anonymous:
                    await call(request, metadata=metadata)
                assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED, (name, metadata)
        empty = await stub.ListSessionAnalyses(
            feedback_pb2.ListSessionAnalysesRequest(session_id=str(uuid.uuid4())), metadata=other
        )
        assert list(empty.analyses) == []


@pytest.fixture(scope="session")
async def web(suffix, chat, feedback, identities):
    settings = WebSettings(
        pubsub_name_suffix=suffix,
        auth_jwks_url=identities.jwks_url,
        web_chat_grpc_addr=chat.grpc_address,
        web_feedback_grpc_addr=feedback.grpc_address,
    )
    async with running_service(build_web, settings) as svc:
        yield svc


async def _stream_cards(web_url: str, session_id: str, token: str | None, cards: list[str]) -> int:
    """Follow web's feedback stream with the page's cookie; collect the cards' turn ids into
    `cards` until cancelled; returns the status when the answer is not a stream."""
    cookies = {"wp_access": token} if token else {}
    async with httpx.AsyncClient(timeout=None, cookies=cookies) as client:
        async with client.stream("GET", f"{web_url}/events/sessions/{session_id}/feedback") as r:
            if r.status_code != 200:
                await r.aread()
                cards.append(r.text)
                return r.status_code
            async for line in r.aiter_lines():
                if 'data-turn-id="' in line:
                    cards.append(line.split('data-turn-id="', 1)[1].split('"', 1)[0])
    return 200


async def test_web_feedback_stream_is_the_learners_own(web, chat, feedback, identities):
    """Own session: its cards stream; another learner's: 404 before anything streams; no
    cookie or a forged one: 401 JSON. A session with no analyses yet streams for anyone who
    is signed in, but live analyses reach only their own learner."""
    session_id, turn_id = await _analysed_session(chat, identities, "web-owner")
    await _wait_analysed(feedback, identities, "web-owner", session_id)

    cards: list[str] = []
    watcher = asyncio.create_task(_stream_cards(web.http_url, session_id, await identities.token("web-owner"), cards))
    try:
        await wait_for(lambda: _async(turn_id in cards), timeout=15)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)

    for token, status in (
        (await identities.token("web-intruder"), 404),
        (None, 401),
        ("e30.e30.sig", 401),
    ):
        answer: list[str] = []
        assert await asyncio.wait_for(_stream_cards(web.http_url, session_id, token, answer), timeout=15) == status
        body = json.loads(answer[0])
        assert body["error"] == ("not_found" if status == 404 else "unauthenticated") and "楽しみ" not in answer[0]
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{web.http_url}/events/sessions/{session_id}/feedback", headers={"X-User-Id": "x"})
        assert r.status_code == 401

    # A new session (no analyses yet): both may connect, the live card goes to its learner only.
    fresh = str(uuid.uuid4())
    owner_cards: list[str] = []
    intruder_cards: list[str] = []
    watchers = [
        asyncio.create_task(_stream_cards(web.http_url, fresh, await identities.token("web-intruder"), intruder_cards)),
        asyncio.create_task(_stream_cards(web.http_url, fresh, await identities.token("web-owner"), owner_cards)),
    ]
    redis = create_redis(os.environ["WP_REDIS_URL"])
    try:
        await asyncio.sleep(1.0)  # both streams subscribe
        live = events_pb2.FeedbackReady(
            event_id=str(uuid.uuid4()),
            session_id=fresh,
            user_id=await identities.user_id("web-owner"),
            turn_id=str(uuid.uuid4()),
        )
        fanout = FeedbackFanout(redis)

        async def delivered():
            await fanout.on_feedback_ready(live)
            return live.turn_id in owner_cards

        await wait_for(delivered, timeout=15, interval=0.3)
        for _ in range(5):
            await fanout.on_feedback_ready(live)
            await asyncio.sleep(0.2)
        assert intruder_cards == [] and not any(w.done() for w in watchers)
    finally:
        for w in watchers:
            w.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        await redis.aclose()


async def test_pages_and_apis_in_a_browser_setting_csrf_headers_and_escaped_text(web, chat, feedback, identities):
    """Without the gateway: web's page sets the CSRF cookie and carries the security headers
    itself; chat refuses a cookie POST without the matching X-CSRF-Token; a learner's XSS
    payload comes back as JSON data from the API and escaped in web's HTML feedback card."""
    from workplace_kit.web_security import CSRF_COOKIE_NAME, CSRF_HEADER_NAME, SECURITY_HEADERS

    async with httpx.AsyncClient(timeout=60) as client:
        page = await client.get(web.http_url + "/")
        assert page.status_code == 200
        for name, value in SECURITY_HEADERS:
            assert page.headers.get_list(name) == [value], name
        csrf_cookie = next(c for c in page.headers.get_list("set-cookie") if c.startswith(f"{CSRF_COOKIE_NAME}="))
        assert "HttpOnly" not in csrf_cookie and "SameSite=strict" in csrf_cookie and "Secure" in csrf_cookie
        csrf = csrf_cookie.split(";", 1)[0].split("=", 1)[1]
        again = await client.get(web.http_url + "/", headers={"Cookie": f"{CSRF_COOKIE_NAME}={csrf}"})
        assert not any(c.startswith(CSRF_COOKIE_NAME) for c in again.headers.get_list("set-cookie")), "kept"

    payload = '<script>alert(1)</script> "><img src=x onerror=alert(1)> <a href="javascript:alert(1)">x</a>'
    cookie = f"wp_access={await identities.token('xss-learner')}; {CSRF_COOKIE_NAME}={csrf}"
    async with httpx.AsyncClient(timeout=60) as client:
        for headers in ({}, {CSRF_HEADER_NAME: "forged"}):
            r = await client.post(
                chat.http_url + "/api/v2/chat", json={"message": payload}, headers={"Cookie": cookie, **headers}
            )
            assert r.status_code == 403 and r.json()["error"] == "csrf", headers
        async with aconnect_sse(
            client,
            "POST",
            chat.http_url + "/api/v2/chat",
            json={"message": payload},
            headers={"Cookie": cookie, CSRF_HEADER_NAME: csrf},
        ) as source:
            assert source.response.status_code == 200
            events = [(e.event, json.loads(e.data)) async for e in source.aiter_sse()]
        session_id, turn_id = events[0][1]["session_id"], events[0][1]["user_turn_id"]
        stored = await client.get(f"{chat.http_url}/api/v2/chat/sessions/{session_id}", headers={"Cookie": cookie})
        assert stored.headers["content-type"] == "application/json"
        assert stored.json()["messages"][0]["text"] == payload

    await _wait_analysed(feedback, identities, "xss-learner", session_id)

    async def card() -> str:
        async with httpx.AsyncClient(timeout=None, headers={"Cookie": cookie}) as client:
            async with aconnect_sse(client, "GET", f"{web.http_url}/events/sessions/{session_id}/feedback") as source:
                async for event in source.aiter_sse():
                    if event.event == "feedback" and f'data-turn-id="{turn_id}"' in event.data:
                        return event.data
        raise AssertionError("the stream ended without the turn's card")

    html = await asyncio.wait_for(card(), timeout=30)
    assert "<script" not in html and "<img" not in html and "<a href" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;a href=&#34;javascript:alert(1)&#34;&gt;" in html


async def test_a_casual_turn_to_the_boss_gets_a_card_with_a_better_phrasing(chat, feedback, ready_events):
    """Through the real pipeline: chat publishes the turn with its partner, feedback checks the
    register against it and the card comes back over HTTP, gRPC and feedback.ready."""
    _, events = await sse_chat(chat.http_url, {"message": "資料送って", "partner": "boss", "situation": "morning"})
    session_id = events[0][1]["session_id"]
    turn_id = events[0][1]["user_turn_id"]
    mine = await LEARNERS[0].headers("learner-1")

    async def analysed():
        async with httpx.AsyncClient() as client:
            r = await client.get(f"{feedback.http_url}/api/v2/feedback/turns/{turn_id}", headers=mine)
            return r.json() if r.status_code == 200 else None

    body = await wait_for(analysed)
    card = body["card"]
    assert card["verdict"] == "too_casual"
    assert card["better_phrasing"] == "資料をお送りいただけますか。"
    assert card["did_well"] and "依頼" in card["to_change"]
    assert card["register_expected"] == "丁寧語・尊敬語・謙譲語"

    async with grpc.aio.insecure_channel(feedback.grpc_address) as channel:
        stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
        me = await LEARNERS[0].metadata("learner-1")
        one = await stub.GetTurnAnalysis(feedback_pb2.GetTurnAnalysisRequest(turn_id=turn_id), metadata=me)
        assert one.analysis.analysis.card.better_phrasing == "資料をお送りいただけますか。"

    ready = await wait_for(lambda: _async([e for e in ready_events if e.turn_id == turn_id]))
    assert ready[0].analysis.card.verdict == "too_casual" and ready[0].session_id == session_id
