"""The watch service on the real PostgreSQL, Redis and Pub/Sub emulator, with its worker: a model
dialogue produced one Pub/Sub message per turn and streamed over SSE, an intervention answered
by both characters, pause and resume, stop, the end when nobody watches, a duplicated turn
request, speech requests and audio readiness, what to notice, the owner check, gRPC, a topic
found by the scenario service, and Gemini (the wire-format stand-in) playing both speakers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import httpx
import pytest
from gemini_standin import GeminiStandIn, Reply
from httpx_sse import aconnect_sse
from scenario_service.app import build as build_scenario
from scenario_service.settings import ScenarioSettings
from support.services import running_service
from watch_service.app import build as build_watch
from watch_service.conversation import load_closings
from watch_service.scenario_search import GrpcScenarioFinder
from watch_service.settings import WatchSettings
from workplace.events.v1 import events_pb2
from workplace.scenario.v1 import scenario_pb2, scenario_pb2_grpc
from workplace.watch.v1 import watch_pb2, watch_pb2_grpc
from workplace_content import content
from workplace_kit.ai.gemini import GeminiDialogueEngine
from workplace_kit.bus import EventBus
from workplace_kit.topology import SUBSCRIPTIONS, SubscriptionSpec, Topology

API = "/api/v2/watch"
OVERTIME = content().scenario("decline-overtime")
NO_VIEWER_S = 4.0


@pytest.fixture(scope="module")
def suffix(run_id: str) -> str:
    return f".w{run_id}"


@pytest.fixture(scope="module")
async def bus(suffix):
    """The test's own view of the broker: what the service asks the TTS service to speak, and a
    way in for events (a duplicated turn request, the TTS service's audio-ready events)."""
    spec = SubscriptionSpec("test.observe-tts-requests", "tts.requests", consumer="test")
    events_bus = EventBus(
        "workplace-local",
        service_name="test-observer",
        topology=Topology(subscriptions=SUBSCRIPTIONS + (spec,), suffix=suffix),
    )
    await events_bus.provision(topics=["tts.requests", "tts.ready", "watch.turn-requests"])
    spoken: list[events_pb2.TtsRequest] = []

    async def keep(event, _envelope):
        spoken.append(event)

    sub = await events_bus.subscribe(spec.name, events_pb2.TtsRequest, keep)
    events_bus.spoken = spoken  # type: ignore[attr-defined]
    yield events_bus
    await sub.close()
    await events_bus.close()


@pytest.fixture(scope="module")
async def watch(identities, suffix, bus):
    settings = WatchSettings(
        ai_provider="offline",
        auth_jwks_url=identities.jwks_url,
        pubsub_name_suffix=suffix,
        watch_no_viewer_s=NO_VIEWER_S,
        watch_heartbeat_s=1.0,
        watch_poll_s=0.5,
    )
    async with running_service(build_watch, settings) as svc:
        async with httpx.AsyncClient(base_url=svc.http_url) as client:
            for _ in range(300):  # ready once e5 is loaded (the turn requests are pulled from then on)
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
        yield svc


class Viewer:
    """An open events stream of one dialogue, read in the background."""

    def __init__(self, client: httpx.AsyncClient, watch_id: str, headers: dict[str, str], after: int | None = None):
        self.events: list[tuple[str, dict]] = []
        self._arrived = asyncio.Event()
        params = {} if after is None else {"after": after}
        self._task = asyncio.create_task(self._read(client, watch_id, headers, params))

    async def _read(self, client, watch_id, headers, params) -> None:
        async with aconnect_sse(client, "GET", f"{API}/{watch_id}/events", headers=headers, params=params) as source:
            assert source.response.status_code == 200, await source.response.aread()
            assert source.response.headers["content-type"].startswith("text/event-stream")
            async for event in source.aiter_sse():
                self.events.append((event.event, json.loads(event.data)))
                self._arrived.set()

    def of(self, kind: str) -> list[dict]:
        return [data for name, data in self.events if name == kind]

    @property
    def turns(self) -> list[dict]:
        return self.of("turn")

    async def until(self, check, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self._task.done():
                self._task.result()
                if not check():
                    raise AssertionError(f"the stream closed first: {self.events}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"waited {timeout} s; events so far: {self.events}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, 0.5))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


@contextlib.asynccontextmanager
async def viewing(client, watch_id, headers, after=None) -> AsyncIterator[Viewer]:
    viewer = Viewer(client, watch_id, headers, after)
    try:
        yield viewer
    finally:
        await viewer.close()


async def eventually(check, timeout: float = 20.0) -> None:
    """Until check() holds (or the time is up; the caller's assertions then say what is missing)."""
    for _ in range(int(timeout * 10)):
        if check():
            return
        await asyncio.sleep(0.1)


async def start(client: httpx.AsyncClient, headers, **body) -> dict:
    answer = await client.post(
        API, json={"scenario_id": "decline-overtime", "pace_seconds": 1, **body}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_a_dialogue_streams_turn_by_turn_to_its_natural_end(watch, identities, bus) -> None:
    headers = await identities.headers("watch-learner")
    async with httpx.AsyncClient(base_url=watch.http_url, timeout=30) as client:
        started = await start(client, headers)
        assert started["status"] == "running" and started["paused"] is False
        assert started["title"] == OVERTIME.title.ja and started["scenario_id"] == "decline-overtime"
        assert (started["max_turns"], started["pace_seconds"], started["language"]) == (12, 1.0, "ja")
        assert [(s["id"], s["character_id"], s["display_name"]) for s in started["speakers"]] == [
            ("a", "section_manager", "鈴木 課長"),
            ("b", "colleague", "佐藤 美咲"),
        ]
        wid = started["watch_id"]
        began = time.monotonic()
        async with viewing(client, wid, headers) as viewer:
            await viewer.until(lambda: viewer.of("ended"), timeout=30)
        took = time.monotonic() - began
        turns = viewer.turns
        assert [t["turn_index"] for t in turns] == list(range(8)) and [t["speaker_id"] for t in turns] == ["a", "b"] * 4
        assert turns[0]["text"] == OVERTIME.opening.ja
        assert turns[-2]["text"] == OVERTIME.moves["offer_alternative"].replies.ja[0]
        assert turns[-1]["text"] in load_closings().lines["polite"]["ja"]
        assert viewer.of("ended") == [{"reason": "finished", "turn_count": 8}]
        assert viewer.of("state")[0] == {"paused": False, "pace_seconds": 1.0}
        assert 6 <= took < 20, took  # seven pauses of a second between eight turns, through the emulator

        stored = (await client.get(f"{API}/{wid}", headers=headers)).json()
        assert stored["status"] == "ended" and stored["ended_reason"] == "finished"
        assert [t["text"] for t in stored["turns"]] == [t["text"] for t in turns]
        assert set(stored["turns"][0]) == {
            "turn_id", "turn_index", "speaker_id", "text", "intervention", "audio_ready", "created_at",
        }  # fmt: skip

        # Resume a dropped stream: only what came after.
        async with viewing(client, wid, headers, after=5) as later:
            await later.until(lambda: later.of("ended"))
        assert [t["turn_index"] for t in later.turns] == [6, 7]

        notes = (await client.get(f"{API}/{wid}/notes", headers=headers)).json()
        assert notes["learning_points"] == list(OVERTIME.learning_points.ja)
        assert notes["summary"].startswith("「急な残業の依頼を断る」のお手本では、佐藤さんが")
        kinds = {n["kind"] for n in notes["notes"]}
        assert {"criterion", "cushion", "structure"} <= kinds, notes["notes"]
        assert all(n["speaker_id"] == "b" and n["phrase"] and n["why"] for n in notes["notes"])

        # Another learner sees none of it.
        stranger = await identities.headers("watch-stranger")
        for method, path, body in (
            ("GET", f"{API}/{wid}", None),
            ("GET", f"{API}/{wid}/events", None),
            ("GET", f"{API}/{wid}/notes", None),
            ("POST", f"{API}/{wid}/intervene", {"message": "こんにちは"}),
            ("POST", f"{API}/{wid}/control", {"paused": True}),
            ("POST", f"{API}/{wid}/stop", None),
        ):
            answer = await client.request(method, path, json=body, headers=stranger)
            assert answer.status_code == 404 and answer.json()["error"] == "not_found", (path, answer.text)
        assert (await client.get(f"{API}/{wid}")).status_code == 401
        late = await client.post(f"{API}/{wid}/intervene", json={"message": "まだ話したい"}, headers=headers)
        assert late.status_code == 409 and late.json()["error"] == "conflict"

    # Speech for every turn, ahead of time, in each character's voice. (The emulator can hold a
    # new subscription's first deliveries back for many seconds on a busy machine.)
    await eventually(lambda: len([s for s in bus.spoken if s.session_id == wid]) >= 8, timeout=90)
    spoken = sorted(
        (s for s in bus.spoken if s.session_id == wid), key=lambda s: [t["turn_id"] for t in turns].index(s.turn_id)
    )
    assert [s.text for s in spoken] == [t["text"] for t in turns]
    assert [s.character_id for s in spoken] == ["section_manager", "colleague"] * 4
    assert all(s.language == "ja" and s.request_id == s.turn_id and s.user_id for s in spoken)


async def test_an_intervention_is_answered_by_both_characters(watch, identities, bus) -> None:
    headers = await identities.headers("watch-intervener")
    message = "申し訳ありません、今日は子どもの迎えがあって残れないんです"
    async with httpx.AsyncClient(base_url=watch.http_url, timeout=30) as client:
        wid = (await start(client, headers, pace_seconds=2))["watch_id"]
        async with viewing(client, wid, headers) as viewer:
            await viewer.until(lambda: len(viewer.turns) >= 1)
            stepped = await client.post(f"{API}/{wid}/intervene", json={"message": message}, headers=headers)
            assert stepped.status_code == 201, stepped.text
            mine = stepped.json()
            assert set(mine) == {"turn_id", "turn_index"}
            index = mine["turn_index"]
            await viewer.until(lambda: len([t for t in viewer.turns if t["turn_index"] > index]) >= 2)
            # The audio of the opening is ready (as the TTS service would announce it).
            opening = viewer.turns[0]
            await bus.publish(
                events_pb2.TtsReady(
                    event_id=str(uuid.uuid4()),
                    request_id=opening["turn_id"],
                    session_id=wid,
                    turn_id=opening["turn_id"],
                    audio_key="tts:abc",
                    mime_type="audio/mpeg",
                )
            )
            await viewer.until(lambda: viewer.of("audio"))
            stop = await client.post(f"{API}/{wid}/stop", headers=headers)
            await viewer.until(lambda: viewer.of("ended"))
    assert stop.json() == {"turn_count": stop.json()["turn_count"], "already_stopped": False}
    turns = {t["turn_index"]: t for t in viewer.turns}
    learner, reply, bridge = turns[index], turns[index + 1], turns[index + 2]
    assert learner["intervention"] and learner["speaker_id"] == "" and learner["text"] == message
    assert learner["turn_id"] == mine["turn_id"]
    assert reply["speaker_id"] == "a" and reply["text"] in OVERTIME.moves["decline_with_reason"].replies.ja
    assert bridge["speaker_id"] == "b" and "「今日は子どもの迎えがあって残れないんです」" in bridge["text"]
    assert viewer.of("audio")[0] == {"turn_id": opening["turn_id"], "turn_index": 0}
    assert viewer.of("ended")[-1]["reason"] == "stopped"
    notes = (await client_get(watch, f"{API}/{wid}/notes", headers)).json()
    assert any(n["turn_index"] == index and n["kind"] == "criterion" for n in notes["notes"])  # the learner's own


async def client_get(watch, path: str, headers) -> httpx.Response:
    async with httpx.AsyncClient(base_url=watch.http_url, timeout=30) as client:
        return await client.get(path, headers=headers)


async def test_pause_stops_new_turns_resume_continues_and_a_duplicate_request_adds_nothing(
    watch, identities, bus
) -> None:
    headers = await identities.headers("watch-pauser")
    service = watch.app.state.service
    async with httpx.AsyncClient(base_url=watch.http_url, timeout=30) as client:
        wid = (await start(client, headers))["watch_id"]
        async with viewing(client, wid, headers) as viewer:
            await viewer.until(lambda: len(viewer.turns) >= 2)
            paused = await client.post(
                f"{API}/{wid}/control", json={"paused": True, "pace_seconds": 1.5}, headers=headers
            )
            assert paused.json() == {"paused": True, "pace_seconds": 1.5, "ended": False}
            await viewer.until(lambda: {"paused": True, "pace_seconds": 1.5} in viewer.of("state"))
            await asyncio.sleep(0.5)  # a turn already being written when the pause came may land
            count = len(viewer.turns)
            await asyncio.sleep(2.5)
            assert len(viewer.turns) == count, viewer.turns
            assert (await client.get(f"{API}/{wid}", headers=headers)).json()["status"] == "paused"

            resumed = await client.post(f"{API}/{wid}/control", json={"paused": False}, headers=headers)
            assert resumed.json() == {"paused": False, "pace_seconds": 1.5, "ended": False}
            # The same turn request twice (a redelivery under another event id): one turn.
            row = await service.repository.get(uuid.UUID(wid))
            twin = events_pb2.WatchTurnRequest(
                event_id=str(uuid.uuid4()),
                watch_id=wid,
                user_id=row.user_id,
                turn_index=count,
                speaker_id="a" if count % 2 == 0 else "b",
                language="ja",
                generation=row.generation,
            )
            await bus.publish(twin, ordering_key=wid)
            await viewer.until(lambda: len(viewer.turns) >= count + 2, timeout=20)
            await client.post(f"{API}/{wid}/stop", headers=headers)
            await viewer.until(lambda: viewer.of("ended"))
    indexes = [t["turn_index"] for t in viewer.turns]
    assert indexes == list(range(len(indexes))), indexes  # no index twice, none skipped
    stored = (await client_get(watch, f"{API}/{wid}", headers)).json()
    assert [t["turn_index"] for t in stored["turns"]] == indexes
    texts = [t["text"] for t in stored["turns"]]
    assert len(set(texts)) == len(texts)


async def test_nobody_watching_ends_the_dialogue(watch, identities) -> None:
    headers = await identities.headers("watch-leaver")
    async with httpx.AsyncClient(base_url=watch.http_url, timeout=30) as client:
        wid = (await start(client, headers))["watch_id"]
        async with viewing(client, wid, headers) as viewer:
            await viewer.until(lambda: len(viewer.turns) >= 2)
        seen = len(viewer.turns)
        deadline = time.monotonic() + NO_VIEWER_S + 10
        while time.monotonic() < deadline:
            stored = (await client.get(f"{API}/{wid}", headers=headers)).json()
            if stored["status"] == "ended":
                break
            await asyncio.sleep(0.5)
        assert stored["ended_reason"] == "no_viewer", stored
        # At most the turns within the grace time after the stream closed; none after the end.
        assert len(stored["turns"]) <= seen + int(NO_VIEWER_S) + 1
        await asyncio.sleep(2)
        assert len((await client.get(f"{API}/{wid}", headers=headers)).json()["turns"]) == len(stored["turns"])


async def test_bad_requests_are_refused_in_the_kits_error_format(watch, identities) -> None:
    headers = await identities.headers("watch-learner")
    async with httpx.AsyncClient(base_url=watch.http_url, timeout=30) as client:
        for body in (
            {},
            {"scenario_id": "decline-overtime", "pace_seconds": 0.5},
            {"scenario_id": "decline-overtime", "max_turns": 31},
            {"scenario_id": "decline-overtime", "language": "fr"},
        ):
            answer = await client.post(API, json=body, headers=headers)
            assert answer.status_code == 422 and answer.json()["error"] == "invalid_request", answer.text
        missing = await client.post(API, json={"scenario_id": "no-such-scenario"}, headers=headers)
        assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        harassment = next(s for s in content().scenarios if s.consent is not None)
        guarded = await client.post(API, json={"scenario_id": harassment.id}, headers=headers)
        assert guarded.status_code == 409 and guarded.json()["field"] == "scenario_id"
        unknown = await client.get(f"{API}/{uuid.uuid4()}", headers=headers)
        assert unknown.status_code == 404


async def test_the_same_dialogue_over_grpc(watch, identities) -> None:
    metadata = await identities.metadata("watch-grpc-learner")
    async with grpc.aio.insecure_channel(watch.grpc_address) as channel:
        stub = watch_pb2_grpc.WatchServiceStub(channel)
        started = await stub.StartWatch(
            watch_pb2.StartWatchRequest(situation="decline-overtime", language="en", pace_seconds=1, max_turns=6),
            metadata=metadata,
        )
        assert started.scenario_id == "decline-overtime" and started.title == OVERTIME.title.en
        assert [s.character_id for s in started.speakers] == ["section_manager", "colleague"]
        assert started.speakers[0].engine.id == "offline-retrieval" and started.max_turns == 6
        wid = started.watch_id
        stream = stub.StreamWatch(watch_pb2.StreamWatchRequest(watch_id=wid), metadata=metadata)
        seen: list[watch_pb2.StreamWatchResponse] = []

        async def read() -> None:
            async for event in stream:
                seen.append(event)

        reader = asyncio.create_task(read())
        try:
            await eventually(lambda: any(e.HasField("turn_completed") for e in seen))
            answer = await stub.Intervene(
                watch_pb2.InterveneRequest(watch_id=wid, message="Could I finish it first thing tomorrow?"),
                metadata=metadata,
            )
            assert answer.turn_index >= 1 and answer.turn_id
            control = await stub.ControlWatch(
                watch_pb2.ControlWatchRequest(watch_id=wid, pace_seconds=1.5), metadata=metadata
            )
            assert control.pace_seconds == 1.5 and not control.paused and not control.ended
            await eventually(
                lambda: (
                    any(e.HasField("ended") for e in seen)
                    or any(
                        e.turn_completed.turn_index > answer.turn_index + 1
                        for e in seen
                        if e.HasField("turn_completed")
                    )
                )
            )
            stopped = await stub.StopWatch(watch_pb2.StopWatchRequest(watch_id=wid), metadata=metadata)
            again = await stub.StopWatch(watch_pb2.StopWatchRequest(watch_id=wid), metadata=metadata)
            assert again.already_stopped and again.turn_count == stopped.turn_count
            await asyncio.wait_for(reader, timeout=10)
        finally:
            reader.cancel()
        completed = [e.turn_completed for e in seen if e.HasField("turn_completed")]
        assert completed[answer.turn_index].intervention and completed[answer.turn_index].speaker_id == ""
        assert completed[answer.turn_index + 1].speaker_id == "a"
        assert completed[answer.turn_index + 1].text in OVERTIME.moves["offer_alternative"].replies.en
        assert seen[-1].HasField("ended") and seen[-1].ended.reason in ("stopped", "finished")
        assert any(e.HasField("state") and e.state.pace_seconds == 1.5 for e in seen)

        resumed = stub.StreamWatch(watch_pb2.StreamWatchRequest(watch_id=wid, after_turn_index=1), metadata=metadata)
        later = [e async for e in resumed]
        assert later[0].turn_completed.turn_index == 2 and later[-1].HasField("ended")

        notes = await stub.GetWatchNotes(watch_pb2.GetWatchNotesRequest(watch_id=wid), metadata=metadata)
        assert notes.summary and list(notes.learning_points) == list(OVERTIME.learning_points.en)
        assert all(n.phrase and n.why and n.kind for n in notes.notes)

        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.StopWatch(watch_pb2.StopWatchRequest(watch_id=wid))
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.aio.AioRpcError) as stranger:
            await stub.GetWatchNotes(
                watch_pb2.GetWatchNotesRequest(watch_id=wid), metadata=await identities.metadata("watch-stranger")
            )
        assert stranger.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await stub.Intervene(watch_pb2.InterveneRequest(watch_id=wid, message="hello?"), metadata=metadata)
        assert late.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.fixture(scope="module")
async def scenario(identities, suffix):
    settings = ScenarioSettings(ai_provider="offline", auth_jwks_url=identities.jwks_url, pubsub_name_suffix=suffix)
    async with running_service(build_scenario, settings) as svc:
        async with httpx.AsyncClient(base_url=svc.http_url) as client:
            for _ in range(600):  # ready once the catalogue is in the database
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.1)
        yield svc


async def test_a_topic_is_played_as_the_nearest_scenario_found_by_the_scenario_service(
    watch, scenario, identities
) -> None:
    finder = watch.app.state.service.finder  # the scenario service, else the catalogue in-process
    primary = finder.primary
    topic = "上司からの急な残業を断りたい"
    headers = await identities.headers("watch-topic-learner")
    try:
        finder.primary = GrpcScenarioFinder(scenario.grpc_address)
        async with grpc.aio.insecure_channel(scenario.grpc_address) as channel:
            found = await scenario_pb2_grpc.ScenarioServiceStub(channel).SearchScenarios(
                scenario_pb2.SearchScenariosRequest(query=topic, limit=5)
            )
        expected = next(m.scenario for m in found.matches if not m.scenario.HasField("consent"))
        async with httpx.AsyncClient(base_url=watch.http_url, timeout=30) as client:
            answer = await client.post(API, json={"topic": topic, "language": "en"}, headers=headers)
            assert answer.status_code == 201, answer.text
            started = answer.json()
            await client.post(f"{API}/{started['watch_id']}/stop", headers=headers)
        assert started["scenario_id"] == expected.id and started["title"] == content().scenario(expected.id).title.en
        await finder.primary.aclose()

        # The scenario service cannot be reached: the shipped catalogue is searched in-process.
        finder.primary = GrpcScenarioFinder(f"127.0.0.1:{_closed_port()}", timeout_s=2)
        async with httpx.AsyncClient(base_url=watch.http_url, timeout=30) as client:
            answer = await client.post(API, json={"topic": topic}, headers=headers)
            assert answer.status_code == 201, answer.text
            await client.post(f"{API}/{answer.json()['watch_id']}/stop", headers=headers)
        assert answer.json()["scenario_id"] == "decline-overtime"
        await finder.primary.aclose()
    finally:
        finder.primary = primary


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_with_gemini_both_speakers_are_played_from_their_personas(watch, identities) -> None:
    """The Gemini engine (its real client, against the wire-format stand-in) plays b and a; the
    scenario's script still reads the moves; the opening stays the scenario's own line."""
    service = watch.app.state.service
    with GeminiStandIn() as standin:
        engine_settings = WatchSettings(
            ai_provider="gemini",
            gemini_api_keys=["test-key-1"],
            gemini_base_url=standin.base_url,
            gemini_retry_attempts=2,
            gemini_retry_initial_delay_s=0.01,
            gemini_retry_max_delay_s=0.02,
        )
        offline, service.generative = service.generative, GeminiDialogueEngine(engine_settings)
        standin.script(
            Reply(["佐藤：申し訳ありません、今夜は家族の用事があって、", "19時には出なければならないんです。"])
        )
        standin.script(Reply(["そうか、家族の用事なら仕方ないね。じゃあ明日の朝、少し早めにお願いできる？"]))
        headers = await identities.headers("watch-gemini-learner")
        try:
            async with httpx.AsyncClient(base_url=watch.http_url, timeout=30) as client:
                wid = (await start(client, headers, max_turns=3))["watch_id"]
                async with viewing(client, wid, headers) as viewer:
                    await viewer.until(lambda: viewer.of("ended"), timeout=30)
        finally:
            await service.generative.pool.aclose()
            service.generative = offline
        sent = [r for r in standin.requests if "streamGenerateContent" in r.path]
    turns = viewer.turns
    assert [t["speaker_id"] for t in turns] == ["a", "b", "a"]
    assert turns[0]["text"] == OVERTIME.opening.ja  # authored: no call
    assert turns[1]["text"] == "申し訳ありません、今夜は家族の用事があって、19時には出なければならないんです。"
    assert turns[2]["text"].startswith("そうか、家族の用事なら仕方ないね。") and turns[2]["text"].endswith(
        OVERTIME.closing.ja
    )
    assert viewer.of("ended")[0]["reason"] == "max_turns"
    assert len(sent) == 2
    b_instruction = sent[0].body["systemInstruction"]["parts"][0]["text"]
    assert "佐藤 美咲" in b_instruction and "入社3年目の担当者" in b_instruction and OVERTIME.goal.ja in b_instruction
    assert sent[0].body["contents"][-1]["parts"][0]["text"] == OVERTIME.opening.ja
    a_instruction = sent[1].body["systemInstruction"]["parts"][0]["text"]
    assert "鈴木 課長" in a_instruction and OVERTIME.situation.ja in a_instruction
    assert [c["role"] for c in sent[1].body["contents"]] == ["model", "user"]
    stored = await watch.app.state.service.repository.turns(uuid.UUID(wid))
    assert stored[1].engine_id == "gemini" and stored[1].move == "decline_with_reason"
