"""The learner's progress pages through the gateway (the platform of `task up`), in headless
Chromium: the coaching report (its progress while feedback writes it, then scores, evidence in
the learner's own words, criteria, links and print), two attempts compared, the journal (newest
first, CSV), strengths over time (a Chart.js chart, what to practise next), the empty pages of a
new learner, and the free chat's "end the conversation" leading to its report. Phone-sized
pictures of the report, the comparison, the journal and strengths go to .run/screenshots/."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from pathlib import Path

import httpx
from support.browser import PHONE
from web_service.ui_text import TEXT

REPO = Path(__file__).resolve().parents[2]
GATEWAY = "http://127.0.0.1:8080"
SCREENSHOTS = REPO / ".run" / "screenshots"
JA, EN = TEXT["ja"], TEXT["en"]
POOR = "無理です。"
GOOD_FIRST = "申し訳ありません、今夜は家族の用事があって残れないんです"
GOOD_SECOND = "明日の朝8時に来て、会議の前に仕上げるのはどうでしょうか"
REPORT_TIMEOUT_MS = 70_000  # the page itself gives up after a minute


def _start(page, scenario_id: str = "decline-overtime") -> str:
    """Opens the scenario's briefing, starts it and waits for the roleplay; its session id."""
    page.goto(f"{GATEWAY}/scenarios/{scenario_id}")
    page.locator("#briefing").wait_for(state="visible", timeout=30_000)
    page.click("#start")
    page.wait_for_url(re.compile(r"/roleplay/[0-9a-f-]{36}$"), timeout=30_000)
    page.locator("#play").wait_for(state="visible", timeout=30_000)
    return page.url.rsplit("/", 1)[1]


def _wait_for_report(page) -> None:
    page.locator("#report").wait_for(state="visible", timeout=REPORT_TIMEOUT_MS)


def _quotes(page, selector: str = "#r-skills") -> list[tuple[str, bool]]:
    """The learner's words quoted as evidence: (quote, positive) per item."""
    items = page.locator(f"{selector} .evidence-item").evaluate_all(
        "items => items.map(i => [i.querySelector('.learner-quote').textContent, i.classList.contains('positive')])"
    )
    return [(quote, positive) for quote, positive in items]


def _overall(page) -> float:
    return float(page.locator("#r-overall").inner_text())


# --------------------------------------------------------------------------- the pages as served


def test_progress_pages_are_served_in_both_languages_and_linked_from_the_nav(platform):
    pages = (f"/report/{uuid.uuid4()}", "/compare", f"/compare?before={uuid.uuid4()}&after=x", "/journal", "/strengths")
    with httpx.Client(base_url=platform, timeout=30) as client:
        for path in (*pages, "/", "/scenarios", "/account"):
            for lang, text in (("ja", JA), ("en", EN)):
                r = client.get(path, params={"lang": lang})
                assert r.status_code == 200, path
                assert f'<html lang="{lang}">' in r.text
                # Journal and strengths are in the top navigation of every page.
                assert '<a href="/journal" id="journal-link"' in r.text and text["nav_journal"] in r.text, path
                assert '<a href="/strengths" id="strengths-link"' in r.text and text["nav_strengths"] in r.text, path
                # CSP: scripts from files only, no inline handlers or styles.
                for script in re.findall(r"<script[^>]*>", r.text):
                    assert "src=" in script or 'type="application/json"' in script, (path, script)
                assert not re.search(r"\son[a-z]+=|\sstyle=|<style", r.text), path
        r = client.get("/journal?lang=en")
        assert 'aria-current="page">' + EN["nav_journal"] in r.text
        assert EN["journal_heading"] in r.text and 'href="/api/v2/feedback/journal.csv?lang=en"' in r.text
        r = client.get("/strengths?lang=ja")
        assert 'aria-current="page">' + JA["nav_strengths"] in r.text
        assert '<script src="/static/vendor/chart-4.6.1.umd.min.js"></script>' in r.text
        assert client.get("/static/vendor/chart-4.6.1.umd.min.js").status_code == 200
        # A report's page belongs to the journal in the nav; a malformed id is a 404.
        assert 'aria-current="page">' + JA["nav_journal"] in client.get(f"/report/{uuid.uuid4()}?lang=ja").text
        assert client.get("/report/not-a-session").status_code == 404
        # The compare page takes only session ids from its address.
        r = client.get("/compare", params={"before": '"><script>', "after": str(uuid.uuid4())})
        assert 'data-before=""' in r.text and "<script>" not in r.text.split("<body>", 1)[1].split("</main>")[0]


# --------------------------------------------------------------------------- a new learner


def test_a_new_learner_is_pointed_to_the_scenarios_from_journal_and_strengths(chromium):
    b = chromium(**PHONE)
    b.expected_statuses.add(404)  # the report page asks until the report is written
    page = b.page
    page.goto(GATEWAY + "/journal")
    page.locator("#journal-empty").wait_for(state="visible", timeout=30_000)
    assert JA["journal_empty"] in page.locator("#journal-empty").inner_text()
    assert page.locator("#journal").is_hidden() and page.locator("#csv").is_hidden()
    assert page.locator('#journal-empty a[href="/scenarios"]').inner_text() == JA["start_scenarios"]

    page.goto(GATEWAY + "/strengths")
    page.locator("#strengths-empty").wait_for(state="visible", timeout=30_000)
    assert JA["strengths_empty"] in page.locator("#strengths-empty").inner_text()
    assert page.locator("#strengths").is_hidden()
    page.locator('#strengths-empty a[href="/scenarios"]').click()
    page.wait_for_url("**/scenarios")
    assert not b.problems, b.problems


# --------------------------------------------------------------------------- poor, then good


def test_two_attempts_reports_with_evidence_compared_in_the_journal_and_in_strengths(chromium):
    b = chromium(**PHONE)
    b.expected_statuses.add(404)  # the report page asks until the report is written
    page = b.page

    # The first attempt, poorly: one blunt turn, then the learner ends it.
    first = _start(page)
    b.send(POOR)
    if page.locator("#closing").is_hidden():
        page.click("#end")
    page.locator("#closing").wait_for(state="visible", timeout=30_000)
    assert page.locator("#see-report").get_attribute("href") == f"/report/{first}"

    # The report is not there at first (feedback writes it a few seconds after the end): the
    # page says so and keeps asking. Here its first two answers are held back as 404s.
    held = {"n": 0}

    def not_yet(route) -> None:
        if held["n"] < 2:
            held["n"] += 1
            route.fulfill(status=404, content_type="application/json", body=json.dumps({"error": "not_found"}))
        else:
            route.continue_()

    page.route(f"**/api/v2/feedback/sessions/{first}/report", not_yet)
    page.click("#see-report")
    page.wait_for_url(f"**/report/{first}")
    waiting = page.locator("#report-wait")
    waiting.wait_for(state="visible", timeout=10_000)
    assert JA["report_waiting"] in waiting.inner_text() and waiting.locator(".spinner").count() == 1
    _wait_for_report(page)
    assert held["n"] == 2 and waiting.is_hidden()
    page.unroute(f"**/api/v2/feedback/sessions/{first}/report")

    assert page.locator("#r-title").inner_text() == "急な残業の依頼を断る"
    assert page.locator("#r-kind").inner_text() == JA["kind_scenario"]
    poor_overall = _overall(page)
    assert 1 <= poor_overall <= 5
    skills = page.locator("#r-skills .skill-card")
    assert skills.count() == 6
    for i in range(6):
        card = skills.nth(i)
        assert card.locator("h4").inner_text().strip() and card.locator(".skill-meaning").inner_text().strip()
        filled = card.locator(".dots .dot.on").count()
        assert 1 <= filled <= 5 and card.locator(".dots").get_attribute("aria-label") == f"5段階中 {filled}"
    # The learner's own words, marked as what held the score back.
    assert (POOR, False) in _quotes(page), _quotes(page)
    assert page.locator("#r-skills .advice").count() >= 1 and page.locator("#r-skills .better-phrasing").count() >= 1
    criteria = page.locator("#r-criteria .criterion")
    assert criteria.count() >= 2 and page.locator("#r-criteria .status-missed").count() >= 1
    assert (POOR, False) in _quotes(page, "#r-criteria")
    assert page.locator("#r-try-next li").count() >= 1
    # Links: the transcript, the scenario again, the journal; nothing to compare with yet.
    assert page.locator("#r-transcript").get_attribute("href") == f"/roleplay/{first}"
    assert page.locator("#r-again").get_attribute("href") == "/scenarios/decline-overtime"
    assert page.locator("#r-compare").is_hidden()
    assert page.evaluate("document.activeElement.id") == "r-title", "focus moves to the report once it is there"

    # The second attempt, well: an apology with a reason, then a concrete alternative.
    page.click("#r-again")
    page.locator("#briefing").wait_for(state="visible", timeout=30_000)
    page.click("#start")
    page.wait_for_url(re.compile(r"/roleplay/[0-9a-f-]{36}$"), timeout=30_000)
    page.locator("#play").wait_for(state="visible", timeout=30_000)
    second = page.url.rsplit("/", 1)[1]
    b.send(GOOD_FIRST)
    b.send(GOOD_SECOND)
    if page.locator("#closing").is_hidden():
        page.click("#end")
    page.locator("#closing").wait_for(state="visible", timeout=30_000)
    page.click("#see-report")
    page.wait_for_url(f"**/report/{second}")
    _wait_for_report(page)
    good_overall = _overall(page)
    assert good_overall > poor_overall
    quotes = _quotes(page)
    assert (GOOD_FIRST, True) in quotes and (GOOD_SECOND, True) in quotes, quotes
    assert page.locator("#r-strengths li").count() >= 1
    assert page.locator("#r-criteria .status-met").count() >= 2
    compare = page.locator("#r-compare")
    assert compare.is_visible()
    assert compare.get_attribute("href") == f"/compare?before={first}&after={second}"
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / "report-phone.png"), full_page=True)

    # Printed, the report is its content only.
    page.emulate_media(media="print")
    assert page.locator(".top-nav").is_hidden() and page.locator("#print").is_hidden()
    assert page.locator("#r-skills").is_visible()
    page.emulate_media(media="screen")

    # In English the page's own wording changes; the report's text stays in its language.
    page.goto(f"{GATEWAY}/report/{second}?lang=en")
    _wait_for_report(page)
    assert page.locator("#skills-heading").inner_text() == EN["skills_heading"]
    assert page.locator("#r-compare").inner_text() == EN["compare_previous"]
    assert page.locator(".learner-quote").first.get_attribute("lang") == "ja"
    page.goto(f"{GATEWAY}/report/{second}?lang=ja")
    _wait_for_report(page)
    page.locator("#r-compare").wait_for(state="visible", timeout=10_000)

    # The two attempts compared: opened from the second report.
    page.click("#r-compare")
    page.wait_for_url(re.compile(r"/compare\?"))
    page.locator("#compare").wait_for(state="visible", timeout=30_000)
    assert page.locator("#c-title").inner_text() == "急な残業の依頼を断る"
    assert page.locator("#c-before-date time").get_attribute("datetime")
    assert page.locator("#c-after-date time").get_attribute("datetime")
    assert page.locator("#c-overall-change .change").get_attribute("class") == "change change-up"
    assert page.locator("#c-before-report").get_attribute("href") == f"/report/{first}"
    assert page.locator("#c-after-report").get_attribute("href") == f"/report/{second}"
    rows = page.locator("#c-skills .cmp-row")
    assert rows.count() == 6
    assert page.locator("#c-skills .change-up").count() >= 1 and page.locator("#c-skills .change-down").count() == 0
    arrows = page.locator("#c-skills .change-arrow").all_inner_texts()
    assert all(re.fullmatch(r"[↑↓]\d|=|–", a) for a in arrows), arrows
    criteria_rows = page.locator("#c-criteria .cmp-row")
    assert criteria_rows.count() >= 2 and page.locator("#c-criteria .change-up").count() >= 1
    assert page.locator("#c-criteria .cmp-status").first.inner_text().strip()
    assert re.search(r"\d+項目が上がり", page.locator("#c-summary").inner_text())
    page.screenshot(path=str(SCREENSHOTS / "compare-phone.png"), full_page=True)

    # The journal: both attempts, newest first, each opening its report and transcript.
    page.click("#journal-link")
    page.wait_for_url("**/journal")
    page.locator("#journal").wait_for(state="visible", timeout=30_000)
    entries = page.locator("#journal-list .je-row")
    assert entries.count() == 2
    assert [entries.nth(i).get_attribute("data-session-id") for i in range(2)] == [second, first]
    assert page.locator("#journal-status").inner_text() == "全2件中 1〜2件目（新しい順）"
    newest = entries.nth(0)
    assert newest.locator(".je-title").inner_text() == "急な残業の依頼を断る"
    assert newest.locator(".kind-badge").inner_text() == JA["kind_scenario"]
    assert newest.locator(".je-turns").inner_text().endswith("発言 2回")
    assert newest.locator(".je-report").get_attribute("href") == f"/report/{second}"
    assert newest.locator(".je-transcript").get_attribute("href") == f"/roleplay/{second}"
    assert newest.locator(".je-compare").get_attribute("href") == f"/compare?before={first}&after={second}"
    assert entries.nth(1).locator(".je-compare").count() == 0
    assert page.locator("#pager").is_hidden()
    page.screenshot(path=str(SCREENSHOTS / "journal-phone.png"), full_page=True)

    with page.expect_download(timeout=30_000) as downloading:
        page.click("#csv")
    download = downloading.value
    assert download.suggested_filename == "workplace-roleplay-journal.csv"
    body = Path(download.path()).read_text(encoding="utf-8")
    assert body.startswith("\ufeff")
    rows_csv = list(csv.reader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows_csv[0][:2] == ["日時", "練習"] and len(rows_csv) == 3
    assert rows_csv[1][-1] == second and rows_csv[2][-1] == first

    newest.locator(".je-transcript").click()
    page.wait_for_url(f"**/roleplay/{second}")
    page.locator("#closing").wait_for(state="visible", timeout=30_000)

    # Strengths: the chart of both sessions, the strongest, and what to practise next.
    page.click("#strengths-link")
    page.wait_for_url("**/strengths")
    page.locator("#strengths").wait_for(state="visible", timeout=30_000)
    page.wait_for_function(
        "() => { const c = window.Chart && Chart.getChart(document.getElementById('skills-chart'));"
        " return c && c.data.datasets.length === 6; }",
        timeout=15_000,
    )
    chart = page.evaluate(
        "() => { const c = Chart.getChart(document.getElementById('skills-chart'));"
        " return { labels: c.data.labels.length, data: c.data.datasets.map(d => d.data),"
        "          names: c.data.datasets.map(d => d.label) }; }"
    )
    assert chart["labels"] == 2 and all(len(d) == 2 and all(1 <= v <= 5 for v in d) for d in chart["data"]), chart
    assert "丁寧さ・言葉づかい" in chart["names"]
    page.wait_for_timeout(800)  # the lines' animation
    painted = page.evaluate(
        "() => { const c = document.getElementById('skills-chart');"
        " const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++; return n; }"
    )
    assert painted > 2000, painted
    assert page.locator("#skills-chart").get_attribute("aria-label") == JA["chart_label"].replace("{n}", "2")
    assert page.locator("#s-count").inner_text().startswith("これまでの練習：2回")
    assert page.locator("#s-weakest").inner_text().strip() and page.locator("#s-advice").inner_text().strip()
    assert page.locator("#s-skills .skill-line").count() == 6
    suggestions = page.locator("#s-suggested .suggestion")
    suggestions.first.wait_for(timeout=30_000)
    assert suggestions.count() == 3
    hrefs = suggestions.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert all(re.fullmatch(r"/scenarios/[a-z][a-z0-9_-]+", h) for h in hrefs), hrefs
    page.screenshot(path=str(SCREENSHOTS / "strengths-phone.png"), full_page=True)
    suggestions.first.locator("a").click()
    page.wait_for_url(re.compile(r"/scenarios/[a-z]"))
    page.locator("#briefing").wait_for(state="visible", timeout=30_000)
    assert not b.problems, b.problems


# --------------------------------------------------------------------------- free chat


def test_free_chat_can_be_ended_and_its_report_opens(chromium):
    b = chromium(viewport={"width": 1200, "height": 900})
    b.expected_statuses.add(404)  # the report page asks until the report is written
    page = b.page
    page.goto(GATEWAY + "/")
    assert page.locator("#end-chat").is_hidden(), "nothing to end before the first turn"
    message = f"お疲れさまです。週末はどうでしたか？（{uuid.uuid4().hex[:4]}）"
    b.send(message)
    page.wait_for_function("() => new URLSearchParams(location.search).get('session')", timeout=10_000)
    session = re.search(r"session=([0-9a-f-]{36})", page.url).group(1)
    end = page.locator("#end-chat")
    assert end.is_visible() and end.inner_text() == JA["end_chat"]

    end.click()
    page.wait_for_url(f"**/report/{session}", timeout=30_000)
    _wait_for_report(page)
    assert page.locator("#r-kind").inner_text() == JA["kind_chat"]
    assert page.locator("#r-title").inner_text() == JA["kind_chat"]
    assert any(quote == message for quote, _ in _quotes(page)), _quotes(page)
    assert page.locator("#r-criteria-part").is_hidden(), "a free chat has no scenario criteria"
    assert page.locator("#r-transcript").get_attribute("href") == f"/?session={session}"
    assert page.locator("#r-again").get_attribute("href") == "/"
    assert page.locator("#r-again").inner_text() == JA["new_chat_link"]
    assert page.locator("#r-compare").is_hidden()

    # The conversation again: ended, so no more messages, and its report a link away.
    page.click("#r-transcript")
    page.locator("#chat-ended").wait_for(state="visible", timeout=30_000)
    assert page.locator("#log li.msg.user .body").first.inner_text() == message
    assert page.is_disabled("#message") and page.is_disabled("#send") and page.locator("#end-chat").is_hidden()
    assert page.locator("#chat-ended-report").get_attribute("href") == f"/report/{session}"
    # "New conversation" starts afresh.
    page.click("#new-chat")
    assert page.is_enabled("#message") and page.locator("#chat-ended").is_hidden() and "session=" not in page.url

    # The journal lists it as a free chat, its transcript being the chat page.
    page.goto(GATEWAY + "/journal")
    page.locator("#journal").wait_for(state="visible", timeout=30_000)
    row = page.locator(f'#journal-list .je-row[data-session-id="{session}"]')
    assert row.locator(".kind-badge").inner_text() == JA["kind_chat"]
    assert row.locator(".je-transcript").get_attribute("href") == f"/?session={session}"
    assert not b.problems, b.problems


# --------------------------------------------------------------------------- journal pages


def test_the_journal_pages_through_a_long_history_and_keeps_its_page_in_the_address(chromium):
    """45 ended sessions (the journal API answered by Playwright): 20 to a page, newest first."""
    b = chromium(**PHONE)
    b.expected_statuses.add(404)  # the report page asks until the report is written
    page = b.page
    total = 45
    ids = [str(uuid.uuid4()) for _ in range(total)]
    asked: list[tuple[int, int]] = []

    def journal(route) -> None:
        query = dict(re.findall(r"[?&]([a-z_]+)=([^&]*)", route.request.url))
        limit, offset = int(query["limit"]), int(query["offset"])
        asked.append((limit, offset))
        entries = [
            {
                "session_id": ids[i],
                "source_service": "chat" if i % 2 else "scenario",
                "scenario_id": "" if i % 2 else "decline-overtime",
                "title": JA["kind_chat"] if i % 2 else "急な残業の依頼を断る",
                "started_at": f"2026-11-{30 - i // 2:02d}T09:00:00+00:00",
                "ended_at": f"2026-11-{30 - i // 2:02d}T09:02:05+00:00",
                "duration_s": 125,
                "turn_count": 3,
                "overall": 3.5,
                "skills": {},
                "end_reason": "user",
            }
            for i in range(offset, min(total, offset + limit))
        ]
        body = {"entries": entries, "total": total, "skill_labels": {}}
        route.fulfill(status=200, content_type="application/json", body=json.dumps(body, ensure_ascii=False))

    page.route("**/api/v2/feedback/journal?*", journal)
    page.goto(GATEWAY + "/journal")
    page.locator("#journal").wait_for(state="visible", timeout=30_000)
    rows = page.locator("#journal-list .je-row")
    assert rows.count() == 20 and asked[-1] == (20, 0)
    assert page.locator("#journal-status").inner_text() == "全45件中 1〜20件目（新しい順）"
    assert rows.first.get_attribute("data-session-id") == ids[0]
    assert rows.first.locator(".je-duration").inner_text().endswith("2分5秒")
    assert page.locator("#newer").is_hidden() and page.locator("#older").is_visible()
    # A scenario attempt links the comparison with the same scenario's attempt before it.
    assert rows.first.locator(".je-compare").get_attribute("href") == f"/compare?before={ids[2]}&after={ids[0]}"
    assert rows.nth(1).locator(".je-transcript").get_attribute("href") == f"/?session={ids[1]}"

    page.click("#older")
    page.wait_for_function("() => location.search.includes('page=2')")
    page.wait_for_function("() => document.querySelector('#journal-status').textContent.includes('21〜40')")
    assert rows.first.get_attribute("data-session-id") == ids[20]
    assert page.evaluate("document.activeElement.closest('.je-row').dataset.sessionId") == ids[20]
    page.click("#older")
    page.wait_for_function("() => document.querySelector('#journal-status').textContent.includes('41〜45')")
    assert rows.count() == 5 and page.locator("#older").is_hidden() and page.locator("#newer").is_visible()
    assert "page=3" in page.locator(".lang-switch").get_attribute("href")

    page.reload()
    page.wait_for_function("() => document.querySelector('#journal-status').textContent.includes('41〜45')")
    assert asked[-1] == (20, 40)
    page.click("#newer")
    page.wait_for_function("() => document.querySelector('#journal-status').textContent.includes('21〜40')")
    assert "page=2" in page.url
    assert not b.problems, b.problems


# --------------------------------------------------------------------------- a report that never comes


def test_the_report_page_gives_up_after_a_minute_and_can_check_again(chromium):
    b = chromium(viewport={"width": 1000, "height": 800}, locale="en-GB")
    b.expected_statuses.add(404)  # the report page asks until the report is written
    page = b.page
    asked = {"n": 0}

    def never(route) -> None:
        asked["n"] += 1
        route.fulfill(status=404, content_type="application/json", body=json.dumps({"error": "not_found"}))

    page.route("**/api/v2/feedback/sessions/*/report", never)
    page.clock.install()
    page.goto(f"{GATEWAY}/report/{uuid.uuid4()}")
    page.locator("#report-wait").wait_for(state="visible", timeout=10_000)
    assert EN["report_waiting"] in page.locator("#report-wait").inner_text()
    page.wait_for_function("() => document.querySelector('#report-wait') !== null")
    page.wait_for_timeout(300)
    for _ in range(62):  # a second at a time, each poll's answer arriving in between
        page.clock.run_for(1_000)
        page.wait_for_timeout(20)
        if page.locator("#report-status").is_visible():
            break
    status = page.locator("#report-status")
    status.wait_for(state="visible", timeout=10_000)
    assert EN["report_gave_up"] in status.inner_text()
    assert page.locator("#report-wait").is_hidden() and 50 <= asked["n"] <= 63, asked
    assert page.locator("#report-gave-up-links a").get_attribute("href") == "/journal"
    # Checking again waits once more.
    status.locator("button").click()
    page.locator("#report-wait").wait_for(state="visible", timeout=10_000)
    assert not b.problems, b.problems
