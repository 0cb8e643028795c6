"""The TTS service on the real Redis, PostgreSQL and Pub/Sub emulator, offline (Open JTalk,
Kokoro, Piper): each character's voice in Japanese and English, the audio cache (Redis, and a
directory for big audio), bad input, the streamed form, gRPC, and tts.requests answered on
tts.ready exactly once in effect."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import grpc
import httpx
import pytest
from gemini_standin import Fail, GeminiStandIn
from prometheus_client import REGISTRY
from support.services import running_service
from tts_service.app import build
from tts_service.audio import mp3_frames
from tts_service.settings import TtsSettings
from workplace.events.v1 import events_pb2
from workplace.tts.v1 import tts_pb2, tts_pb2_grpc
from workplace_kit.bus import EventBus
from workplace_kit.topology import SUBSCRIPTIONS, SubscriptionSpec, Topology

API = "/api/v2/tts"
OBSERVER = SubscriptionSpec("test.observe-tts-ready", "tts.ready", consumer="test")


@pytest.fixture(scope="module")
def suffix(run_id: str) -> str:
    return f".tts{run_id}"


@pytest.fixture(scope="module")
async def bus(suffix):
    bus = EventBus(
        "workplace-local",
        service_name="test-tts-client",
        topology=Topology(subscriptions=SUBSCRIPTIONS + (OBSERVER,), suffix=suffix),
    )
    await bus.provision(topics=["tts.requests", "tts.ready"])
    yield bus
    await bus.close()


@pytest.fixture(scope="module")
async def ready_events(bus):
    """Every tts.ready event the service publishes during these tests."""
    received: list[events_pb2.TtsReady] = []

    async def keep(event, _envelope):
        received.append(event)

    sub = await bus.subscribe(OBSERVER.name, events_pb2.TtsReady, keep)
    yield received
    await sub.close()


@pytest.fixture(scope="module")
async def tts(identities, suffix, ready_events, tmp_path_factory):
    settings = TtsSettings(
        ai_provider="offline",
        auth_jwks_url=identities.jwks_url,
        pubsub_name_suffix=suffix,
        tts_cache_dir=tmp_path_factory.mktemp("tts-cache"),
        # Redis outlives test runs: a cache namespace of this run's own, so "not cached yet" holds
        # on a second run too.
        tts_cache_namespace=f"test-{uuid.uuid4().hex}",
    )
    async with running_service(build, settings) as svc:
        async with httpx.AsyncClient(base_url=svc.http_url, timeout=30) as client:
            for _ in range(300):  # ready once the engines are loaded
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError((await client.get("/readyz")).text)
        yield svc


def runs(tts) -> int:
    return tts.app.state.service.synthesis_runs


async def speak(client: httpx.AsyncClient, headers, **params) -> httpx.Response:
    return await client.get(f"{API}/speech", params=params, headers=headers)


async def test_each_character_speaks_with_its_voice_and_the_second_time_from_the_cache(tts, identities) -> None:
    headers = await identities.headers("tts-learner")
    async with httpx.AsyncClient(base_url=tts.http_url, timeout=60) as client:
        cases = [
            ("boss", "ja", "お疲れさまです。資料を確認しました。", "ja-mei-calm", "offline:pyopenjtalk"),
            ("department_head", "ja", "その件は来週までに決めましょう。", "ja-kumo-steady", "offline:kokoro"),
            ("colleague", "ja", "ありがとう、助かります！", "ja-kokoro-nezumi", "offline:kokoro"),
            ("senior", "en", "Thanks, that helps a lot.", "en-joe", "offline:piper"),
            ("boss", "en", "Please send me the report today.", "en-joe-light", "offline:piper"),
        ]
        for character_id, language, text, voice, engine in cases:
            before = runs(tts)
            first = await speak(client, headers, text=text, character_id=character_id, language=language)
            assert first.status_code == 200, first.text
            assert first.headers["content-type"] == "audio/mpeg"
            assert (first.headers["x-tts-voice"], first.headers["x-tts-engine"]) == (voice, engine)
            assert first.headers["x-tts-cached"] == "0" and first.headers["cache-control"] == "private, max-age=86400"
            frames = mp3_frames(first.content)  # the whole body is MPEG audio frames
            assert len(frames) > 20 and int(first.headers["x-tts-duration-ms"]) > 700
            assert runs(tts) == before + 1

            again = await speak(client, headers, text=text, character_id=character_id, language=language)
            assert again.status_code == 200 and again.headers["x-tts-cached"] == "1"
            assert again.content == first.content and again.headers["x-tts-voice"] == voice
            assert runs(tts) == before + 1  # nothing synthesised the second time
        metric = REGISTRY.get_sample_value("tts_synthesis_total", {"engine": "offline:piper", "cached": "true"})
        assert metric is not None and metric >= 2

        # Three learners' pages asking for one new sentence at the same moment: one synthesis.
        before = runs(tts)
        same = await asyncio.gather(
            *(speak(client, headers, text="会議室は三階です。", character_id="junior") for _ in range(3))
        )
        assert {r.status_code for r in same} == {200} and len({r.content for r in same}) == 1
        assert runs(tts) == before + 1

        # No voice, no character: the language's default voice.
        default = await speak(client, headers, text="Good morning.")
        assert default.status_code == 200 and default.headers["x-tts-voice"] == "en-joe"


async def test_big_audio_is_kept_on_disk_and_served_from_there(tts, identities) -> None:
    headers = await identities.headers("tts-learner")
    service = tts.app.state.service
    text = "本日の会議では、来月の新しいプロジェクトの進め方と担当の割り振りについて、順番に確認していきます。"
    async with httpx.AsyncClient(base_url=tts.http_url, timeout=60) as client:
        first = await speak(client, headers, text=text, voice="ja-mei-calm", format="wav")
        assert first.status_code == 200 and first.headers["content-type"] == "audio/wav"
        assert len(first.content) > service.settings.tts_cache_redis_max_bytes
        key = first.headers["x-tts-key"]
        assert await service.cache.where(key) == "disk"
        assert list(service.settings.tts_cache_dir.glob(f"*/{key}.wav"))
        before = runs(tts)
        again = await speak(client, headers, text=text, voice="ja-mei-calm", format="wav")
        assert again.headers["x-tts-cached"] == "1" and again.content == first.content and runs(tts) == before


async def test_bad_requests_get_clear_errors(tts, identities) -> None:
    headers = await identities.headers("tts-learner")
    async with httpx.AsyncClient(base_url=tts.http_url, timeout=30) as client:
        for params, field in (
            ({"text": ""}, "text"),
            ({"text": "  "}, "text"),
            ({"text": "あ" * 601}, "text"),
            ({"text": "はい。", "speed": "9"}, "speed"),
        ):
            # Refused by the published schema (422, the field named), before any synthesis.
            bad = await speak(client, headers, **params)
            assert bad.status_code == 422, bad.text
            body = bad.json()
            assert body["error"] == "invalid_request" and body["message"]
            assert [p["field"] for p in body["problems"]] == [f"query.{field}"], body
        for params in ({"text": "はい。", "character_id": "nobody"}, {"text": "はい。", "voice": "ja-nobody"}):
            missing = await speak(client, headers, **params)
            assert missing.status_code == 404 and missing.json()["error"] == "not_found"
        assert (await client.get(f"{API}/speech", params={"text": "はい。"})).status_code == 401
        assert (await client.get(f"{API}/audio/{'0' * 64}", headers=headers)).status_code == 404

        voices = (await client.get(f"{API}/voices", params={"language": "ja"})).json()
        assert voices["transcription"] is False
        assert {"ja-kumo", "ja-mei-calm", "ja-kokoro-alpha"} <= {v["id"] for v in voices["voices"]}
        assert {v["language"] for v in voices["voices"]} == {"ja"}
        assert {"character_id": "executive", "language": "ja", "voice": "ja-kumo-steady"} in voices["characters"]
        unavailable = await client.post(
            f"{API}/transcribe",
            content=b"\x1aE\xdf\xa3 not really webm",
            headers=headers | {"content-type": "audio/webm"},
        )
        assert unavailable.status_code == 409 and unavailable.json()["error"] == "transcription_unavailable"
        assert "browser" in unavailable.json()["message"]


async def test_a_longer_text_streams_sentence_by_sentence(tts, identities) -> None:
    headers = await identities.headers("tts-learner")
    text = "承知しました。資料は明日の朝までに送ります。ほかに確認したいことはありますか？"
    async with httpx.AsyncClient(base_url=tts.http_url, timeout=60) as client:
        pieces: list[bytes] = []
        async with client.stream(
            "POST", f"{API}/speech", json={"text": text, "character_id": "senior"}, headers=headers
        ) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["x-tts-voice"] == "ja-kumo" and response.headers["x-tts-cached"] == "0"
            async for piece in response.aiter_raw():
                pieces.append(piece)
        whole = b"".join(pieces)
        assert len(mp3_frames(whole)) > 50  # one valid file
        # The GET form of the same text finds what the stream stored.
        cached = await speak(client, headers, text=text, character_id="senior")
        assert cached.headers["x-tts-cached"] == "1" and cached.content == whole
        # A GET for a text longer than one piece (160 characters) streams too: its first audio
        # does not wait for the last sentence.
        long_text = "、".join(f"{n}番目の資料を確認しました" for n in range(1, 21)) + "。"
        assert len(long_text) > 160
        async with client.stream(
            "GET", f"{API}/speech", params={"text": long_text, "voice": "ja-mei-calm"}, headers=headers
        ) as response:
            assert response.status_code == 200, await response.aread()
            assert "content-length" not in response.headers and response.headers["x-tts-cached"] == "0"
            streamed = [piece async for piece in response.aiter_raw()]
        assert len(streamed) > 1 and len(mp3_frames(b"".join(streamed))) > 100
        again = await speak(client, headers, text=long_text, voice="ja-mei-calm")
        assert again.headers["x-tts-cached"] == "1" and again.content == b"".join(streamed)
        refused = await client.post(f"{API}/speech", json={"text": "", "character_id": "senior"}, headers=headers)
        assert refused.status_code == 422 and refused.json()["problems"][0]["field"] == "text"
        too_long = await client.post(f"{API}/speech", json={"text": "あ" * 4001}, headers=headers)
        assert too_long.status_code == 422 and too_long.json()["problems"][0]["field"] == "text"


async def test_grpc_synthesize_stream_and_voices(tts, identities) -> None:
    metadata = await identities.metadata("tts-learner")
    async with grpc.aio.insecure_channel(tts.grpc_address) as channel:
        stub = tts_pb2_grpc.TtsServiceStub(channel)
        request = tts_pb2.SynthesizeRequest(text="Let's start the meeting.", character_id="executive", language="en")
        first = await stub.Synthesize(request, metadata=metadata)
        assert first.mime_type == "audio/mpeg" and first.voice == "en-joe-steady" and first.engine == "offline:piper"
        assert first.sample_rate_hz == 22050 and first.duration_ms > 500 and not first.cached
        assert mp3_frames(first.audio)
        again = await stub.Synthesize(request, metadata=metadata)
        assert again.cached and again.audio == first.audio

        text = "おはようございます。今日の予定を確認します。まず十時から定例会議です。"
        events = [
            e
            async for e in stub.StreamSynthesize(
                tts_pb2.StreamSynthesizeRequest(text=text, character_id="boss"), metadata=metadata
            )
        ]
        kinds = [e.WhichOneof("event") for e in events]
        assert kinds[0] == "started" and kinds[-1] == "done" and set(kinds[1:-1]) == {"chunk"}
        started, done = events[0].started, events[-1].done
        assert (started.voice, started.engine, started.sample_rate_hz, started.cached) == (
            "ja-mei-calm",
            "offline:pyopenjtalk",
            48000,
            False,
        )
        chunks = [e.chunk for e in events[1:-1]]
        assert [c.sequence for c in chunks] == list(range(len(chunks))) and len(chunks) >= 3  # a piece per sentence
        audio = b"".join(c.audio for c in chunks)
        assert done.chunk_count == len(chunks) and done.total_bytes == len(audio) and done.duration_ms > 3000
        assert mp3_frames(audio)

        voices = await stub.ListVoices(tts_pb2.ListVoicesRequest(language="en"))
        assert {v.id for v in voices.voices} == {"en-joe", "en-joe-brisk", "en-joe-steady", "en-joe-light"}
        assert len(voices.characters) == 16 and {c.language for c in voices.characters} == {"en"}

        for call, message, code in (
            (stub.Synthesize, tts_pb2.SynthesizeRequest(text=""), grpc.StatusCode.INVALID_ARGUMENT),
            (stub.Synthesize, tts_pb2.SynthesizeRequest(text="はい", voice="x-y"), grpc.StatusCode.NOT_FOUND),
            (stub.Transcribe, tts_pb2.TranscribeRequest(audio=b"x", mime_type="audio/webm"), None),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as failure:
                await call(message, metadata=metadata)
            assert failure.value.code() == (code or grpc.StatusCode.FAILED_PRECONDITION)
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.Synthesize(tts_pb2.SynthesizeRequest(text="はい"))
        assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def _ready_for(ready_events, request_id: str, timeout_s: float = 30) -> events_pb2.TtsReady:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in ready_events:
            if event.request_id == request_id:
                return event
        await asyncio.sleep(0.05)
    raise AssertionError(f"no tts.ready for {request_id}")


async def test_a_synthesis_request_event_is_answered_once_with_cached_audio(
    tts, identities, bus, ready_events, suffix
) -> None:
    service = tts.app.state.service
    request = events_pb2.TtsRequest(
        event_id=str(uuid.uuid4()),
        request_id=str(uuid.uuid4()),
        text="次の議題に移りましょう。",
        language="ja",
        character_id="section_manager",
        session_id=str(uuid.uuid4()),
        turn_id="t-1",
        user_id="u-1",
        mime_type="audio/ogg",  # not made here: the default (MP3) rather than no audio
    )
    # Which threads synthesise: requests ahead of time run on their own, never on the threads
    # that serve a learner waiting for a line.
    kokoro = service.engines["offline:kokoro"]
    threads: list[str] = []
    real = kokoro.synthesize

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    kokoro.synthesize = recording
    before = runs(tts)
    try:
        await bus.publish(request, ordering_key=request.session_id)
        ready = await _ready_for(ready_events, request.request_id)
        headers = await identities.headers("tts-learner")
        async with httpx.AsyncClient(base_url=tts.http_url, timeout=30) as client:
            spoken = await speak(client, headers, text="では、よろしくお願いします。", character_id="section_manager")
        assert spoken.status_code == 200
    finally:
        kokoro.synthesize = real
    assert [t.rsplit("_", 1)[0] for t in threads] == ["tts-background", "tts-synth"], threads
    before += 1  # the learner's line
    assert not ready.error and ready.voice == "ja-kumo-brisk" and ready.engine == "offline:kokoro"
    assert ready.mime_type == "audio/mpeg" and ready.sample_rate_hz == 24000 and ready.duration_ms > 500
    assert (ready.session_id, ready.turn_id, ready.user_id) == (request.session_id, "t-1", "u-1")
    assert runs(tts) == before + 1
    async with httpx.AsyncClient(base_url=tts.http_url, timeout=30) as client:
        stored = await client.get(f"{API}/audio/{ready.audio_key}", headers=headers)
    assert stored.status_code == 200 and mp3_frames(stored.content)
    assert stored.headers["x-tts-voice"] == "ja-kumo-brisk"

    # The same event again (a redelivery, a replay): handled once, no second answer, no synthesis.
    subscription = bus.topology.name("tts.requests")
    duplicates = REGISTRY.get_sample_value(
        "workplace_bus_handled_total", {"subscription": subscription, "outcome": "duplicate"}
    )
    await bus.publish(request, ordering_key=request.session_id)
    for _ in range(300):
        now = REGISTRY.get_sample_value(
            "workplace_bus_handled_total", {"subscription": subscription, "outcome": "duplicate"}
        )
        if (now or 0) > (duplicates or 0):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the second delivery was not handled")
    assert runs(tts) == before + 1
    assert [e.request_id for e in ready_events].count(request.request_id) == 1

    # Another request for the same words (a new event): answered from the cache.
    repeat = events_pb2.TtsRequest()
    repeat.CopyFrom(request)
    repeat.event_id, repeat.request_id = str(uuid.uuid4()), str(uuid.uuid4())
    await bus.publish(repeat)
    assert (await _ready_for(ready_events, repeat.request_id)).audio_key == ready.audio_key
    assert runs(tts) == before + 1

    # A request that can never be spoken is answered with an error at once, not retried.
    bad = events_pb2.TtsRequest(
        event_id=str(uuid.uuid4()), request_id=str(uuid.uuid4()), text="はい。", character_id="nobody"
    )
    await bus.publish(bad)
    failed = await _ready_for(ready_events, bad.request_id)
    assert failed.error and not failed.audio_key
    assert service.ledger is not None


async def test_with_gemini_each_character_has_its_own_voice_and_the_offline_one_stands_in(
    tts, identities, suffix, tmp_path_factory
) -> None:
    """Gemini (the stand-in) speaks within the day's budget (PostgreSQL); when it is down or the
    budget is spent, a character speaks with its offline voice; a Gemini voice asked for by name
    answers 503. Voice input works with the key."""
    service = tts.app.state.service
    pool = service.ledger.pool
    spent = int(await pool.fetchval("SELECT coalesce(max(used_chars), 0) FROM budget_days WHERE day = current_date"))
    headers = await identities.headers("tts-gemini-learner")
    with GeminiStandIn() as gemini:
        settings = TtsSettings(
            auth_jwks_url=identities.jwks_url,
            pubsub_name_suffix=suffix,
            run_workers=False,  # the module's service consumes and relays; this one answers requests
            tts_cache_dir=tmp_path_factory.mktemp("tts-cache-gemini"),
            tts_cache_namespace=f"test-gemini-{uuid.uuid4().hex}",  # keys of its own
            gemini_api_keys=["key-a"],
            gemini_base_url=gemini.base_url,
            gemini_api_version="v1beta",
            gemini_retry_attempts=1,
            gemini_retry_initial_delay_s=0.01,
            gemini_retry_max_delay_s=0.02,
            gemini_timeout_s=5.0,
            tts_daily_budget_chars=spent + 60,  # the day's budget: 60 more characters
        )
        async with (
            running_service(build, settings) as svc,
            httpx.AsyncClient(base_url=svc.http_url, timeout=60) as client,
        ):
            for _ in range(300):
                if (await client.get("/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.2)
            boss = await speak(client, headers, text="お疲れさまです。", character_id="boss")
            assert boss.status_code == 200, boss.text
            assert (boss.headers["x-tts-voice"], boss.headers["x-tts-engine"]) == (
                "ja-gemini-gacrux",
                "google:gemini-tts",
            )
            assert mp3_frames(boss.content) and gemini.requests[-1].voice_name == "Gacrux"
            hire = await speak(client, headers, text="Sure, I'll do it.", character_id="new_hire")
            assert hire.headers["x-tts-voice"] == "en-gemini-puck" and gemini.requests[-1].voice_name == "Puck"

            gemini.script(Fail(503), times=None)  # Gemini is down
            down = await speak(client, headers, text="少々お待ちください。", character_id="executive")
            assert down.status_code == 200
            assert (down.headers["x-tts-voice"], down.headers["x-tts-engine"]) == ("ja-kumo-steady", "offline:kokoro")
            named = await speak(client, headers, text="少々お待ちください。", voice="ja-gemini-kore")
            assert named.status_code == 503 and named.headers["retry-after"] and named.json()["error"] == "unavailable"
            gemini.reset()

            # 8 + 17 characters spent; this text would go over the day's 60.
            long = (
                "本日の打ち合わせの内容を整理して、関係者全員に"
                + "共有しておいていただけますでしょうか。よろしくお願いします"
            )
            assert len(long) > 60 - 25
            spent_before = len(gemini.requests)
            over = await speak(client, headers, text=long, character_id="boss")
            assert over.status_code == 200 and over.headers["x-tts-engine"] == "offline:pyopenjtalk"
            assert len(gemini.requests) == spent_before  # Google was not asked
            assert await pool.fetchval("SELECT used_chars FROM budget_days WHERE day = current_date") == spent + 25

            voices = (await client.get(f"{API}/voices")).json()
            assert voices["transcription"] is True and "ja-gemini-kore" in {v["id"] for v in voices["voices"]}
            heard = await client.post(
                f"{API}/transcribe",
                params={"language": "ja"},
                content=b"RIFF....WAVEfmt ",
                headers=headers | {"content-type": "audio/wav"},
            )
            assert heard.status_code == 200, heard.text
            assert heard.json()["text"] and heard.json()["engine"] == "google:gemini"
