"""Watch mode and speech through the gateway (the platform of `task up`, no API key), in
headless Chromium: a watched dialogue streams, the learner steps in and both characters answer,
it ends with what to notice; an AI line plays in its character's voice (the audio element loads
a real, non-empty MP3), the voices differ per character as the TTS service assigns them, a
repeated line comes from the audio cache; with auto-play on, a streamed chat reply is spoken
sentence by sentence. Phone-sized pictures go to .run/screenshots/."""

from __future__ import annotations

import re
from pathlib import Path

from support.browser import PHONE
from web_service.ui_text import TEXT

REPO = Path(__file__).resolve().parents[2]
GATEWAY = "http://127.0.0.1:8080"
SCREENSHOTS = REPO / ".run" / "screenshots"
JA = TEXT["ja"]
# A small-talk scenario whose model conversation runs to ten lines: long enough to step in,
# pause, resume and stop before it ends on its own.
SCENARIO = "invite-colleague-to-lunch"
INTERVENTION = "駅前に新しくできた定食屋さん、評判がいいみたいですよ"

# The turns on the page as (speaker class, text): "a", "b" or "you".
TURNS_JS = """() => [...document.querySelectorAll('#log li.msg')].map(li => [
  li.classList.contains('user') ? 'you' : (li.classList.contains('peer') ? 'b' : 'a'),
  li.querySelector('.body').textContent])"""


def _start_watch(page, pace: str = "2") -> str:
    page.goto(f"{GATEWAY}/watch?scenario={SCENARIO}")
    page.wait_for_function("() => !document.querySelector('#w-scenario').disabled", timeout=30_000)
    assert page.input_value("#w-scenario") == SCENARIO
    # The gray zones (consent scenarios) are practised as a roleplay only: not offered here.
    assert page.locator('#w-scenario option[value="drinking-pressure"]').count() == 0
    page.select_option("#w-pace", pace)
    page.click("#w-start")
    page.wait_for_url(re.compile(r"/watch/[0-9a-f-]{36}$"), timeout=30_000)
    page.locator("#w-controls").wait_for(state="visible", timeout=30_000)
    return page.url.rsplit("/", 1)[1]


def _wait_turns(page, count: int, timeout: int = 45_000) -> list[list[str]]:
    page.wait_for_function(f"() => document.querySelectorAll('#log li.msg').length >= {count}", timeout=timeout)
    return page.evaluate(TURNS_JS)


def test_a_watched_dialogue_streams_and_both_characters_answer_the_learner(chromium) -> None:
    driver = chromium(**PHONE)
    page = driver.page
    _start_watch(page)
    title = page.inner_text("#w-title")
    assert title and page.locator("#w-speakers li").count() == 2

    # The characters talk on their own: a opens, b answers.
    turns = _wait_turns(page, 2)
    assert [t[0] for t in turns[:2]] == ["a", "b"], turns
    assert all(text.strip() for _, text in turns)

    # The learner steps in; the next two lines answer it, one from each character.
    page.fill("#message", INTERVENTION)
    page.press("#message", "Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#log li.msg.user')].some(li => li.textContent.includes('定食屋'))",
        timeout=15_000,
    )
    page.wait_for_function(
        """() => { const all = [...document.querySelectorAll('#log li.msg')];
                   const i = all.findIndex(li => li.classList.contains('user'));
                   return i >= 0 && all.length >= i + 3; }""",
        timeout=45_000,
    )
    turns = page.evaluate(TURNS_JS)
    mine = [i for i, t in enumerate(turns) if t[0] == "you"]
    assert len(mine) == 1, turns
    after = [speaker for speaker, _ in turns[mine[0] + 1 : mine[0] + 3]]
    assert sorted(after) == ["a", "b"], turns
    page.screenshot(path=str(SCREENSHOTS / "watch-phone.png"), full_page=True)

    # Pause: no new line while paused; resume goes on.
    page.click("#w-pause")
    page.wait_for_function(f"() => document.querySelector('#w-pause').textContent.trim() === '{JA['resume']}'")
    shown = page.locator("#log li.msg").count()
    page.wait_for_timeout(5_000)
    assert page.locator("#log li.msg").count() <= shown + 1  # a line already being written may land
    paused_count = page.locator("#log li.msg").count()
    page.wait_for_timeout(3_000)
    assert page.locator("#log li.msg").count() == paused_count
    page.click("#w-pause")
    _wait_turns(page, paused_count + 1)

    # Stop: the closing part says so and the notes arrive, with phrases and why they work.
    page.click("#w-stop")
    page.locator("#closing").wait_for(state="visible", timeout=15_000)
    assert page.inner_text("#closing-reason") == JA["watch_ended_stopped"]
    page.wait_for_function("() => document.querySelectorAll('#notes-list li').length > 0", timeout=20_000)
    first_note = page.locator("#notes-list li").first
    assert first_note.locator("q").inner_text().strip() and first_note.locator("p").inner_text().strip()
    assert page.locator("#practise").get_attribute("href") == f"/scenarios/{SCENARIO}"
    page.screenshot(path=str(SCREENSHOTS / "watch-notes-phone.png"), full_page=True)

    # A reload shows the same dialogue, ended.
    before = page.evaluate(TURNS_JS)
    page.reload()
    page.locator("#closing").wait_for(state="visible", timeout=15_000)
    assert page.evaluate(TURNS_JS) == before
    assert not driver.problems, driver.problems


# Every audio the page starts playing, as it starts: (its address, its duration, whether it had
# loaded enough to play). Installed before the page's own scripts run.
RECORD_PLAYING = """
window.__played = [];
document.addEventListener('playing', (e) => {
  const a = e.target;
  window.__played.push({ src: a.currentSrc, duration: a.duration, readyState: a.readyState, id: a.id });
}, true);
"""


def _played(page, match: str = "") -> dict:
    """Waits for the page to start playing audio whose address contains `match`; what it played,
    fetched again: status, size, type, the TTS service's headers and the first bytes."""
    find = f"window.__played.find(p => p.src.includes({match!r}))"
    page.wait_for_function(f"() => Boolean({find})", timeout=45_000)
    return page.evaluate(
        f"""async () => {{
          const p = {find};
          const r = await fetch(p.src, {{ credentials: 'same-origin', cache: 'no-store' }});
          const bytes = new Uint8Array(await r.arrayBuffer());
          return {{ ...p, status: r.status, size: bytes.length,
                   type: r.headers.get('content-type'), voice: r.headers.get('x-tts-voice'),
                   cached: r.headers.get('x-tts-cached'), head: Array.from(bytes.slice(0, 3)) }};
        }}"""
    )


def test_each_line_plays_in_its_characters_voice_and_repeats_come_from_the_cache(chromium) -> None:
    driver = chromium()
    page = driver.page
    page.add_init_script(RECORD_PLAYING)
    watch_id = _start_watch(page)
    _wait_turns(page, 2)
    page.click("#w-pause")

    voices = page.evaluate(
        """async () => { const r = await fetch('/api/v2/tts/voices', { credentials: 'same-origin' });
                         return await r.json(); }"""
    )
    watch = page.evaluate(
        f"""async () => (await fetch('/api/v2/watch/{watch_id}', {{ credentials: 'same-origin' }})).json()"""
    )
    character = {s["id"]: s["character_id"] for s in watch["speakers"]}
    assigned = {(c["character_id"], c["language"]): c["voice"] for c in voices["characters"]}

    heard = {}
    for speaker, selector in (("a", "#log li.msg.model:not(.peer)"), ("b", "#log li.msg.peer")):
        page.locator(selector).first.locator("button.play").click()
        audio = _played(page, f"character_id={character[speaker]}")
        assert audio["id"] == "speech-player" and audio["readyState"] >= 2
        assert audio["status"] == 200 and audio["type"].startswith("audio/mpeg"), audio
        assert audio["size"] > 2_000 and audio["duration"] > 0.3, audio
        # An MP3: an ID3 tag or a frame sync word.
        assert audio["head"][:3] == [73, 68, 51] or (audio["head"][0] == 0xFF and audio["head"][1] & 0xE0 == 0xE0)
        # The line was spoken before (the click), so fetching it again finds it in the cache.
        assert audio["cached"] == "1", audio
        assert audio["voice"] == assigned[(character[speaker], "ja")], (speaker, audio, character)
        heard[speaker] = audio["voice"]
        page.evaluate("() => document.querySelector('#speech-player').pause()")
    assert heard["a"] != heard["b"], "two characters, two voices"
    assert not driver.problems, driver.problems


def test_auto_play_speaks_a_streamed_chat_reply_sentence_by_sentence(chromium) -> None:
    driver = chromium()
    page = driver.page
    page.add_init_script(RECORD_PLAYING)
    page.goto(GATEWAY + "/")
    page.check("#autoplay")
    page.select_option("#partner", "senior")
    driver.send("お疲れさまです。今日の会議の資料、どこに置いてありますか？")
    audio = _played(page)
    reply = page.locator("#log li.msg.model").last.locator(".body").inner_text()
    spoken = re.search(r"[?&]text=([^&]+)", audio["src"])
    assert spoken, audio
    from urllib.parse import unquote_plus

    first = unquote_plus(spoken.group(1))
    # The first sentence of the reply, as it appeared, is what plays first.
    assert reply.startswith(first) or first in reply, (first, reply)
    assert audio["voice"] and audio["size"] > 1_000
    # The choice is remembered on the next visit.
    page.reload()
    assert page.is_checked("#autoplay")
    assert not driver.problems, driver.problems
