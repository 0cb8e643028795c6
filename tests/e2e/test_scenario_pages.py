"""The scenario pages through the gateway (the platform of `task up`), in headless Chromium: the
catalogue with its chips, difficulty filter and search by meaning; a scenario's briefing and
its start (a consent scenario only once the box is ticked); the roleplay with the character's
reply streaming in, the live feedback panel, the end of the roleplay and the same transcript
after a reload; the refusals a learner can meet, each said in the page's language; and the
free-chat page keeping its conversation over a reload. Phone-sized pictures of the catalogue
and the roleplay go to .run/screenshots/."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Error as PlaywrightError
from support.browser import PHONE
from web_service.ui_text import TEXT

REPO = Path(__file__).resolve().parents[2]
GATEWAY = "http://127.0.0.1:8080"
SCREENSHOTS = REPO / ".run" / "screenshots"
JA, EN = TEXT["ja"], TEXT["en"]
FIRST = "申し訳ありません、今夜は家族の用事があって残れないんです"
SECOND = "明日の朝8時に来て、会議の前に仕上げるのはどうでしょうか"


def _wait_for_cards(page) -> None:
    page.wait_for_function(
        "() => document.querySelectorAll('#scenario-list li.scenario-card').length > 0"
        " && !document.querySelector('#scenario-list[aria-busy]')",
        timeout=30_000,
    )


def _events(body: str) -> list[tuple[str, dict]]:
    """A Server-Sent Events body as (event, data) pairs."""
    events, name = [], ""
    for line in body.splitlines():
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            events.append((name, json.loads(line[5:].strip())))
    return events


def _start_from_briefing(page, scenario_id: str) -> str:
    """Opens the scenario's briefing, starts it and waits for the roleplay page; its session id."""
    page.goto(f"{GATEWAY}/scenarios/{scenario_id}")
    page.locator("#briefing").wait_for(state="visible", timeout=30_000)
    page.click("#start")
    page.wait_for_url(re.compile(r"/roleplay/[0-9a-f-]{36}$"), timeout=30_000)
    page.locator("#play").wait_for(state="visible", timeout=30_000)
    return page.url.rsplit("/", 1)[1]


# --------------------------------------------------------------------------- the pages as served


def test_scenario_pages_are_served_in_both_languages_and_linked_from_the_nav(platform):
    with httpx.Client(base_url=platform, timeout=30) as client:
        for path in ("/", "/account", "/scenarios", "/scenarios/decline-overtime", f"/roleplay/{uuid.uuid4()}"):
            r = client.get(path + "?lang=ja")
            assert r.status_code == 200, path
            assert '<a href="/scenarios" id="scenarios-link"' in r.text and JA["nav_scenarios"] in r.text, path
            # CSP: scripts from files only, no inline handlers or styles.
            for script in re.findall(r"<script[^>]*>", r.text):
                assert "src=" in script or 'type="application/json"' in script, (path, script)
            assert not re.search(r"\son[a-z]+=|\sstyle=|<style", r.text), path
        r = client.get("/scenarios?lang=en&category=declining")
        assert EN["scenarios_heading"] in r.text and '<html lang="en">' in r.text
        # The language link keeps the page's filters.
        assert 'href="/scenarios?category=declining&amp;lang=ja"' in r.text
        assert 'aria-current="page">' + EN["nav_scenarios"] in r.text
        assert client.get("/scenarios/Not_An_Id").status_code == 404
        assert client.get("/roleplay/not-a-session").status_code == 404


# --------------------------------------------------------------------------- search → briefing → roleplay


def test_search_open_the_briefing_play_the_roleplay_to_its_end_and_reload_it(chromium):
    b = chromium(viewport={"width": 1280, "height": 900})
    page = b.page
    page.goto(GATEWAY + "/scenarios")
    _wait_for_cards(page)
    assert page.locator("#categories .chip[aria-pressed=true]").inner_text().startswith(JA["filter_all"])

    page.fill("#search-input", "断り方を練習したい")
    page.press("#search-input", "Enter")
    page.wait_for_function(
        "() => document.querySelector('#results-status').textContent.includes('断り方を練習したい')", timeout=30_000
    )
    _wait_for_cards(page)
    found = page.locator("#scenario-list li.scenario-card").evaluate_all(
        "cards => cards.map(c => c.dataset.scenarioId)"
    )
    # Best first: declining scenarios lead, and the one we play is among the results.
    assert "decline-overtime" in found and any(f.startswith("decline-") for f in found[:2]), found
    assert "q=" in page.url and page.locator("#clear-search").is_visible()

    page.locator('li[data-scenario-id="decline-overtime"] .card-link').click()
    page.wait_for_url("**/scenarios/decline-overtime")
    page.locator("#briefing").wait_for(state="visible", timeout=30_000)
    assert page.locator("#briefing-title").inner_text() == "急な残業の依頼を断る"
    assert page.title().startswith("急な残業の依頼を断る")
    for field in ("#b-situation", "#b-role", "#b-character", "#b-goal"):
        assert page.locator(field).inner_text().strip(), field
    assert page.locator("#b-criteria li").count() >= 2 and page.locator("#b-learning li").count() >= 2
    assert page.locator("#consent").is_hidden() and page.is_enabled("#start")

    page.click("#start")
    page.wait_for_url(re.compile(r"/roleplay/[0-9a-f-]{36}$"), timeout=30_000)
    page.locator("#play").wait_for(state="visible", timeout=30_000)
    session = page.url.rsplit("/", 1)[1]
    assert page.locator("#rp-title").inner_text() == "急な残業の依頼を断る"
    before = b.transcript()  # the character's opening line, if the scenario has one

    # The reply comes as a stream of events (start, delta…, done), shown as it arrives.
    with page.expect_response(lambda r: r.url.endswith("/messages")) as streamed:
        b.send(FIRST)
    assert streamed.value.headers["content-type"].startswith("text/event-stream")
    first_reply = b.transcript()[-1]
    try:
        events = _events(streamed.value.text())
    except PlaywrightError:
        # Chromium now and then drops a streamed body it has already handed to the page (its
        # buffer, under load); the events themselves are checked in tests/integration/test_scenario.py.
        events = []
    if events:
        deltas = [data["text"] for name, data in events if name == "delta"]
        assert events[0][0] == "start" and events[-1][0] == "done" and len(deltas) >= 2, events
        assert first_reply[1] == "".join(deltas).strip()
    assert first_reply[0] == "model" and first_reply[1]
    assert page.locator("#closing").is_hidden()
    assert page.locator("#turn-counter").inner_text().startswith("あなたの発言 1 /")

    b.send(SECOND)
    page.locator("#closing").wait_for(state="visible", timeout=30_000)
    assert page.locator("#closing-reason").inner_text() == JA["ended_completed"]
    # Where to go next: first the coaching report of this roleplay.
    assert JA["report_ready"][:20] in page.locator("#closing").inner_text()
    report_link = page.locator("#see-report")
    assert report_link.inner_text() == JA["see_report"] and report_link.get_attribute("href") == f"/report/{session}"
    assert "primary" in report_link.get_attribute("class")
    assert page.locator("#play").is_hidden()
    assert page.locator("#try-again").get_attribute("href") == "/scenarios/decline-overtime"
    transcript = b.transcript()
    assert transcript[: len(before)] == before
    assert [t for t in transcript[len(before) :] if t[0] == "user"] == [("user", FIRST), ("user", SECOND)]
    assert len(transcript) == len(before) + 4 and all(text for _, text in transcript)

    # The feedback service analyses roleplay turns too: their cards arrive in the panel.
    card = page.locator("#feedback-stream article.card").first
    card.wait_for(timeout=60_000)
    assert card.locator(".summary").inner_text().strip()
    assert "明日の朝" in card.locator(".quote").inner_text() or "家族の用事" in card.locator(".quote").inner_text()

    page.reload()
    page.locator("#closing").wait_for(state="visible", timeout=30_000)
    assert b.transcript() == transcript
    assert page.locator("#closing-reason").inner_text() == JA["ended_completed"]
    page.locator("#feedback-stream article.card").first.wait_for(timeout=30_000)

    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(600)  # the cards' arrival animation
    page.screenshot(path=str(SCREENSHOTS / "roleplay-phone.png"), full_page=True)

    # The closing state's report link opens the roleplay's coaching report.
    b.expected_statuses.add(404)  # the report page asks until feedback has written it
    page.click("#see-report")
    page.wait_for_url(f"**/report/{session}")
    page.locator("#report").wait_for(state="visible", timeout=70_000)
    assert page.locator("#r-title").inner_text() == "急な残業の依頼を断る"
    assert page.locator("#r-transcript").get_attribute("href") == f"/roleplay/{session}"
    assert not b.problems, b.problems


# --------------------------------------------------------------------------- consent


def test_a_consent_scenario_starts_only_once_the_box_is_ticked(chromium, platform):
    b = chromium(viewport={"width": 1100, "height": 900})
    page = b.page
    page.goto(GATEWAY + "/scenarios?category=harassment")
    _wait_for_cards(page)
    cards = page.locator("#scenario-list li.scenario-card")
    assert cards.count() >= 1
    assert all(cards.nth(i).locator(".consent-badge").is_visible() for i in range(cards.count()))
    assert JA["consent_badge"] == cards.first.locator(".consent-badge").inner_text()

    page.locator('li[data-scenario-id="drinking-pressure"] .card-link').click()
    page.locator("#briefing").wait_for(state="visible", timeout=30_000)
    assert page.locator("#consent").is_visible()
    assert page.locator("#watch-model").is_hidden()  # a gray zone is practised, never watched
    assert page.locator("#consent-notice").inner_text().strip() and page.locator("#consent-help").inner_text().strip()
    assert page.is_disabled("#start") and page.locator("#start-hint").inner_text() == JA["consent_needed"]
    page.locator("#start").click(force=True)  # a disabled button does nothing
    page.wait_for_timeout(300)
    assert page.url.endswith("/scenarios/drinking-pressure")

    # The service refuses a start without consent too (not only the page's button).
    token = httpx.post(platform + "/api/v2/auth/guest", json={}, timeout=30).json()["access_token"]
    r = httpx.post(
        platform + "/api/v2/scenario/sessions",
        json={"scenario_id": "drinking-pressure", "language": "ja"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert r.status_code == 409 and r.json()["field"] == "consent_given"

    # By keyboard: Space ticks the box, which enables start; unticking disables it again.
    page.focus("#consent-given")
    page.keyboard.press("Space")
    assert page.is_checked("#consent-given") and page.is_enabled("#start") and page.locator("#start-hint").is_hidden()
    page.keyboard.press("Space")
    assert page.is_disabled("#start")
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/roleplay/[0-9a-f-]{36}$"), timeout=30_000)
    page.locator("#play").wait_for(state="visible", timeout=30_000)
    opening = b.transcript()
    assert opening and opening[0][0] == "model" and opening[0][1], "石井課長 speaks first"

    page.click("#end")
    page.locator("#closing").wait_for(state="visible", timeout=30_000)
    assert page.locator("#closing-reason").inner_text() == JA["ended_user"]
    assert page.locator("#closing-help").is_visible(), "where to get help is shown after the scenario too"
    assert page.locator("#see-report").get_attribute("href") == "/report/" + page.url.rsplit("/", 1)[1]
    assert page.evaluate("document.activeElement.id") == "closing"
    page.reload()
    page.locator("#closing").wait_for(state="visible", timeout=30_000)
    assert page.locator("#closing-reason").inner_text() == JA["ended_user"]
    assert not b.problems, b.problems


# --------------------------------------------------------------------------- refusals


def test_refusals_while_playing_are_said_clearly_in_the_pages_language(chromium):
    """409 (ended), 429 and 503 answered by Playwright for the message request: each is said in
    the page's language and the message goes back into the box; then a real send still works."""
    b = chromium(viewport={"width": 1100, "height": 900})
    b.expected_statuses |= {409, 429, 503}
    page = b.page
    page.goto(GATEWAY + "/scenarios?lang=en")
    _start_from_briefing(page, "decline-overtime")
    answers = {
        "429": {
            "status": 429,
            "headers": {"Retry-After": "7"},
            "content_type": "application/json",
            "body": json.dumps({"error": "rate_limited", "message": "Too many messages", "retry_after_s": 7}),
        },
        "503": {
            "status": 503,
            "headers": {"Retry-After": "5"},
            "content_type": "application/json",
            "body": json.dumps({"error": "unavailable", "message": "a service this needs is unavailable"}),
        },
        "409": {
            "status": 409,
            "content_type": "application/json",
            "body": json.dumps({"error": "conflict", "message": "this roleplay has ended", "field": "session_id"}),
        },
    }
    current = {"answer": "429"}
    page.route("**/messages", lambda route: route.fulfill(**answers[current["answer"]]))

    b.send("I am sorry, I cannot stay late tonight.")
    assert b.transcript()[-1] == ("model", EN["rate_limited_send"].replace("{wait}", "7 seconds"))
    assert page.input_value("#message") == "I am sorry, I cannot stay late tonight."
    assert page.locator("#status").inner_text() == EN["unsent_status"]
    assert "unsent" in page.locator("#log li.msg.user").last.get_attribute("class")

    current["answer"] = "503"
    b.send("I am sorry, I cannot stay late tonight.")
    assert b.transcript()[-1] == ("model", EN["reply_unavailable"])

    page.unroute("**/messages")
    b.send("I am sorry, I cannot stay late tonight.")
    assert b.transcript()[-1][1] not in (EN["reply_unavailable"], EN["reply_failed"], EN["network_failed"])
    assert page.locator("#turn-counter").inner_text().startswith("Your turns: 1 of")

    current["answer"] = "409"
    page.route("**/messages", lambda route: route.fulfill(**answers[current["answer"]]))
    b.send("How about tomorrow morning?")
    assert b.transcript()[-1] == ("model", EN["ended_conflict"])
    page.locator("#closing").wait_for(state="visible", timeout=10_000)
    assert page.locator("#closing-heading").inner_text() == EN["ended_heading"]
    assert not b.problems, b.problems


# --------------------------------------------------------------------------- the catalogue on a phone


def test_catalogue_filters_on_a_phone_and_the_language_switch_keeps_them(chromium):
    b = chromium(**PHONE)
    page = b.page
    page.goto(GATEWAY + "/scenarios")
    _wait_for_cards(page)
    page.screenshot(path=str(SCREENSHOTS / "catalogue-phone.png"))
    page.screenshot(path=str(SCREENSHOTS / "catalogue-phone-full.png"), full_page=True)
    total = page.locator("#scenario-list li.scenario-card").count()
    assert page.locator("#results-status").inner_text() == JA["catalogue_count"].replace("{n}", str(total))
    all_chip = page.locator("#categories .chip").first
    assert all_chip.locator(".chip-count").inner_text() == str(total)

    declining = page.locator('#categories .chip[data-category="declining"]')
    expected = int(declining.locator(".chip-count").inner_text())
    declining.click()
    page.wait_for_function("() => location.search.includes('category=declining')")
    _wait_for_cards(page)
    assert page.locator("#scenario-list li.scenario-card").count() == expected
    assert declining.get_attribute("aria-pressed") == "true"
    categories = page.locator("#scenario-list .card-category").all_inner_texts()
    assert set(categories) == {declining.locator("span").first.inner_text()}

    page.select_option("#difficulty", "advanced")
    page.wait_for_function("() => location.search.includes('difficulty=advanced')")
    _wait_for_cards_or_empty(page)
    badges = page.locator("#scenario-list .difficulty-badge").all_inner_texts()
    assert all(badge == JA["difficulty_advanced"] for badge in badges)

    page.select_option("#difficulty", "")
    _wait_for_cards(page)
    page.locator(".lang-switch").click()
    page.wait_for_url(re.compile(r"lang=en"))
    _wait_for_cards(page)
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator('#categories .chip[data-category="declining"]').get_attribute("aria-pressed") == "true"
    assert page.locator("#scenario-list li.scenario-card").count() == expected
    assert page.locator("#search-input").get_attribute("placeholder") == EN["search_placeholder"]
    assert not b.problems, b.problems


def _wait_for_cards_or_empty(page) -> None:
    page.wait_for_function("() => !document.querySelector('#scenario-list[aria-busy]')", timeout=30_000)


# --------------------------------------------------------------------------- free chat over a reload


def test_free_chat_keeps_its_conversation_over_a_reload(chromium):
    b = chromium(viewport={"width": 1200, "height": 800})
    page = b.page
    page.goto(GATEWAY + "/")
    page.select_option("#partner", "senior")
    page.select_option("#situation", "lunch")
    b.send(f"今日のランチ、どこに行きましょうか？（{uuid.uuid4().hex[:4]}）")
    page.wait_for_function("() => new URLSearchParams(location.search).get('session')", timeout=10_000)
    session = re.search(r"session=([0-9a-f-]{36})", page.url).group(1)
    assert f"session={session}" in page.locator(".lang-switch").get_attribute("href")
    b.send("駅前の定食屋さんはどうですか？")
    transcript = b.transcript()
    assert len(transcript) == 4 and transcript[0][0] == "user" and transcript[1][0] == "model"

    page.reload()
    page.wait_for_function(
        f"() => document.querySelectorAll('#log li.msg').length === {len(transcript)}", timeout=30_000
    )
    assert b.transcript() == transcript
    assert page.input_value("#partner") == "senior" and page.is_disabled("#partner")
    assert page.input_value("#situation") == "lunch"
    # The conversation goes on in the same session.
    b.send("じゃあ12時に行きましょう。")
    assert len(b.transcript()) == 6 and f"session={session}" in page.url

    # "New conversation" starts afresh, and the address forgets the old one.
    page.click("#new-chat")
    assert "session=" not in page.url and b.transcript() == [] and page.is_enabled("#partner")

    # Someone else's (or an unknown) conversation in the address: said, and a new one begins.
    b.expected_statuses.add(404)
    page.goto(f"{GATEWAY}/?session={uuid.uuid4()}")
    page.wait_for_function("() => !location.search.includes('session=')", timeout=30_000)
    assert page.locator("#status").inner_text() == JA["conversation_not_found"]
    assert b.transcript() == []
    assert not b.problems, b.problems
