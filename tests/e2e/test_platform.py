"""The whole platform as `task up` runs it: every service as its own process under supervisord,
Envoy in front, the real PostgreSQL, Redis and Pub/Sub emulator. Browser, HTTP and gRPC
clients all go through the gateway on 127.0.0.1:8080.

If the platform is already up (a developer ran `task up`), the tests use it and leave it
running; otherwise they start it and stop the services (not the infra) afterwards.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from support.browser import launch_options
from workplace.chat.v1 import chat_pb2, chat_pb2_grpc
from workplace.feedback.v1 import feedback_pb2, feedback_pb2_grpc
from workplace.scenario.v1 import scenario_pb2, scenario_pb2_grpc

REPO = Path(__file__).resolve().parents[2]
GATEWAY = "http://127.0.0.1:8080"
SCREENSHOTS = REPO / ".run" / "screenshots"


_TOKENS: dict[str, str] = {}


def guest_token(user: str = "e2e-user") -> str:
    """An access token of a guest account, from the auth service through the gateway."""
    if user not in _TOKENS:
        r = httpx.post(GATEWAY + "/api/v2/auth/guest", json={"display_name": user}, timeout=30)
        assert r.status_code == 201, r.text
        _TOKENS[user] = r.json()["access_token"]
    return _TOKENS[user]


def chat_via_gateway(body: dict, user: str = "e2e-user") -> list[tuple[str, dict]]:
    events, event = [], ""
    bearer = {"Authorization": f"Bearer {guest_token(user)}"}
    with httpx.stream("POST", GATEWAY + "/api/v2/chat", json=body, headers=bearer, timeout=60) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                events.append((event, json.loads(line[5:].strip())))
    return events


def test_page_is_served_with_security_headers(platform):
    r = httpx.get(platform + "/")
    assert r.status_code == 200 and "雑談練習" in r.text
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert httpx.get(platform + "/static/vendor/htmx-2.0.11.min.js").status_code == 200


def test_page_speaks_english_when_asked(platform):
    with httpx.Client(base_url=platform) as client:
        r = client.get("/?lang=en")
        assert "Small talk practice" in r.text and '<html lang="en">' in r.text and "Colleague" in r.text
        assert client.cookies.get("wp_lang") == "en"
        assert "Small talk practice" in client.get("/").text  # the choice is remembered
        assert "雑談練習" in client.get("/?lang=ja").text
    assert "Small talk practice" in httpx.get(platform + "/", headers={"Accept-Language": "en-GB,en;q=0.9"}).text
    assert "雑談練習" in httpx.get(platform + "/", headers={"Accept-Language": "ja,en;q=0.5"}).text


def test_reply_streams_through_gateway_and_feedback_arrives_via_pubsub(platform):
    events = chat_via_gateway({"message": "新しいプロジェクトに参加できて、とても楽しみです！", "partner": "senior"})
    assert events[0][0] == "start" and events[-1][0] == "done"
    session_id, turn_id = events[0][1]["session_id"], events[0][1]["user_turn_id"]

    # The web service's SSE endpoint delivers the analysis the feedback service published, to
    # the learner who chatted (signed in by the page's cookie).
    assert _feedback_card_arrives(platform, session_id, turn_id, guest_token())
    bearer = {"Authorization": f"Bearer {guest_token()}"}
    analyses = httpx.get(f"{platform}/api/v2/feedback/sessions/{session_id}/turns", headers=bearer).json()
    assert analyses[0]["turn_id"] == turn_id and analyses[0]["polarity"] > 0


def _feedback_card_arrives(platform: str, session_id: str, turn_id: str, token: str) -> bool:
    deadline = time.monotonic() + 60
    with httpx.Client(cookies={"wp_access": token}, timeout=60) as client:
        with client.stream("GET", f"{platform}/events/sessions/{session_id}/feedback") as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if f'data-turn-id="{turn_id}"' in line:
                    return True
                assert time.monotonic() < deadline, "no feedback card within 60 s"
    return False


def test_feedback_is_read_by_its_learner_only_through_the_gateway(platform):
    """Another learner's feedback: 404 over HTTP, NOT_FOUND over gRPC, 404 from web's stream,
    as for a session that does not exist; without a token: 401 / UNAUTHENTICATED."""
    events = chat_via_gateway({"message": "週末に家族と出かけて、楽しかったです。"}, user="e2e-owner")
    session_id, turn_id = events[0][1]["session_id"], events[0][1]["user_turn_id"]
    assert _feedback_card_arrives(platform, session_id, turn_id, guest_token("e2e-owner"))
    owner = {"Authorization": f"Bearer {guest_token('e2e-owner')}"}
    intruder = {"Authorization": f"Bearer {guest_token('e2e-intruder')}"}
    paths = (f"/api/v2/feedback/turns/{turn_id}", f"/api/v2/feedback/sessions/{session_id}/turns")
    for path in paths:
        assert httpx.get(platform + path, headers=owner).status_code == 200, path
        r = httpx.get(platform + path, headers=intruder)
        assert r.status_code == 404 and "楽しかった" not in r.text, path
        for headers in ({}, {"X-User-Id": "someone"}, {"Authorization": "Bearer forged"}):
            r = httpx.get(platform + path, headers=headers)
            assert r.status_code == 401 and r.json()["error"] == "unauthenticated", (path, headers)

    stream = f"{platform}/events/sessions/{session_id}/feedback"
    for cookies, status in (({"wp_access": guest_token("e2e-intruder")}, 404), ({}, 401), ({"wp_access": "x"}, 401)):
        with httpx.Client(cookies=cookies, timeout=30) as client, client.stream("GET", stream) as r:
            assert r.status_code == status and r.headers["content-type"].startswith("application/json"), cookies
            assert "楽しかった" not in r.read().decode()

    with grpc.insecure_channel("127.0.0.1:8080") as channel:
        stub = feedback_pb2_grpc.FeedbackServiceStub(channel)
        me = (("authorization", owner["Authorization"]),)
        other = (("authorization", intruder["Authorization"]),)
        one = stub.GetTurnAnalysis(feedback_pb2.GetTurnAnalysisRequest(turn_id=turn_id), metadata=me, timeout=10)
        assert one.analysis.learner_text == "週末に家族と出かけて、楽しかったです。"
        requests = (
            (stub.GetTurnAnalysis, feedback_pb2.GetTurnAnalysisRequest(turn_id=turn_id)),
            (stub.ListSessionAnalyses, feedback_pb2.ListSessionAnalysesRequest(session_id=session_id)),
        )
        for call, request in requests:
            for metadata, code in ((other, grpc.StatusCode.NOT_FOUND), ((), grpc.StatusCode.UNAUTHENTICATED)):
                with pytest.raises(grpc.RpcError) as err:
                    call(request, metadata=metadata, timeout=10)
                assert err.value.code() == code, (request, metadata)


def test_bad_request_through_gateway_is_a_clear_json_error(platform):
    bearer = {"Authorization": f"Bearer {guest_token()}"}
    r = httpx.post(platform + "/api/v2/chat", json={"message": "やあ", "partner": "ceo"}, headers=bearer)
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    # Who the learner is comes from a verified token only: a user id header is not one.
    for headers in ({}, {"X-User-Id": "someone"}, {"Authorization": "Bearer forged"}):
        r = httpx.post(platform + "/api/v2/chat", json={"message": "やあ"}, headers=headers)
        assert r.status_code == 401 and r.json()["error"] == "unauthenticated", headers


def test_grpc_through_gateway_and_health_and_reflection_on_service_port(platform):
    with grpc.insecure_channel("127.0.0.1:8080") as channel:
        stub = chat_pb2_grpc.ChatServiceStub(channel)
        responses = list(
            stub.StreamReply(
                chat_pb2.StreamReplyRequest(
                    message="Good morning! Any plans for lunch?",
                    partner=chat_pb2.PARTNER_COLLEAGUE,
                    situation="lunch",
                ),
                metadata=(("authorization", f"Bearer {guest_token('grpc-e2e')}"),),
                timeout=60,
            )
        )
        assert responses[0].started.engine.id and responses[-1].done.text
        catalogue = scenario_pb2_grpc.ScenarioServiceStub(channel).ListScenarios(
            scenario_pb2.ListScenariosRequest(page_size=100),
            metadata=(("authorization", f"Bearer {guest_token('grpc-e2e')}"),),
            timeout=10,
        )
        assert len(catalogue.scenarios) >= 50 and catalogue.categories
    with grpc.insecure_channel("127.0.0.1:50051") as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="workplace.chat.v1.ChatService"), timeout=5
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        answer = next(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
        names = {s.name for s in answer.list_services_response.service}
        assert "workplace.chat.v1.ChatService" in names


def test_metrics_exposed(platform):
    text = httpx.get("http://127.0.0.1:8101/metrics").text
    assert "http_requests_total" in text and "grpc_server_handled_total" in text
    # The in-flight gauges KEDA scales on (deploy/helm: workplace.inFlightQuery).
    assert "http_requests_inprogress" in text and "grpc_server_inprogress" in text


def test_browser_chat_streams_reply_and_shows_feedback(platform):
    from playwright.sync_api import sync_playwright

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options())
        page = browser.new_page(viewport={"width": 1200, "height": 800}, locale="ja-JP")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(platform + "/")
        page.select_option("#partner", "boss")
        page.fill("#message", f"おはようございます。昨日の会議、うまくいって嬉しいです！（{uuid.uuid4().hex[:4]}）")
        page.press("#message", "Enter")
        reply = page.locator("li.msg.model").first
        page.wait_for_function(
            "() => { const b = document.querySelector('li.msg.model .engine-badge');"
            " const m = document.querySelector('li.msg.model'); return b && m && !m.classList.contains('pending'); }",
            timeout=30_000,
        )
        page.wait_for_selector("#send:not([disabled])", timeout=30_000)
        assert reply.locator(".body").inner_text().strip()
        assert "オフライン応答エンジン" in reply.locator(".engine-badge").inner_text()
        card = page.locator("#feedback-stream article.card").first
        card.wait_for(timeout=60_000)
        assert card.locator(".summary").inner_text().strip()
        # The learner's own words are quoted on the live card.
        assert "昨日の会議" in card.locator(".quote").inner_text()
        page.wait_for_timeout(600)  # let the card's arrival animation finish before the picture
        page.screenshot(path=str(SCREENSHOTS / "chat.png"), full_page=True)

        # Casual words to the boss: the card says what to change and the phrasing to try.
        casual = f"その資料、今日中に送って（{uuid.uuid4().hex[:4]}）"
        page.fill("#message", casual)
        page.press("#message", "Enter")
        coached = page.locator("#feedback-stream article.card", has_text=casual[-6:]).first
        coached.wait_for(timeout=60_000)
        coached.locator(".coaching .better-phrasing").wait_for(timeout=10_000)
        assert "送って" in coached.locator(".quote").inner_text()
        better = coached.locator(".better-phrasing").inner_text()
        assert "いただけ" in better or "ください" in better, better
        assert coached.locator(".to-change").inner_text().strip()
        page.set_viewport_size({"width": 390, "height": 844})
        page.wait_for_timeout(600)
        coached.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "chat-coaching-phone.png"), full_page=True)
        browser.close()
    assert not errors, errors


def test_browser_says_clearly_when_a_reply_fails_and_keeps_the_message(platform):
    """The page's own error paths, with the chat API answered by Playwright: a 503 during an
    outage, a stream that breaks after the reply began (the page asks the history whether the
    turn was saved), and a cached reply's badge. Every line is in the page's language."""
    from playwright.sync_api import sync_playwright
    from web_service.ui_text import TEXT

    ja = TEXT["ja"]
    session_id, turn_id = str(uuid.uuid4()), str(uuid.uuid4())
    start = {"session_id": session_id, "user_turn_id": turn_id, "engine": {"id": "offline-retrieval"}}
    answers = {
        "503": {
            "status": 503,
            "headers": {"Retry-After": "5"},
            "content_type": "application/json",
            "body": json.dumps({"error": "unavailable", "message": "a service this needs is unavailable"}),
        },
        "broken": {
            "status": 200,
            "content_type": "text/event-stream",
            "body": f"event: start\ndata: {json.dumps(start)}\n\n"
            f"event: delta\ndata: {json.dumps({'text': '途中'})}\n\n",
        },
        "cached": {
            "status": 200,
            "content_type": "text/event-stream",
            "body": (
                f"event: start\ndata: {json.dumps({**start, 'cached': True})}\n\n"
                f"event: delta\ndata: {json.dumps({'text': 'はい。'})}\n\n"
                "event: done\ndata: "
                + json.dumps({"session_id": session_id, "reply_turn_id": str(uuid.uuid4()), "text": "はい。"})
                + "\n\n"
            ),
        },
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(**launch_options())
        page = browser.new_page(locale="ja-JP")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        current = {"answer": "503"}
        page.route("**/api/v2/chat", lambda route: route.fulfill(**answers[current["answer"]]))
        page.goto(platform + "/")

        def send_and_settle(message: str) -> None:
            page.fill("#message", message)
            page.press("#message", "Enter")
            page.wait_for_selector("#send:not([disabled])", timeout=15_000)

        send_and_settle("今日は早退させてください。")
        failed = page.locator("li.msg.model").last
        assert failed.locator(".body").inner_text() == ja["reply_unavailable"]
        assert page.locator("#status").inner_text() == ja["unsent_status"]
        assert page.input_value("#message") == "今日は早退させてください。"  # back in the box
        assert page.locator("li.msg.user").last.get_attribute("class").endswith("unsent")
        assert page.is_enabled("#partner"), "no session was adopted from a failed first turn"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "chat-unavailable.png"))

        current["answer"] = "broken"  # the history does not know this turn: it was not saved
        send_and_settle("もう一度お願いします。")
        assert page.locator("li.msg.model").last.locator(".body").inner_text() == ja["network_failed"]
        assert page.locator("#status").inner_text() == ja["unsent_status"]
        assert page.input_value("#message") == "もう一度お願いします。"

        current["answer"] = "cached"
        send_and_settle("ありがとうございます。")
        badge = page.locator("li.msg.model").last.locator(".engine-badge").inner_text()
        assert badge == ja["engine_offline"] + ja["cached"] and "undefined" not in badge
        assert page.locator("#status").inner_text() == ""
        browser.close()
    assert not errors, errors
