"""The scenario service on the real PostgreSQL (pgvector), Redis and Pub/Sub emulator, offline:
the catalogue (list, filter, search by meaning) and roleplay sessions played from each
scenario's own script, over HTTP and gRPC, with the events they publish; and the feedback
service's coaching report written from those events."""

from __future__ import annotations

import asyncio
import json

import grpc
import httpx
import pytest
from chat_service.app import build as build_chat
from chat_service.settings import ChatSettings
from feedback_service.app import build as build_feedback
from feedback_service.settings import FeedbackSettings
from gemini_standin import GeminiStandIn, Reply
from httpx_sse import aconnect_sse
from scenario_service.app import build as build_scenario
from scenario_service.settings import ScenarioSettings
from support.services import running_service
from workplace.events.v1 import events_pb2
from workplace.feedback.v1 import feedback_pb2, feedback_pb2_grpc
from workplace.scenario.v1 import scenario_pb2, scenario_pb2_grpc
from workplace_content import content
from workplace_kit.bus import EventBus
from workplace_kit.topology import SUBSCRIPTIONS, SubscriptionSpec, Topology

API = "/api/v2/scenario"
OBSERVED = {"conversation.turns": events_pb2.ConversationTurn, "session.ended": events_pb2.SessionEnded}


@pytest.fixture(scope="module")
def suffix(run_id: str) -> str:
    return f".s{run_id}"


@pytest.fixture(scope="module")
async def observed(suffix):
    """Every turn and session-end event the service publishes during these tests."""
    received: dict[str, list] = {name: [] for name in OBSERVED}
    specs = tuple(SubscriptionSpec(f"test.observe-{name}", name, consumer="test") for name in OBSERVED)
    bus = EventBus(
        "workplace-local",
        service_name="test-observer",
        topology=Topology(subscriptions=SUBSCRIPTIONS + specs, suffix=suffix),
    )
    await bus.provision(topics=list(OBSERVED))
    subs = []
    for spec in specs:

        async def keep(event, _envelope, topic=spec.topic):
            received[topic].append(event)

        subs.append(await bus.subscribe(spec.name, OBSERVED[spec.topic], keep))
    yield received
    for sub in subs:
        await sub.close()
    await bus.close()


@pytest.fixture(scope="module")
async def scenario(identities, suffix, observed):
    settings = ScenarioSettings(ai_provider="offline", auth_jwks_url=identities.jwks_url, pubsub_name_suffix=suffix)
    async with running_service(build_scenario, settings) as svc:
        async with httpx.AsyncClient(base_url=svc.http_url, timeout=30) as client:
            for _ in range(300):  # ready once the catalogue is synced into the database
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.2)
        yield svc


async def send(client: httpx.AsyncClient, session_id: str, message: str, headers) -> dict:
    done: dict = {}
    async with aconnect_sse(
        client, "POST", f"{API}/sessions/{session_id}/messages", json={"message": message}, headers=headers
    ) as source:
        assert source.response.status_code == 200, await source.response.aread()
        async for event in source.aiter_sse():
            assert event.event != "error", event.data
            if event.event == "done":
                done = json.loads(event.data)
    return done


async def test_the_catalogue_lists_filters_and_pages(scenario) -> None:
    catalogue = content()
    async with httpx.AsyncClient(base_url=scenario.http_url) as client:
        everything = (await client.get(f"{API}/scenarios", params={"page_size": 100})).json()
        assert everything["total"] == len(catalogue.scenarios) and len(everything["scenarios"]) == everything["total"]
        assert [s["id"] for s in everything["scenarios"]] == [s.id for s in catalogue.scenarios]
        counts = {c["id"]: c["scenario_count"] for c in everything["categories"]}
        assert sum(counts.values()) == everything["total"]

        declining = (await client.get(f"{API}/scenarios", params={"category": "declining", "lang": "en"})).json()
        assert declining["total"] == counts["declining"] >= 1
        assert all(s["category"] == "declining" for s in declining["scenarios"])
        assert declining["scenarios"][0]["title"] == catalogue.scenario(declining["scenarios"][0]["id"]).title.en

        advanced = (await client.get(f"{API}/scenarios", params={"difficulty": "advanced", "page_size": 100})).json()
        assert {s["difficulty"] for s in advanced["scenarios"]} == {"advanced"}
        tagged = (await client.get(f"{API}/scenarios", params={"tag": "残業"})).json()
        assert "decline-overtime" in {s["id"] for s in tagged["scenarios"]}

        first = (await client.get(f"{API}/scenarios", params={"page_size": 2})).json()
        second = (
            await client.get(f"{API}/scenarios", params={"page_size": 2, "page_token": first["next_page_token"]})
        ).json()
        assert [s["id"] for s in first["scenarios"] + second["scenarios"]] == [s.id for s in catalogue.scenarios[:4]]

        # A scenario in the table that this process cannot play (a newer release's, mid-rollout)
        # is neither listed nor counted.
        pool = scenario.app.state.service.store.pool
        await pool.execute(
            "INSERT INTO scenarios (scenario_id, position, category, difficulty, document, digest, model_version) "
            "VALUES ('from-the-future', 999, 'declining', 'beginner', '{}', 'x', 'x')"
        )
        try:
            later = (await client.get(f"{API}/scenarios", params={"page_size": 100})).json()
            assert later["total"] == everything["total"] and later["categories"] == everything["categories"]
        finally:
            await pool.execute("DELETE FROM scenarios WHERE scenario_id = 'from-the-future'")

        # The categories and the page token's form are in the published schema: refused by it.
        for params in ({"page_token": "x"}, {"category": "karaoke"}):
            bad = await client.get(f"{API}/scenarios", params=params)
            assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/json"), bad.text
        assert (await client.get(f"{API}/scenarios/no-such-scenario")).status_code == 404


@pytest.mark.parametrize(
    ("query", "category"),
    [
        ("断り方を練習したい", "declining"),
        ("how to say no to my boss asking for overtime", "declining"),
        ("怒っているお客様への対応", "customer"),
        ("reporting a mistake I made", "reporting"),
    ],
)
async def test_search_by_meaning_finds_the_scenarios_in_either_language(scenario, query: str, category: str) -> None:
    async with httpx.AsyncClient(base_url=scenario.http_url) as client:
        matches = (await client.get(f"{API}/search", params={"q": query, "limit": 3})).json()
    assert len(matches) == 3 and matches[0]["score"] >= matches[-1]["score"]
    assert category in {m["scenario"]["category"] for m in matches}, [m["scenario"]["id"] for m in matches]


async def test_search_over_grpc_and_its_errors(scenario) -> None:
    async with grpc.aio.insecure_channel(scenario.grpc_address) as channel:
        stub = scenario_pb2_grpc.ScenarioServiceStub(channel)
        found = await stub.SearchScenarios(
            scenario_pb2.SearchScenariosRequest(query="残業を断りたい", limit=3, language="en")
        )
        assert "decline-overtime" in [m.scenario.id for m in found.matches]
        assert found.matches[0].scenario.language == "en"
        one = await stub.GetScenario(scenario_pb2.GetScenarioRequest(scenario_id="decline-overtime"))
        assert one.scenario.character_id == "section_manager" and len(one.scenario.criteria) >= 2
        for call, request, code in (
            (stub.SearchScenarios, scenario_pb2.SearchScenariosRequest(query="  "), grpc.StatusCode.INVALID_ARGUMENT),
            (stub.GetScenario, scenario_pb2.GetScenarioRequest(scenario_id="nope"), grpc.StatusCode.NOT_FOUND),
            (stub.ListScenarios, scenario_pb2.ListScenariosRequest(page_token="x"), grpc.StatusCode.INVALID_ARGUMENT),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await call(request)
            assert failure.value.code() == code


async def test_a_roleplay_follows_the_learners_moves_to_its_natural_end(scenario, identities, observed) -> None:
    headers = await identities.headers("scenario-learner")
    async with httpx.AsyncClient(base_url=scenario.http_url, timeout=30) as client:
        started = await client.post(f"{API}/sessions", json={"scenario_id": "decline-overtime"}, headers=headers)
        assert started.status_code == 201, started.text
        session = started.json()
        sid = session["session_id"]
        assert [t["role"] for t in session["turns"]] == ["model"]
        assert session["turns"][0]["text"] == content().scenario("decline-overtime").opening.ja

        first = await send(client, sid, "申し訳ありません、今夜は子どもの迎えがあって残れないんです", headers)
        assert first["move"] == "decline_with_reason" and not first["session_ended"]
        assert first["text"] in content().scenario("decline-overtime").moves["decline_with_reason"].replies.ja
        second = await send(client, sid, "明日の朝8時に来て、会議の前に仕上げるのはどうでしょうか", headers)
        assert second["move"] == "offer_alternative" and second["session_ended"] and second["end_reason"] == "completed"

        late = await client.post(f"{API}/sessions/{sid}/messages", json={"message": "まだ話したい"}, headers=headers)
        assert late.status_code == 409 and late.json()["error"] == "conflict"
        stored = (await client.get(f"{API}/sessions/{sid}", headers=headers)).json()
        assert [t["move"] for t in stored["turns"] if t["role"] == "user"] == [
            "decline_with_reason",
            "offer_alternative",
        ]
        assert stored["end_reason"] == "completed" and stored["ended_at"]
        stranger = await client.get(f"{API}/sessions/{sid}", headers=await identities.headers("someone-else"))
        assert stranger.status_code == 404
        ended_again = (await client.post(f"{API}/sessions/{sid}/end", headers=headers)).json()
        assert ended_again["already_ended"] and ended_again["turn_count"] == 2

    for _ in range(600):  # the emulator delivers within a second or two, slower under a full run's load
        turns = [e for e in observed["conversation.turns"] if e.session_id == sid]
        ends = [e for e in observed["session.ended"] if e.session_id == sid]
        if len(turns) == 2 and ends:
            break
        await asyncio.sleep(0.1)
    assert [t.move for t in sorted(turns, key=lambda t: t.turn_index)] == ["decline_with_reason", "offer_alternative"]
    assert all(t.source_service == "scenario" and t.situation == "decline-overtime" for t in turns)
    assert len(ends) == 1 and ends[0].reason == "completed" and ends[0].turn_count == 2


async def test_consent_first_and_a_session_over_grpc(scenario, identities, observed) -> None:
    guarded = next(s for s in content().scenarios if s.consent is not None)  # the harassment set
    metadata = await identities.metadata("scenario-grpc-learner")
    async with grpc.aio.insecure_channel(scenario.grpc_address) as channel:
        stub = scenario_pb2_grpc.ScenarioServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.StartSession(scenario_pb2.StartSessionRequest(scenario_id=guarded.id), metadata=metadata)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        agreed = await stub.StartSession(
            scenario_pb2.StartSessionRequest(scenario_id=guarded.id, consent_given=True), metadata=metadata
        )
        assert agreed.scenario.consent.help
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.StartSession(scenario_pb2.StartSessionRequest(scenario_id="decline-overtime"))
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED

        started = await stub.StartSession(
            scenario_pb2.StartSessionRequest(scenario_id="decline-overtime", language="en"), metadata=metadata
        )
        assert started.opening_message == content().scenario("decline-overtime").opening.en
        events = [
            e
            async for e in stub.StreamReply(
                scenario_pb2.StreamReplyRequest(session_id=started.session_id, message="No way, I'm going home."),
                metadata=metadata,
            )
        ]
        done = events[-1].done
        assert events[0].HasField("started") and done.move == "refuse_flatly" and not done.session_ended
        ended = await stub.EndSession(scenario_pb2.EndSessionRequest(session_id=started.session_id), metadata=metadata)
        again = await stub.EndSession(scenario_pb2.EndSessionRequest(session_id=started.session_id), metadata=metadata)
        assert ended.turn_count == 1 and not ended.already_ended and again.already_ended
        read = await stub.GetSession(scenario_pb2.GetSessionRequest(session_id=started.session_id), metadata=metadata)
        assert [t.text for t in read.turns][-1] == done.text and read.end_reason == "user"

    for _ in range(600):
        ends = [e for e in observed["session.ended"] if e.session_id == started.session_id]
        if ends:
            break
        await asyncio.sleep(0.1)
    assert len(ends) == 1 and ends[0].reason == "user" and ends[0].language == "en"


async def test_the_turn_limit_closes_the_scenario(scenario, identities) -> None:
    headers = await identities.headers("scenario-long-talker")
    limit = content().scenario("decline-overtime").max_turns
    async with httpx.AsyncClient(base_url=scenario.http_url, timeout=30) as client:
        sid = (await client.post(f"{API}/sessions", json={"scenario_id": "decline-overtime"}, headers=headers)).json()[
            "session_id"
        ]
        replies = [await send(client, sid, "何ページくらいありますか？", headers) for _ in range(limit)]
    assert not any(r["session_ended"] for r in replies[:-1])
    assert replies[-1]["session_ended"] and replies[-1]["end_reason"] == "timeout"
    assert replies[-1]["text"].endswith(content().scenario("decline-overtime").closing.ja)


@pytest.fixture(scope="module")
async def feedback(identities, suffix):
    settings = FeedbackSettings(ai_provider="offline", auth_jwks_url=identities.jwks_url, pubsub_name_suffix=suffix)
    async with running_service(build_feedback, settings) as svc:
        yield svc


async def play(client: httpx.AsyncClient, headers, messages: list[str], scenario_id: str = "decline-overtime") -> str:
    sid = (await client.post(f"{API}/sessions", json={"scenario_id": scenario_id}, headers=headers)).json()[
        "session_id"
    ]
    for message in messages:
        if (await send(client, sid, message, headers))["session_ended"]:
            break
    else:
        await client.post(f"{API}/sessions/{sid}/end", headers=headers)
    return sid


async def report_of(feedback, sid: str, headers, timeout_s: float = 60) -> dict:
    async with httpx.AsyncClient(base_url=feedback.http_url) as client:
        for _ in range(int(timeout_s * 5)):
            answer = await client.get(f"/api/v2/feedback/sessions/{sid}/report", headers=headers)
            if answer.status_code == 200:
                return answer.json()
            assert answer.status_code == 404, answer.text
            await asyncio.sleep(0.2)
    raise AssertionError(f"no report for {sid} after {timeout_s} s")


async def test_an_ended_roleplay_gets_a_coaching_report_with_evidence(scenario, feedback, identities) -> None:
    """Scenario → conversation.turns + session.ended → feedback: the better conversation scores
    higher, every score cites the learner's own words, the scenario's criteria are scored."""
    headers = await identities.headers("scenario-coached")
    good = [
        "お忙しいところ申し訳ありません。今夜は家族の用事があるので、19時には出なければならないんです。",
        "でしたら、明日の朝8時に来て、9時半までに仕上げるのはいかがでしょうか。",
    ]
    poor = ["無理です。", "は？自分でやればいいじゃないですか", "帰ります"]
    async with httpx.AsyncClient(base_url=scenario.http_url, timeout=30) as client:
        good_id = await play(client, headers, good)
        poor_id = await play(client, headers, poor)
    better, worse = await report_of(feedback, good_id, headers), await report_of(feedback, poor_id, headers)
    assert better["overall"] > worse["overall"] + 1, (better["summary"], worse["summary"])
    assert better["end_reason"] == "completed" and worse["end_reason"] == "user"
    assert {c["id"]: c["status"] for c in better["criteria"]}["alternative"] == "met"
    assert {c["id"]: c["status"] for c in worse["criteria"]}["alternative"] == "missed"
    quoted = {e["quote"] for s in worse["skills"] + worse["criteria"] for e in s["evidence"]}
    assert quoted and quoted <= set(poor)
    politeness = {s["id"]: s for s in worse["skills"]}["politeness"]
    assert politeness["score"] <= 2 and politeness["better_phrasing"]
    assert better["summary"].startswith("急な残業の依頼を断る") and better["title"] == "急な残業の依頼を断る"

    stranger = await identities.headers("someone-else")
    async with httpx.AsyncClient(base_url=feedback.http_url) as client:
        assert (await client.get(f"/api/v2/feedback/sessions/{good_id}/report", headers=stranger)).status_code == 404
    async with grpc.aio.insecure_channel(feedback.grpc_address) as channel:
        stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
        answer = await stub.GetReport(
            feedback_pb2.GetReportRequest(session_id=good_id), metadata=await identities.metadata("scenario-coached")
        )
        assert answer.report.overall == pytest.approx(better["overall"]) and answer.report.skills[0].meaning


async def test_a_retry_is_compared_and_the_journal_and_strengths_follow(scenario, feedback, identities) -> None:
    headers = await identities.headers("scenario-progress")
    async with httpx.AsyncClient(base_url=scenario.http_url, timeout=30) as client:
        first = await play(client, headers, ["無理です。", "帰ります"])
        second = await play(
            client,
            headers,
            [
                "申し訳ありません、今夜は家族の用事があるので残れないんです。",
                "明日の朝8時に来て、9時半までに仕上げるのはいかがでしょうか。",
            ],
        )
    await report_of(feedback, first, headers)
    await report_of(feedback, second, headers)
    async with httpx.AsyncClient(base_url=feedback.http_url) as client:
        attempts = (
            await client.get("/api/v2/feedback/journal", params={"scenario_id": "decline-overtime"}, headers=headers)
        ).json()
        assert [e["session_id"] for e in attempts["entries"]] == [second, first]  # newest first
        assert attempts["entries"][0]["title"] == "急な残業の依頼を断る" and attempts["entries"][0]["duration_s"] >= 0

        compared = (
            await client.get("/api/v2/feedback/compare", params={"before": first, "after": second}, headers=headers)
        ).json()
        assert compared["after"]["overall"] > compared["before"]["overall"]
        criteria = {c["id"]: (c["before"], c["after"]) for c in compared["criteria"]}
        assert criteria["alternative"] == (1, 5) and criteria["reason"] == (1, 5)
        assert any(s["delta"] > 0 for s in compared["skills"]) and all(s["delta"] >= 0 for s in compared["skills"])

        exported = await client.get("/api/v2/feedback/journal.csv", params={"lang": "en"}, headers=headers)
        assert exported.headers["content-type"].startswith("text/csv")
        rows = exported.text.lstrip("\ufeff").splitlines()
        assert rows[0].startswith("ended at,practice,kind") and len(rows) == 3
        assert "Declining a sudden request for overtime" in rows[1]

        found = (await client.get("/api/v2/feedback/strengths", headers=headers)).json()
        assert found["session_count"] == 2 and all(len(s["points"]) == 2 for s in found["skills"])
        assert found["weakest"] and found["advice"] and found["practice_query"]
        assert found["recent_scenario_ids"] == ["decline-overtime"]  # not suggested again
        assert (
            await client.get("/api/v2/feedback/compare", params={"before": first, "after": second})
        ).status_code == 401
        stranger = await identities.headers("someone-else")
        assert (await client.get("/api/v2/feedback/journal", headers=stranger)).json()["total"] == 0
    async with httpx.AsyncClient(base_url=scenario.http_url) as client:
        suggested = (await client.get(f"{API}/search", params={"q": found["practice_query"], "limit": 3})).json()
    assert len(suggested) == 3  # what to practise next, by meaning
    async with grpc.aio.insecure_channel(feedback.grpc_address) as channel:
        strengths = await feedback_pb2_grpc.FeedbackServiceStub(channel).GetStrengths(
            feedback_pb2.GetStrengthsRequest(), metadata=await identities.metadata("scenario-progress")
        )
    assert strengths.session_count == 2 and len(strengths.strengths) == 6
    assert [s.name for s in strengths.strengths] == [s["id"] for s in found["skills"]]  # strongest first
    assert all(0 <= s.score <= 100 and s.label for s in strengths.strengths)


@pytest.fixture(scope="module")
async def chat(identities, suffix):
    settings = ChatSettings(ai_provider="offline", auth_jwks_url=identities.jwks_url, pubsub_name_suffix=suffix)
    async with running_service(build_chat, settings) as svc:
        yield svc


async def test_an_ended_free_chat_gets_a_report_and_takes_no_more_messages(chat, feedback, identities) -> None:
    headers = await identities.headers("free-chat-ender")
    async with httpx.AsyncClient(base_url=chat.http_url, timeout=30) as client:
        session_id = ""
        for message in (
            "おはようございます！週末は何をしていたんですか？",
            "なるほど、いいですね。ありがとうございます",
        ):
            async with aconnect_sse(
                client,
                "POST",
                "/api/v2/chat",
                json={"message": message, "session_id": session_id, "partner": "senior"},
                headers=headers,
            ) as source:
                async for event in source.aiter_sse():
                    if event.event == "done":
                        session_id = json.loads(event.data)["session_id"]
        ended = (await client.post(f"/api/v2/chat/sessions/{session_id}/end", headers=headers)).json()
        assert ended["turn_count"] == 2 and not ended["already_ended"]
        again = (await client.post(f"/api/v2/chat/sessions/{session_id}/end", headers=headers)).json()
        assert again["already_ended"] and again["ended_at"] == ended["ended_at"]
        late = await client.post(
            "/api/v2/chat", json={"message": "まだ話したい", "session_id": session_id}, headers=headers
        )
        assert late.status_code == 409
        history = (await client.get(f"/api/v2/chat/sessions/{session_id}", headers=headers)).json()
        assert history["ended_at"] == ended["ended_at"]
    report = await report_of(feedback, session_id, headers)
    assert report["source_service"] == "chat" and report["criteria"] == [] and report["turn_count"] == 2
    assert report["summary"].startswith("雑談練習")


@pytest.fixture(scope="module")
def standin():
    with GeminiStandIn() as server:
        yield server


@pytest.fixture(scope="module")
async def gemini_scenario(identities, suffix, standin):
    settings = ScenarioSettings(
        ai_provider="gemini",
        gemini_api_keys=["test-key-1"],
        gemini_base_url=standin.base_url,
        gemini_retry_attempts=2,
        gemini_retry_initial_delay_s=0.01,
        gemini_retry_max_delay_s=0.02,
        scenario_history_turns=1,
        auth_jwks_url=identities.jwks_url,
        pubsub_name_suffix=suffix,
    )
    async with running_service(build_scenario, settings) as svc:
        async with httpx.AsyncClient(base_url=svc.http_url) as client:
            for _ in range(300):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.2)
        yield svc


async def test_with_gemini_the_character_is_played_from_the_scenario_file(gemini_scenario, standin, identities) -> None:
    """Gemini speaks as the scenario's character in its situation; the scenario's script still
    reads the learner's move; older turns reach Gemini condensed in its instruction."""
    standin.reset()
    headers = await identities.headers("scenario-gemini")
    async with httpx.AsyncClient(base_url=gemini_scenario.http_url, timeout=30) as client:
        sid = (await client.post(f"{API}/sessions", json={"scenario_id": "decline-overtime"}, headers=headers)).json()[
            "session_id"
        ]
        standin.script(Reply(["そうか、用事があるんだね。"]))
        first = await send(client, sid, "申し訳ありません、今夜は子どもの迎えがあって残れないんです", headers)
        assert first["text"] == "そうか、用事があるんだね。" and first["move"] == "decline_with_reason"
        standin.script(Reply(["何ページかというと、5枚くらいかな。"]))
        await send(client, sid, "何ページくらいありますか？", headers)
        standin.script(Reply(["明日の朝か。それなら間に合うね、お願いするよ。"]))
        last = await send(client, sid, "明日の朝8時に来て仕上げるのはいかがでしょうか", headers)
    assert last["move"] == "offer_alternative" and last["session_ended"]

    sent = [r for r in standin.requests if "streamGenerateContent" in r.path]
    assert len(sent) == 3
    instruction = sent[0].body["systemInstruction"]["parts"][0]["text"]
    assert "鈴木 課長" in instruction and "明日の部長会議" not in instruction  # the character, not the answers
    assert content().scenario("decline-overtime").situation.ja in instruction
    # The third request: one exchange kept as it was, the older ones condensed into the instruction.
    third = sent[2].body
    assert len(third["contents"]) == 3  # the last exchange (2 turns) and the new message
    assert (
        "learner: 申し訳ありません、今夜は子どもの迎えがあって残れないんです"
        in third["systemInstruction"]["parts"][0]["text"]
    )
