#!/usr/bin/env python3
"""Fault injection: learners chat while a component fails; afterwards every turn the learner
was told was saved is stored once, and analysed exactly once, within a bounded time.

A second, independent copy of the platform (its own PostgreSQL, Redis, Pub/Sub emulator, and
the web, chat and feedback services under their own supervisord, on free ports) is started
through scripts/localrt.py, so killing its parts touches nothing else on the machine.

The learners behave like the web page: each sends its messages one after another in one
session; when an answer is an error they wait (Retry-After, else a second), check the
session's history if a reply had started (did the turn count?), and send again.

What is checked after each fault, against the databases themselves:
- every answer a learner got was clear: a reply (`done`), a 503 with Retry-After, an SSE
  `error` (`unavailable` before anything streamed, or `not_saved` for a turn that really was
  not stored), or - only while chat itself was down - no connection;
- every turn a learner was told about is stored exactly once, and nothing else is;
- every stored learner turn has exactly one analysis and one feedback.ready event id, and no
  analysis exists for a turn chat did not store;
- nothing waits in a dead-letter queue, nothing is stuck in an outbox;
- the time from the fault's end until the last turn was analysed (the recovery time).

    python tests/resilience/chaos.py [--learners 20] [--turns 5] [--down 20] [--faults all]

(`task chaos`) prints a table; tests/resilience/test_faults.py runs the same with small loads.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from httpx_sse import aconnect_sse

REPO = Path(__file__).resolve().parents[2]
CHAOS_ROOT = REPO / ".run" / "chaos"
TURNS_SUBSCRIPTION = "feedback.conversation-turns"


def _load_localrt():
    spec = importlib.util.spec_from_file_location("localrt", REPO / "scripts" / "localrt.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("localrt", module)  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return sys.modules["localrt"]


localrt = _load_localrt()
sys.path.insert(0, str(REPO / "tests"))  # run as a script too (task chaos)
from support.identity import Identities  # noqa: E402
from support.learners import LEARNER_LINES  # noqa: E402
from support.services import free_port  # noqa: E402
from workplace_kit.config import ServiceSettings  # noqa: E402
from workplace_kit.crypto import Cipher, open_cipher  # noqa: E402
from workplace_kit.db import create_pool  # noqa: E402
from workplace_kit.outbox import open_payload  # noqa: E402

# --------------------------------------------------------------------------- platform


@dataclass
class ChaosPlatform:
    """The second platform: web, chat, feedback and their infra, on free ports. Chat's AI is
    the Gemini wire-format stand-in (through the real google-genai client), pacing each reply
    over about a second, as Gemini does, so that a fault can hit a reply mid-stream; feedback
    uses the offline analysers."""

    rt: object
    env: dict[str, str]
    standin: subprocess.Popen

    @classmethod
    def start(cls, root: Path = CHAOS_ROOT) -> ChaosPlatform:
        # A clean slate each time: nothing of an earlier run (its outbox, its inbox) to count.
        if root.exists():
            with contextlib.suppress(Exception):
                localrt.all_down(localrt.Runtime(root=root, gateway=False, services=()))
            shutil.rmtree(root, ignore_errors=True)
            pg_fallback = localrt.pg_base_dir(localrt.Runtime(root=root))
            shutil.rmtree(pg_fallback, ignore_errors=True)
        standin_port = free_port()
        standin = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "tests" / "contract" / "gemini_standin.py"),
                "--port",
                str(standin_port),
                "--first-token-delay-ms",
                "200",
                "--chunks",
                "12",
                "--inter-chunk-delay-ms",
                "60",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        chat_ai = (
            ("WP_AI_PROVIDER", "gemini"),
            ("WP_GEMINI_API_KEYS", "chaos-key"),
            ("WP_GEMINI_BASE_URL", f"http://127.0.0.1:{standin_port}"),
        )
        services = (
            localrt.ServiceSpec("auth", free_port(), free_port()),
            localrt.ServiceSpec("web", free_port(), None),
            localrt.ServiceSpec("chat", free_port(), free_port(), env=chat_ai),
            localrt.ServiceSpec("feedback", free_port(), free_port()),
        )
        rt = localrt.Runtime(
            root=root,
            pg_port=free_port(),
            redis_port=free_port(),
            pubsub_port=free_port(),
            services=services,
            gateway=False,
            # Learners here talk at machine speed: far above a person's message rate.
            extra_env=(
                ("WP_AI_PROVIDER", "offline"),
                ("WP_ENVIRONMENT", "test"),
                ("WP_CHAT_MESSAGES_RATE", "100000/minute"),
                ("WP_CHAT_AI_REPLIES_RATE", "100000/day"),
            ),
        )
        try:
            env_file = localrt.infra_up(rt, timeout=120)
            localrt.services_up(rt, timeout=180)
        except BaseException:
            standin.kill()
            with contextlib.suppress(Exception):
                localrt.all_down(rt)
            raise
        env = {**localrt.read_env_file(rt), "ENV_FILE": str(env_file)}
        platform = cls(rt, env, standin)
        LEARNERS[:] = [Identities(platform.http("auth"))]
        return platform

    def stop(self) -> None:
        try:
            localrt.all_down(self.rt)
        finally:
            self.standin.kill()
            self.standin.wait(10)

    def http(self, name: str) -> str:
        spec = next(s for s in self.rt.services if s.name == name)
        return f"http://127.0.0.1:{spec.http_port}"

    @property
    def database_url(self) -> str:
        return self.env["WP_DATABASE_URL"]

    async def dead_letters(self) -> dict[str, int]:
        """What waits on each dead-letter subscription of this platform's broker."""
        with _environ(PUBSUB_EMULATOR_HOST=self.env["PUBSUB_EMULATOR_HOST"]):
            from workplace_kit.bus import EventBus
            from workplace_kit.topology import DEFAULT

            bus = EventBus(self.env["WP_PUBSUB_PROJECT"], service_name="chaos-check", topology=DEFAULT)
            try:
                return {s.name: await bus.dead_letters(s.name) for s in DEFAULT.subscriptions}
            finally:
                await bus.close()


@contextlib.contextmanager
def _environ(**values: str):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


# --------------------------------------------------------------------------- learners


@dataclass
class Turn:
    learner: int
    index: int
    text: str
    answers: list[str] = field(default_factory=list)  # what the learner saw, attempt by attempt
    session_id: str = ""
    user_turn_id: str = ""
    told_saved: bool = False  # a `done`, or the history showed it after a broken stream
    not_saved_turn_ids: list[str] = field(default_factory=list)  # turns the service said were not saved


@dataclass
class Attempt:
    kind: str  # done | http-<status> | error-before-reply:<code> | error-after-reply:<code> | connection
    retry_after: float | None = None
    session_id: str = ""
    user_turn_id: str = ""
    started: bool = False


# Replies that have begun to stream and not ended, across all learners: the chat-kill fault
# waits for some, so that it really cuts replies mid-stream.
MID_REPLY: set[int] = set()


# The learners' accounts: guests of the platform's auth service, set when it starts.
LEARNERS: list[Identities] = []


async def send(client: httpx.AsyncClient, chat_url: str, user: str, text: str, session_id: str) -> Attempt:
    body = {"message": text, "session_id": session_id, "partner": "senior", "situation": "break"}
    attempt = Attempt("connection")
    delta_seen = False
    key = id(attempt)
    try:
        async with aconnect_sse(
            client, "POST", chat_url + "/api/v2/chat", json=body, headers=await LEARNERS[0].headers(user)
        ) as source:
            status = source.response.status_code
            if status != 200:
                await source.response.aread()
                retry_after = source.response.headers.get("retry-after")
                return Attempt(f"http-{status}", float(retry_after) if retry_after else None)
            async for event in source.aiter_sse():
                data = json.loads(event.data)
                if event.event == "start":
                    attempt.started = True
                    attempt.session_id = data["session_id"]
                    attempt.user_turn_id = data["user_turn_id"]
                elif event.event == "delta":
                    delta_seen = True
                    MID_REPLY.add(key)
                elif event.event == "done":
                    attempt.kind = "done"
                    return attempt
                elif event.event == "error":
                    where = "after-reply" if delta_seen else "before-reply"
                    attempt.kind = f"error-{where}:{data.get('error')}"
                    return attempt
    except (httpx.HTTPError, json.JSONDecodeError):
        pass
    finally:
        MID_REPLY.discard(key)
    attempt.kind = "connection"
    return attempt


async def turn_counted(client: httpx.AsyncClient, chat_url: str, user: str, attempt: Attempt, give_up: float) -> bool:
    """Ask the history whether the turn of a broken stream was stored (what the page does)."""
    while time.monotonic() < give_up:
        try:
            r = await client.get(
                f"{chat_url}/api/v2/chat/sessions/{attempt.session_id}", headers=await LEARNERS[0].headers(user)
            )
        except httpx.HTTPError:
            await asyncio.sleep(1)
            continue
        if r.status_code == 404:
            return False
        if r.status_code == 200:
            return any(m["turn_id"] == attempt.user_turn_id for m in r.json()["messages"])
        await asyncio.sleep(float(r.headers.get("retry-after", 1)))
    return False


async def learner(
    chat_url: str, run: str, number: int, turns: int, think_s: float, give_up_s: float
) -> tuple[str, list[Turn]]:
    user = f"chaos-{run}-{number}"
    done: list[Turn] = []
    session_id = ""
    rng = random.Random(f"{run}-{number}")
    await asyncio.sleep(rng.uniform(0, think_s))  # learners do not all start at once
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=3)) as client:
        for index in range(turns):
            turn = Turn(number, index, LEARNER_LINES[(number * 5 + index) % len(LEARNER_LINES)])
            give_up = time.monotonic() + give_up_s
            while time.monotonic() < give_up:
                attempt = await send(client, chat_url, user, turn.text, session_id)
                turn.answers.append(attempt.kind)
                if attempt.kind == "done":
                    turn.told_saved = True
                elif attempt.started and await turn_counted(client, chat_url, user, attempt, give_up):
                    turn.told_saved = True
                    turn.answers.append("counted (history)")
                if turn.told_saved:
                    session_id = session_id or attempt.session_id
                    turn.session_id, turn.user_turn_id = attempt.session_id, attempt.user_turn_id
                    break
                if attempt.started:  # a reply began but the turn did not count: it must never appear
                    turn.not_saved_turn_ids.append(attempt.user_turn_id)
                await asyncio.sleep(attempt.retry_after or 1.0)
            done.append(turn)
            await asyncio.sleep(think_s * rng.uniform(0.5, 1.5))
    return user, done


# --------------------------------------------------------------------------- checks


@dataclass
class Verdict:
    fault: str
    turns: list[Turn]
    fault_cleared_at: float  # wall clock (the database's timestamps are compared with it)
    stored: set[str] = field(default_factory=set)
    analysed: set[str] = field(default_factory=set)
    ready_ids_per_turn: Counter = field(default_factory=Counter)
    # The longest a stored turn waited for its analysis counted from the fault's end (or from
    # when it was stored, if later): what recovery cost a learner. None: some never arrived.
    recovery_s: float | None = None
    dead_letters: dict[str, int] = field(default_factory=dict)
    outbox_waiting: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def answers(self) -> Counter:
        return Counter(a for t in self.turns for a in t.answers)

    @property
    def told_saved(self) -> set[str]:
        return {t.user_turn_id for t in self.turns if t.told_saved}

    @property
    def ok(self) -> bool:
        return not self.problems

    def analysed_in(self, session_id: str) -> set[str]:
        return {t.user_turn_id for t in self.turns if t.session_id == session_id and t.user_turn_id in self.analysed}


def clear_answer(kind: str, chat_down_allowed: bool) -> bool:
    if kind in ("done", "counted (history)", "http-503"):
        return True
    if kind in ("error-before-reply:unavailable", "error-after-reply:not_saved"):
        return True
    return kind == "connection" and chat_down_allowed


async def _feedback_cipher(env: dict[str, str]) -> Cipher:
    """Feedback's cipher on this platform (its events in the outbox are sealed)."""
    pool = await create_pool(env["WP_DATABASE_URL"], schema="feedback", max_size=1)
    try:
        settings = ServiceSettings(service_name="feedback", encryption_keys_file=env["WP_ENCRYPTION_KEYS_FILE"])
        return await open_cipher(pool, settings)
    finally:
        await pool.close()


async def _database_facts(
    env: dict[str, str], users: list[str]
) -> tuple[set[str], set[str], Counter, int, dict[str, tuple[float, float | None]]]:
    from workplace.events.v1 import events_pb2

    users = [await LEARNERS[0].user_id(name) for name in users]  # the learners' account ids
    cipher = await _feedback_cipher(env)
    conn = await asyncpg.connect(env["WP_DATABASE_URL"])
    try:
        stored = {
            str(r["turn_id"])
            for r in await conn.fetch(
                "SELECT m.turn_id FROM chat.messages m JOIN chat.sessions s USING (session_id) "
                "WHERE m.role = 'user' AND s.user_id = ANY($1::text[])",
                users,
            )
        }
        analysed = {
            str(r["turn_id"])
            for r in await conn.fetch(
                "SELECT turn_id FROM feedback.turn_analyses WHERE user_id = ANY($1::text[])", users
            )
        }
        ready: Counter = Counter()
        seen_events: set[str] = set()
        for row in await conn.fetch(
            "SELECT type_name, ordering_key, payload, sealed FROM feedback.outbox "
            "WHERE type_name = 'workplace.events.v1.FeedbackReady'"
        ):
            event = events_pb2.FeedbackReady.FromString(open_payload(row, cipher))
            if event.user_id in users and event.event_id not in seen_events:
                seen_events.add(event.event_id)
                ready[event.turn_id] += 1
        timings = {
            str(r["turn_id"]): (r["stored"].timestamp(), r["analysed"].timestamp() if r["analysed"] else None)
            for r in await conn.fetch(
                "SELECT m.turn_id, m.created_at AS stored, a.analysed_at AS analysed "
                "FROM chat.messages m JOIN chat.sessions s USING (session_id) "
                "LEFT JOIN feedback.turn_analyses a ON a.turn_id = m.turn_id "
                "WHERE m.role = 'user' AND s.user_id = ANY($1::text[])",
                users,
            )
        }
        waiting = await conn.fetchval(
            "SELECT (SELECT count(*) FROM chat.outbox WHERE published_at IS NULL) "
            "+ (SELECT count(*) FROM feedback.outbox WHERE published_at IS NULL)"
        )
        return stored, analysed, ready, int(waiting), timings
    finally:
        await conn.close()


async def settle(
    platform: ChaosPlatform,
    fault: str,
    users: list[str],
    turns: list[Turn],
    fault_cleared_at: float,
    *,
    within_s: float,
    chat_down_allowed: bool = False,
) -> Verdict:
    verdict = Verdict(fault, turns, fault_cleared_at)
    deadline = time.monotonic() + within_s
    while True:
        try:
            stored, analysed, ready, waiting, _ = await _database_facts(platform.env, users)
        except (OSError, asyncpg.PostgresError):
            stored, analysed, ready, waiting = set(), set(), Counter(), -1
        if stored and stored <= analysed and waiting == 0:
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.0)  # room for a wrong second analysis or event to show up
    stored, analysed, ready, waiting, timings = await _database_facts(platform.env, users)
    if stored and stored <= analysed:
        verdict.recovery_s = max(
            max(0.0, done - max(saved, fault_cleared_at)) for saved, done in timings.values() if done is not None
        )
    verdict.stored, verdict.analysed, verdict.ready_ids_per_turn, verdict.outbox_waiting = (
        stored,
        analysed,
        ready,
        waiting,
    )
    verdict.dead_letters = await platform.dead_letters()

    problems = verdict.problems
    unclear = Counter(k for t in turns for k in t.answers if not clear_answer(k, chat_down_allowed))
    if unclear:
        problems.append(f"unclear answers to learners: {dict(unclear)}")
    unfinished = [t for t in turns if not t.told_saved]
    if unfinished:
        problems.append(f"{len(unfinished)} turns never got through: {[t.answers for t in unfinished[:3]]}")
    if verdict.told_saved - stored:
        problems.append(f"{len(verdict.told_saved - stored)} turns told saved but not stored")
    if stored - verdict.told_saved:
        problems.append(f"{len(stored - verdict.told_saved)} turns stored that no learner was told about")
    said_not_saved = {i for t in turns for i in t.not_saved_turn_ids if i}
    if said_not_saved & stored:
        problems.append(f"{len(said_not_saved & stored)} turns said 'not saved' but stored")
    if stored - analysed:
        problems.append(f"{len(stored - analysed)} stored turns never analysed (lost)")
    if analysed - stored:
        problems.append(f"{len(analysed - stored)} analyses of turns chat did not store")
    duplicated = {turn: n for turn, n in ready.items() if n > 1}
    if duplicated:
        problems.append(f"{len(duplicated)} turns analysed more than once")
    if set(ready) != analysed:
        problems.append(f"feedback.ready events for {len(ready)} turns, analyses for {len(analysed)}")
    if any(verdict.dead_letters.values()):
        problems.append(f"dead letters: {verdict.dead_letters}")
    if waiting:
        problems.append(f"{waiting} events still waiting in an outbox")
    return verdict


# --------------------------------------------------------------------------- faults


@dataclass
class Load:
    learners: int = 4
    turns: int = 3
    think_s: float = 0.8
    down_s: float = 5.0
    give_up_s: float = 90.0
    settle_s: float = 60.0


async def run_learners(platform: ChaosPlatform, run: str, load: Load) -> tuple[list[str], list[Turn]]:
    chat = platform.http("chat")
    results = await asyncio.gather(
        *(learner(chat, run, n, load.turns, load.think_s, load.give_up_s) for n in range(load.learners))
    )
    return [user for user, _ in results], [t for _, turns in results for t in turns]


async def during_load(
    platform: ChaosPlatform, fault: str, load: Load, inject: Callable[[], Awaitable[None]], **settle_options
) -> Verdict:
    """Learners chat; 1 s in, `inject()` runs the fault (returning once it has cleared). The
    learners' pace spreads their turns over the fault and a few seconds after it."""
    run = f"{fault}-{uuid.uuid4().hex[:6]}"
    paced = Load(**{**load.__dict__, "think_s": max(load.think_s, (load.down_s + 4.0) / max(1, load.turns))})
    learners_task = asyncio.create_task(run_learners(platform, run, paced))
    await asyncio.sleep(1.0)
    await inject()
    cleared = time.time()
    users, turns = await learners_task
    return await settle(platform, fault, users, turns, cleared, within_s=load.settle_s, **settle_options)


async def _in_thread(fn, *args, **kwargs):
    return await asyncio.to_thread(fn, *args, **kwargs)


async def fault_second_start(platform: ChaosPlatform, load: Load) -> Verdict:
    """Run, stop everything but the databases (the emulator forgets its state and numbers
    messages from 1 again), start again, run again: the second run's events must not be
    mistaken for the first's."""
    run = f"restart-{uuid.uuid4().hex[:6]}"
    users_a, turns_a = await run_learners(platform, run + "a", load)
    await _in_thread(localrt.services_down, platform.rt)
    await _in_thread(localrt.component_kill, platform.rt, "pubsub")
    await _in_thread(localrt.component_start, platform.rt, "pubsub")
    await _in_thread(localrt.services_up, platform.rt)
    cleared = time.time()
    users_b, turns_b = await run_learners(platform, run + "b", load)
    return await settle(
        platform,
        "platform stopped and started again",
        users_a + users_b,
        turns_a + turns_b,
        cleared,
        within_s=load.settle_s,
    )


async def fault_feedback_killed(platform: ChaosPlatform, load: Load) -> Verdict:
    async def inject() -> None:
        await _in_thread(localrt.service_kill, platform.rt, "feedback", down_for_s=load.down_s)

    return await during_load(platform, f"feedback SIGKILLed, back after {load.down_s:g} s", load, inject)


def component_outage(component: str, title: str) -> Callable[[ChaosPlatform, Load], Awaitable[Verdict]]:
    """A fault: `component` (postgres, redis, pubsub) is killed while learners chat, and
    started again after load.down_s. `title` may use {down}."""

    async def fault(platform: ChaosPlatform, load: Load) -> Verdict:
        async def inject() -> None:
            await _in_thread(localrt.component_kill, platform.rt, component)
            await asyncio.sleep(load.down_s)
            await _in_thread(localrt.component_start, platform.rt, component)

        return await during_load(platform, title.format(down=f"{load.down_s:g}"), load, inject)

    return fault


async def fault_emulator_killed_with_backlog(platform: ChaosPlatform, load: Load) -> Verdict:
    """The emulator dies while events wait in it (their consumer is stopped): the broker loses
    them. The producers notice the broker lost its state and publish what they keep again."""

    async def inject() -> None:
        await _in_thread(localrt.service_stop, platform.rt, "feedback")
        await asyncio.sleep(load.down_s / 2)  # turns arrive and wait in the broker
        await _in_thread(localrt.component_kill, platform.rt, "pubsub")
        await asyncio.sleep(load.down_s / 2)
        await _in_thread(localrt.component_start, platform.rt, "pubsub")
        await _in_thread(localrt.service_start, platform.rt, "feedback")

    return await during_load(platform, f"Pub/Sub emulator killed holding a backlog, {load.down_s:g} s", load, inject)


async def fault_chat_killed(platform: ChaosPlatform, load: Load) -> Verdict:
    cut: list[int] = []

    async def inject() -> None:
        # Kill chat while replies are streaming to learners, then start it again.
        deadline = time.monotonic() + 15
        while not MID_REPLY and time.monotonic() < deadline:  # noqa: ASYNC110 - polling the learners
            await asyncio.sleep(0.01)
        cut.append(len(MID_REPLY))
        await _in_thread(localrt.service_kill, platform.rt, "chat", down_for_s=load.down_s)

    verdict = await during_load(
        platform, f"chat SIGKILLed mid-stream, back after {load.down_s:g} s", load, inject, chat_down_allowed=True
    )
    verdict.fault += f" ({cut[0]} replies cut)"
    if not cut[0]:
        verdict.problems.append("no reply was streaming when chat was killed")
    return verdict


async def fault_fanout_loses_redis(platform: ChaosPlatform, load: Load) -> Verdict:
    """Browsers watch their sessions' feedback streams on web while Redis (the live channel)
    is down: every card still arrives (web reads stored analyses until Redis is back)."""
    run = f"fanout-{uuid.uuid4().hex[:6]}"
    chat, web = platform.http("chat"), platform.http("web")
    first = Load(learners=load.learners, turns=1, think_s=0.1)
    users, turns = await run_learners(platform, run + "a", first)
    sessions = {t.session_id for t in turns}
    cards: dict[str, set[str]] = {s: set() for s in sessions}
    # Each session's stream is followed by its own learner, signed in as the page is (the cookie).
    owners = {t.session_id: f"chaos-{run}a-{t.learner}" for t in turns}

    async def watch(session_id: str) -> None:
        async with httpx.AsyncClient(timeout=None) as client:
            while True:  # reconnect as EventSource does
                with contextlib.suppress(httpx.HTTPError):
                    cookie = {"Cookie": f"wp_access={await LEARNERS[0].token(owners[session_id])}"}
                    url = f"{web}/events/sessions/{session_id}/feedback"
                    async with aconnect_sse(client, "GET", url, headers=cookie) as src:
                        async for event in src.aiter_sse():
                            if event.event == "feedback":
                                turn_id = event.data.split('data-turn-id="', 1)[1].split('"', 1)[0]
                                cards[session_id].add(turn_id)
                await asyncio.sleep(1)

    watchers = [asyncio.create_task(watch(s)) for s in sessions]
    try:
        await asyncio.sleep(1.0)
        await _in_thread(localrt.component_kill, platform.rt, "redis")
        more: list[Turn] = []
        by_session = {t.session_id: t for t in turns}
        async with httpx.AsyncClient(timeout=30) as client:
            for session_id, t in by_session.items():
                for index in range(1, load.turns):
                    user = f"chaos-{run}a-{t.learner}"
                    attempt = await send(client, chat, user, LEARNER_LINES[index], session_id)
                    turn = Turn(
                        t.learner, index, LEARNER_LINES[index], [attempt.kind], session_id, attempt.user_turn_id
                    )
                    turn.told_saved = attempt.kind == "done"
                    more.append(turn)
        await asyncio.sleep(load.down_s)
        await _in_thread(localrt.component_start, platform.rt, "redis")
        cleared = time.time()
        verdict = await settle(
            platform, f"web fan-out: Redis down {load.down_s:g} s", users, turns + more, cleared, within_s=load.settle_s
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(verdict.analysed_in(s) - cards[s] for s in sessions):  # noqa: ASYNC110
            await asyncio.sleep(0.25)
        missing = sum(len(verdict.analysed_in(s) - cards[s]) for s in sessions)
        if missing:
            verdict.problems.append(f"{missing} feedback cards never reached the browsers")
        return verdict
    finally:
        for w in watchers:
            w.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)


# Verdicts of a pytest run, printed at its end (tests/resilience/conftest.py).
RECORDED: list[Verdict] = []

FAULTS: dict[str, Callable[[ChaosPlatform, Load], Awaitable[Verdict]]] = {
    "restart": fault_second_start,
    "feedback-kill": fault_feedback_killed,
    "emulator-kill": component_outage("pubsub", "Pub/Sub emulator killed, back after {down} s"),
    "emulator-kill-backlog": fault_emulator_killed_with_backlog,
    "redis-down": component_outage("redis", "Redis down for {down} s"),
    "postgres-restart": component_outage("postgres", "PostgreSQL killed, back after {down} s"),
    "chat-kill": fault_chat_killed,
    "fanout-redis": fault_fanout_loses_redis,
}


# --------------------------------------------------------------------------- report


def table(verdicts: list[Verdict]) -> str:
    header = (
        "fault",
        "turns told saved",
        "answers during the fault",
        "analysed exactly once",
        "longest wait for feedback after the fault",
        "result",
    )
    rows = [header]
    for v in verdicts:
        other = Counter({k: n for k, n in v.answers.items() if k != "done"})
        answers = ", ".join(f"{k} ×{n}" for k, n in other.most_common()) or "none but replies"
        once = sum(1 for t in v.stored if t in v.analysed and v.ready_ids_per_turn.get(t) == 1)
        rows.append(
            (
                v.fault,
                f"{len(v.told_saved)}/{len(v.turns)}",
                answers,
                f"{once}/{len(v.stored)}",
                f"{v.recovery_s:.1f} s" if v.recovery_s is not None else "never",
                "ok" if v.ok else "FAIL: " + "; ".join(v.problems),
            )
        )
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> int:
    load = Load(learners=args.learners, turns=args.turns, down_s=args.down, settle_s=args.settle)
    names = list(FAULTS) if args.faults == "all" else args.faults.split(",")
    print(f"starting a second platform under {CHAOS_ROOT} …", flush=True)
    platform = await asyncio.to_thread(ChaosPlatform.start)
    verdicts = []
    try:
        for name in names:
            print(f"fault: {name} ({load.learners} learners × {load.turns} turns)", flush=True)
            verdicts.append(await FAULTS[name](platform, load))
            print(table(verdicts[-1:]), flush=True)
    finally:
        await asyncio.to_thread(platform.stop)
    print()
    print(table(verdicts))
    return 0 if all(v.ok for v in verdicts) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=20)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--down", type=float, default=20.0, help="seconds each fault lasts")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds allowed for recovery")
    parser.add_argument("--faults", default="all", help=f"comma separated, from: {', '.join(FAULTS)}")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
