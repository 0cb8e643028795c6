#!/usr/bin/env python3
"""The platform through the Envoy gateway against the Gemini stand-in alone (the floor):
latency, throughput, bursts and CPU per turn, in one run on this machine (`task bench`).

Everything is a real process. The Gemini wire-format stand-in (tests/contract/gemini_standin.py,
its request log bounded with --keep-requests) answers after 300 ms with 20
chunks 40 ms apart. The platform is a second copy started through scripts/localrt.py's Runtime
in .run/bench: its own PostgreSQL, Redis and Pub/Sub emulator on free ports, and web, chat and
feedback under supervisord with Envoy in front on the fixed gateway ports (8080 and the
registry's service ports, so `task down` the default platform first). Chat talks to the
stand-in through the real google-genai client; feedback runs its offline analysers (the
platform default without a key), so each turn's whole cost is counted: chat, the outbox,
Pub/Sub, feedback's analysis and its event, web's fan-out.

    .venv/bin/python bench/full_platform.py                 # levels 1/8/32/64/128 (20 s each), bursts to 800
    .venv/bin/python bench/full_platform.py --quick         # a smoke run of about a minute
    .venv/bin/python bench/full_platform.py --long          # learners with think time, ramped in steps
    .venv/bin/python bench/full_platform.py --levels 1,8 --level-s 10 --bursts 50 --client httpx

Sections (each against the platform through Envoy, and against the stand-in alone):
- closed loop: N conversations, each sending its next message as soon as its reply is done,
  for a fixed time: first text (first `delta`) and full reply (`done`) p50/p95/p99, replies
  per second, errors by kind, and the ratio of replies per second platform/floor;
- bursts: N requests at once, new sessions: first text p50/p95/p99 and errors, and the
  largest burst held (first text p95 <= 5 s, no errors; every smaller burst held too);
- CPU per completed turn for every process of the platform, grouped by service (utime+stime
  from /proc, children included), and all-in with and without the emulator; after each
  platform run the bench waits until feedback has analysed every stored turn and published
  its events, so the work a turn causes later is in that turn's figure. The stand-in, the
  load client and everything else on the machine are reported apart, never in all-in. Peak
  RSS per group, sampled every 0.5 s;
- --long: learners who send a message, read the reply, think (5 s, +-50%) and send the next,
  added in steps; per step first text p95, errors, feedback's backlog, and the most learners
  held with first text p95 <= 2 s and no errors.

The load client runs in this process: raw HTTP/1.1 over asyncio streams on uvloop (one
keep-alive connection per conversation, as a browser has), or one httpx.AsyncClient with
`--client httpx`. Its own CPU is in the tables: on 2 cores it competes with the platform.
Tables go to stdout, everything to bench/results/<timestamp>.json; the platform's logs stay
in .run/bench/logs/ until the next run. Every loop is bounded in count and time, and the
platform and the stand-in are stopped at the end, whatever happened.
"""

import argparse
import asyncio
import contextlib
import importlib.util
import json
import math
import os
import random
import resource
import shutil
import signal
import socket
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
BENCH_ROOT = REPO / ".run" / "bench"
RESULTS = REPO / "bench" / "results"
PY = str(REPO / ".venv" / "bin" / "python")


def _load_localrt() -> Any:
    spec = importlib.util.spec_from_file_location("localrt", REPO / "scripts" / "localrt.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("localrt", module)  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return sys.modules["localrt"]


localrt = _load_localrt()
sys.path.insert(0, str(REPO / "tests"))
from support.identity import Identities  # noqa: E402 - after the path above
from support.learners import LEARNER_LINES  # noqa: E402

PLATFORM_SERVICES = ("auth", "web", "chat", "feedback")
STANDIN_FIRST_MS, STANDIN_CHUNKS, STANDIN_GAP_MS = 300, 20, 40
FLOOR_PATH = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
CHAT_PATH = "/api/v2/chat"
CLK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1

# The floor sends a request shaped like chat's: a system instruction, the history, the message.
FLOOR_SYSTEM = (
    "あなたは職場の先輩として、後輩との雑談練習の相手をします。丁寧すぎず、自然な日本語で短く答えてください。"
    "相手の話に共感し、質問を一つ返して会話を続けてください。" * 4
)
HISTORY_MESSAGES = 20  # chat sends this many earlier messages (WP_CHAT_HISTORY_TURNS default)

# Process groups, in table order: the platform's, then what is reported apart.
PLATFORM_GROUPS = ("web", "chat", "feedback", "gateway", "supervisord", "postgres", "redis", "emulator")
APART_GROUPS = ("standin", "client")
LABELS = {
    "gateway": "gateway (envoy)",
    "supervisord": "supervisord",
    "emulator": "emulator (java)",
    "standin": "stand-in",
    "client": "load client",
}


def label(group: str) -> str:
    return LABELS.get(group, group)


# ------------------------------------------------------------------------------- /proc


@dataclass(frozen=True)
class ProcRow:
    pid: int
    ppid: int
    ticks: int  # utime + stime + cutime + cstime: its own CPU and that of its reaped children


def proc_table() -> dict[int, ProcRow]:
    rows = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                raw = fh.read()
        except OSError:
            continue
        fields = raw[raw.rindex(b")") + 2 :].split()
        if fields[0] == b"Z":
            continue
        # After the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based.
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
        rows[int(name)] = ProcRow(int(name), int(fields[1]), ticks)
    return rows


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (/proc/stat; idle and iowait are not busy)."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:9]]
    return sum(values) - values[3] - values[4], sum(values)


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return [part.decode(errors="replace") for part in fh.read().split(b"\0") if part]
    except OSError:
        return []


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) in kB; (0, 0) when gone."""
    rss = anon = 0
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("RssAnon:"):
                    anon = int(line.split()[1])
                    break
    except OSError:
        pass
    return rss, anon


class ProcessMap:
    """Which process belongs to which group: each root (PostgreSQL's postmaster, Redis, the
    emulator's JVM, the stand-in) with all its descendants; supervisord's children by their
    command (`python -m <name>_service` is service <name>, envoy is the gateway) with theirs,
    so a service run as several processes counts as one group; the load client is this process."""

    def __init__(self, roots: dict[str, int], supervisord_pid: int) -> None:
        self.roots = roots
        self.supervisord_pid = supervisord_pid
        self.client_pid = os.getpid()
        self._programs: dict[int, str] = {}

    def program_of(self, pid: int) -> str:
        if pid not in self._programs:
            argv = cmdline(pid)
            group = "supervisord"  # an unknown program: counted with supervisord
            if argv and os.path.basename(argv[0]) == "envoy":
                group = "gateway"
            elif "-m" in argv and argv.index("-m") + 1 < len(argv):
                module = argv[argv.index("-m") + 1]
                if module.endswith("_service"):
                    group = module.removesuffix("_service")
            self._programs[pid] = group
        return self._programs[pid]

    def classify(self, table: dict[int, ProcRow]) -> dict[int, str]:
        children: dict[int, list[int]] = defaultdict(list)
        for row in table.values():
            children[row.ppid].append(row.pid)
        groups: dict[int, str] = {}

        def mark(root: int, group: str) -> None:
            stack = [root]
            while stack:
                pid = stack.pop()
                if pid in groups:
                    continue
                groups[pid] = group
                stack.extend(children.get(pid, ()))

        for group, root in self.roots.items():
            if root in table:
                mark(root, group)
        if self.supervisord_pid in table:
            groups[self.supervisord_pid] = "supervisord"
            for child in children.get(self.supervisord_pid, ()):
                mark(child, self.program_of(child))
        groups.setdefault(self.client_pid, "client")
        return groups


@dataclass
class Snapshot:
    at: float
    ticks: dict[str, int]
    procs: dict[str, int]
    machine_busy: int
    machine_total: int


def snapshot(pm: ProcessMap) -> Snapshot:
    table = proc_table()
    busy, total = machine_ticks()
    ticks: dict[str, int] = defaultdict(int)
    procs: dict[str, int] = defaultdict(int)
    for pid, group in pm.classify(table).items():
        ticks[group] += table[pid].ticks
        procs[group] += 1
    return Snapshot(time.monotonic(), dict(ticks), dict(procs), busy, total)


def cpu_between(before: Snapshot, after: Snapshot) -> dict[str, Any]:
    """CPU ms per group between two snapshots, the machine's busy ms, and `other`: what the
    rest of the machine used (busy minus every group, this client and the stand-in included)."""
    groups = {
        g: max(0, after.ticks.get(g, 0) - before.ticks.get(g, 0)) * 1000 / CLK
        for g in (*PLATFORM_GROUPS, *APART_GROUPS)
    }
    busy = (after.machine_busy - before.machine_busy) * 1000 / CLK
    capacity = (after.machine_total - before.machine_total) * 1000 / CLK
    return {
        "seconds": round(after.at - before.at, 2),
        "ms": {g: round(v, 1) for g, v in groups.items()},
        "machine_busy_ms": round(busy, 1),
        "machine_capacity_ms": round(capacity, 1),
        "other_ms": round(max(0.0, busy - sum(groups.values())), 1),
    }


class MemorySampler(threading.Thread):
    """Peak RSS per group (the sum over its processes, sampled every interval) and the most
    processes seen per group."""

    def __init__(self, pm: ProcessMap, interval: float = 0.5) -> None:
        super().__init__(name="memory-sampler", daemon=True)
        self.pm = pm
        self.interval = interval
        self.stop_event = threading.Event()
        self.peak_rss_kb: dict[str, int] = defaultdict(int)
        self.peak_anon_kb: dict[str, int] = defaultdict(int)
        self.peak_procs: dict[str, int] = defaultdict(int)
        self.samples = 0

    def sample(self) -> None:
        rss: dict[str, int] = defaultdict(int)
        anon: dict[str, int] = defaultdict(int)
        procs: dict[str, int] = defaultdict(int)
        for pid, group in self.pm.classify(proc_table()).items():
            r, a = memory_kb(pid)
            rss[group] += r
            anon[group] += a
            procs[group] += 1
        for group in rss:
            self.peak_rss_kb[group] = max(self.peak_rss_kb[group], rss[group])
            self.peak_anon_kb[group] = max(self.peak_anon_kb[group], anon[group])
            self.peak_procs[group] = max(self.peak_procs[group], procs[group])
        self.samples += 1

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            with contextlib.suppress(Exception):  # a process that vanished mid-read: next sample
                self.sample()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=5)


# ---------------------------------------------------------------------- the load client


class SseParser:
    """Server-sent events from a byte stream: (event, data) for each complete event."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        buf = (self.buf + data).replace(b"\r\n", b"\n")
        out = []
        while (end := buf.find(b"\n\n")) >= 0:
            block, buf = buf[:end], buf[end + 2 :]
            event, lines = "message", []
            for line in block.split(b"\n"):
                if line.startswith(b"data:"):
                    lines.append(line[6:] if line[5:6] == b" " else line[5:])
                elif line.startswith(b"event:"):
                    event = line[6:].strip().decode()
            if lines:
                out.append((event, b"\n".join(lines)))
        self.buf = buf
        return out


OnEvent = Callable[[str, bytes], None]


class RawConn:
    """One keep-alive HTTP/1.1 connection (a conversation's, as a browser tab has one)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class RawTransport:
    """HTTP/1.1 over asyncio streams: the request written in one go, the response parsed by
    hand (chunked or sized body), SSE events handed over as they arrive."""

    kind = "raw"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def slot(self) -> RawConn:
        return RawConn(self.host, self.port)

    async def release(self, slot: RawConn) -> None:
        slot.close()

    async def aclose(self) -> None:
        pass

    async def sse(self, slot: RawConn, path: str, body: bytes, headers: dict[str, str], on_event: OnEvent) -> int:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        ).encode()
        for attempt in (0, 1):
            reused = slot.writer is not None
            if slot.writer is None:
                slot.reader, slot.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
            assert slot.reader is not None and slot.writer is not None
            try:
                slot.writer.write(head + body)
                status_line = await slot.reader.readline()
                if not status_line:
                    raise ConnectionResetError("connection closed before the response")
                break
            except (ConnectionError, asyncio.IncompleteReadError):
                slot.close()
                # A kept-alive connection the server closed meanwhile: once more on a new one,
                # as browsers and HTTP clients do; a new connection failing is an error.
                if reused and attempt == 0:
                    continue
                raise
        reader = slot.reader
        status = int(status_line.split()[1])
        chunked, length, close = False, None, False
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "content-length":
                length = int(value)
            elif name == "connection" and value == "close":
                close = True
        parser = SseParser()
        if chunked:
            while True:
                size_line = await reader.readline()
                if not size_line:
                    raise asyncio.IncompleteReadError(b"", None)
                size = int(size_line.split(b";", 1)[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = await reader.readexactly(size + 2)
                if status == 200:
                    for event in parser.feed(data[:-2]):
                        on_event(*event)
        elif length is not None:
            data = await reader.readexactly(length)
            if status == 200:
                for event in parser.feed(data):
                    on_event(*event)
        else:
            close = True
            while data := await reader.read(65536):
                if status == 200:
                    for event in parser.feed(data):
                        on_event(*event)
        if close:
            slot.close()
        return status


class HttpxTransport:
    """One httpx.AsyncClient with a connection for every concurrent request."""

    kind = "httpx"

    def __init__(self, host: str, port: int, max_connections: int) -> None:
        import httpx

        self.httpx = httpx
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}",
            limits=limits,
            timeout=httpx.Timeout(None, connect=30),
            trust_env=False,
        )

    def slot(self) -> None:
        return None

    async def release(self, slot: None) -> None:
        pass

    async def aclose(self) -> None:
        await self.client.aclose()

    async def sse(self, slot: None, path: str, body: bytes, headers: dict[str, str], on_event: OnEvent) -> int:
        all_headers = {"content-type": "application/json", "accept": "text/event-stream", **headers}
        async with self.client.stream("POST", path, content=body, headers=all_headers) as response:
            if response.status_code != 200:
                await response.aread()
                return response.status_code
            parser = SseParser()
            async for data in response.aiter_raw():
                for event in parser.feed(data):
                    on_event(*event)
        return 200


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection reset"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection cut mid-response"
    if isinstance(exc, OSError):
        return f"connection error ({type(exc).__name__}: {exc.strerror or exc})"
    return f"client error ({type(exc).__name__})"


@dataclass
class Sample:
    t0: float  # time.monotonic() when the request was sent
    first_ms: float | None = None  # first text
    full_ms: float | None = None  # whole reply
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.full_ms is not None


@dataclass
class Conversation:
    user: str
    partner: str
    situation: str
    offset: int
    session_id: str = ""
    turns: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> str:
        return LEARNER_LINES[(self.offset + self.turns) % len(LEARNER_LINES)]

    def new_session(self) -> None:
        self.session_id, self.history = "", []


class Target:
    """Where a turn goes: the platform (through Envoy) or the floor (the stand-in alone)."""

    name = ""

    def __init__(self, host: str, port: int, client: str, options: dict[str, list[str]]) -> None:
        self.host, self.port, self.client = host, port, client
        self.partners = options.get("partners") or ["colleague"]
        self.situations = options.get("situations") or [""]

    def transport(self, max_connections: int) -> RawTransport | HttpxTransport:
        if self.client == "httpx":
            return HttpxTransport(self.host, self.port, max_connections)
        return RawTransport(self.host, self.port)

    def conversation(self, tag: str, index: int) -> Conversation:
        return Conversation(
            user=f"bench-{tag}-{index}",
            partner=self.partners[index % len(self.partners)],
            situation=self.situations[(index // len(self.partners)) % len(self.situations)],
            offset=index,
        )

    async def prepare(self, tag: str, count: int) -> None:
        """Before a measured run: what its `count` conversations need (nothing by default)."""

    def request(self, conv: Conversation, sample: Sample) -> tuple[str, bytes, dict[str, str], OnEvent]:
        raise NotImplementedError

    def finish(self, conv: Conversation, sample: Sample, status: int) -> None:
        raise NotImplementedError

    async def turn(self, transport: Any, slot: Any, conv: Conversation, timeout_s: float) -> Sample:
        sample = Sample(time.monotonic())
        path, body, headers, on_event = self.request(conv, sample)
        try:
            async with asyncio.timeout(timeout_s):
                status = await transport.sse(slot, path, body, headers, on_event)
        except Exception as exc:  # noqa: BLE001 - every failure is a sample's error, by kind
            if isinstance(slot, RawConn):
                slot.close()
            kind = error_kind(exc)
            if transport.kind == "httpx" and kind.startswith("client error"):
                kind = f"httpx {type(exc).__name__}"
            sample.error = kind
            if conv.turns == 0:
                conv.new_session()
            return sample
        self.finish(conv, sample, status)
        if sample.ok:
            conv.turns += 1
        elif conv.turns == 0:
            conv.new_session()  # a first turn that was not stored left no session to continue
        return sample


class PlatformTarget(Target):
    """Through Envoy, each conversation signed in as its own guest of the auth service (the
    accounts are made before the measured run: signing in is not part of a turn's cost)."""

    name = "platform"

    def __init__(self, *args: Any, identities: Identities) -> None:
        super().__init__(*args)
        self.identities = identities
        self.tokens: dict[str, str] = {}

    async def prepare(self, tag: str, count: int) -> None:
        gate = asyncio.Semaphore(16)

        async def sign_in(index: int) -> None:
            user = self.conversation(tag, index).user
            async with gate:
                self.tokens[user] = await self.identities.token(user)

        await asyncio.gather(*(sign_in(i) for i in range(count)))

    async def turn(self, transport: Any, slot: Any, conv: Conversation, timeout_s: float) -> Sample:
        # The same token until it is near its end, then a refreshed one (long runs outlast it).
        self.tokens[conv.user] = await self.identities.token(conv.user)
        return await super().turn(transport, slot, conv, timeout_s)

    def request(self, conv: Conversation, sample: Sample) -> tuple[str, bytes, dict[str, str], OnEvent]:
        payload = {"message": conv.message(), "session_id": conv.session_id}
        if not conv.session_id:
            payload.update(partner=conv.partner, situation=conv.situation)
        body = json.dumps(payload, ensure_ascii=False).encode()
        t0 = sample.t0

        def on_event(event: str, data: bytes) -> None:
            if event == "delta":
                if sample.first_ms is None:
                    sample.first_ms = (time.monotonic() - t0) * 1000
            elif event == "done":
                sample.full_ms = (time.monotonic() - t0) * 1000
            elif event == "start":
                if not conv.session_id:
                    conv.session_id = json.loads(data).get("session_id", "")
            elif event == "error":
                try:
                    code = json.loads(data).get("error", "?")
                except ValueError:
                    code = "?"
                sample.error = f"SSE error {code}"

        return CHAT_PATH, body, {"Authorization": f"Bearer {self.tokens[conv.user]}"}, on_event

    def finish(self, conv: Conversation, sample: Sample, status: int) -> None:
        if status != 200:
            sample.error = f"HTTP {status}"
        elif sample.error is None and sample.full_ms is None:
            sample.error = "stream ended without done"


def standin_reply(message: str) -> str:
    """The stand-in's default reply (tests/contract/gemini_standin.py default_reply_text)."""
    if message.isascii():
        return f'I see. You mean "{message}", right?'
    return f"了解です。『{message}』についてですね。"


class FloorTarget(Target):
    name = "floor"

    def request(self, conv: Conversation, sample: Sample) -> tuple[str, bytes, dict[str, str], OnEvent]:
        message = conv.message()
        contents = [*conv.history[-HISTORY_MESSAGES:], {"role": "user", "parts": [{"text": message}]}]
        payload = {
            "contents": contents,
            "systemInstruction": {"parts": [{"text": FLOOR_SYSTEM}]},
            "generationConfig": {"temperature": 0.7, "maxOutputTokens": 512},
        }
        body = json.dumps(payload, ensure_ascii=False).encode()
        t0 = sample.t0

        def on_event(event: str, data: bytes) -> None:
            if data.startswith(b'{"error"'):
                sample.error = "SSE error"
            elif sample.first_ms is None:
                sample.first_ms = (time.monotonic() - t0) * 1000

        return FLOOR_PATH, body, {"x-goog-api-key": "bench"}, on_event

    def finish(self, conv: Conversation, sample: Sample, status: int) -> None:
        if status != 200:
            sample.error = f"HTTP {status}"
        elif sample.error is None and sample.first_ms is None:
            sample.error = "empty stream"
        elif sample.error is None:
            sample.full_ms = (time.monotonic() - sample.t0) * 1000  # the stream's end
            message = conv.message()
            conv.history += [
                {"role": "user", "parts": [{"text": message}]},
                {"role": "model", "parts": [{"text": standin_reply(message)}]},
            ]


# ---------------------------------------------------------------------------- statistics


def pct(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values."""
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


def dist(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {f"p{q}": None if (v := pct(ordered, q)) is None else round(v, 1) for q in (50, 95, 99)} | {
        "max": round(ordered[-1], 1) if ordered else None
    }


def summarise(samples: list[Sample], seconds: float) -> dict[str, Any]:
    ok = [s for s in samples if s.ok]
    errors = Counter(s.error or "no reply" for s in samples if not s.ok)
    return {
        "requests": len(samples),
        "replies": len(ok),
        "seconds": round(seconds, 2),
        "replies_per_s": round(len(ok) / seconds, 2) if seconds > 0 else None,
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors.most_common()),
        "first_text_ms": dist([s.first_ms for s in ok if s.first_ms is not None]),
        "full_reply_ms": dist([s.full_ms for s in ok if s.full_ms is not None]),
    }


# ---------------------------------------------------------------------------- load shapes


async def closed_loop(
    target: Target, concurrency: int, seconds: float, tag: str, timeout_s: float
) -> tuple[list[Sample], float]:
    """`concurrency` conversations, each sending its next message when the reply is done,
    until `seconds` have passed (the replies under way then are finished and counted). The
    conversations start spread over the first second, not all in the same instant."""
    transport = target.transport(concurrency + 8)
    samples: list[Sample] = []
    start = time.monotonic()
    deadline = start + seconds

    async def conversation(index: int) -> None:
        conv = target.conversation(tag, index)
        slot = transport.slot()
        try:
            await asyncio.sleep(index / concurrency)
            while time.monotonic() < deadline:
                sample = await target.turn(transport, slot, conv, timeout_s)
                samples.append(sample)
                if sample.error:
                    await asyncio.sleep(1.0)  # as the page does: no hot loop on errors
        finally:
            await transport.release(slot)

    try:
        await asyncio.gather(*(conversation(i) for i in range(concurrency)))
    finally:
        await transport.aclose()
    return samples, time.monotonic() - start


async def burst(target: Target, size: int, tag: str, timeout_s: float) -> tuple[list[Sample], float]:
    """`size` requests at once, each a new session on its own new connection."""
    transport = target.transport(size + 8)
    start = time.monotonic()

    async def one(index: int) -> Sample:
        slot = transport.slot()
        try:
            return await target.turn(transport, slot, target.conversation(tag, index), timeout_s)
        finally:
            await transport.release(slot)

    try:
        samples = list(await asyncio.gather(*(one(i) for i in range(size))))
    finally:
        await transport.aclose()
    return samples, time.monotonic() - start


# -------------------------------------------------------------------------- the platform


class Database:
    """Counts in the platform's own database: stored learner turns, analysed turns, events
    not yet published (to wait for the work a turn causes after its reply)."""

    QUERY = """
        SELECT (SELECT count(*) FROM chat.messages WHERE role = 'user'),
               (SELECT count(*) FROM feedback.turn_analyses),
               (SELECT count(*) FROM chat.outbox WHERE published_at IS NULL AND dead_at IS NULL)
             + (SELECT count(*) FROM feedback.outbox WHERE published_at IS NULL AND dead_at IS NULL)
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: Any = None

    async def counts(self) -> tuple[int, int, int]:
        import asyncpg

        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(self.url, timeout=10)
        row = await self.conn.fetchrow(self.QUERY, timeout=10)
        return int(row[0]), int(row[1]), int(row[2])

    async def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close()

    async def drain(self, timeout_s: float) -> dict[str, Any]:
        """Wait until every stored learner turn is analysed and no event waits in an outbox
        (then half a second for web's fan-out of the last ones). Bounded by timeout_s."""
        start = time.monotonic()
        stored = analysed = pending = -1
        while time.monotonic() - start < timeout_s:
            try:
                stored, analysed, pending = await self.counts()
            except Exception as exc:  # noqa: BLE001 - reported, the run goes on
                return {"seconds": round(time.monotonic() - start, 1), "error": f"{type(exc).__name__}: {exc}"}
            if analysed >= stored and pending == 0:
                await asyncio.sleep(0.5)
                return {"seconds": round(time.monotonic() - start, 1), "backlog": 0, "stored_turns": stored}
            await asyncio.sleep(0.25)
        return {
            "seconds": round(time.monotonic() - start, 1),
            "backlog": stored - analysed,
            "outbox_pending": pending,
            "stored_turns": stored,
            "timed_out": True,
        }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def default_ports() -> list[tuple[str, int]]:
    ports = [("gateway", localrt.GATEWAY_PORT), ("envoy admin", localrt.ENVOY_ADMIN_PORT)]
    for spec in localrt.SERVICES:
        if spec.name in PLATFORM_SERVICES:
            ports.append((f"{spec.name} http", spec.http_port))
            if spec.grpc_port:
                ports.append((f"{spec.name} grpc", spec.grpc_port))
    return ports


def check_default_ports() -> None:
    busy = [f"{name} :{port}" for name, port in default_ports() if localrt.tcp_open("127.0.0.1", port, 0.3)]
    if busy:
        raise SystemExit(
            f"bench: the gateway and service ports are in use ({', '.join(busy)}). The bench runs the "
            "platform through Envoy on these fixed ports: stop the default platform with `task down` first "
            "(or whatever else holds them)."
        )


def platform_services(standin_url: str) -> tuple[Any, ...]:
    chat_env = (
        ("WP_AI_PROVIDER", "gemini"),
        ("WP_GEMINI_API_KEYS", "bench"),
        ("WP_GEMINI_BASE_URL", standin_url),
        ("WP_GEMINI_RETRY_ATTEMPTS", "1"),
    )
    return tuple(
        replace(spec, env=chat_env) if spec.name == "chat" else spec
        for spec in localrt.SERVICES
        if spec.name in PLATFORM_SERVICES
    )


def bench_runtime(standin_url: str, ports: dict[str, int] | None = None) -> Any:
    ports = ports or {}
    return localrt.Runtime(
        root=BENCH_ROOT,
        pg_port=ports.get("pg", 0) or free_port(),
        redis_port=ports.get("redis", 0) or free_port(),
        pubsub_port=ports.get("pubsub", 0) or free_port(),
        services=platform_services(standin_url),
        gateway=True,
        # Offline AI for every service unless its own settings say otherwise (chat's do): a
        # key in the caller's environment must not send feedback to the real Gemini.
        # Each bench learner sends a message as soon as the last reply ends (about 50 a minute,
        # more than a person could): the limit is still checked on every turn (its cost is in
        # the figures), at a rate the load stays under.
        extra_env=(
            ("WP_AI_PROVIDER", "offline"),
            ("WP_CHAT_MESSAGES_RATE", "100000/minute"),
            ("WP_CHAT_AI_REPLIES_RATE", "100000/day"),
        ),
    )


def clean_previous_run() -> None:
    """Stop whatever an earlier bench run left in .run/bench (it tears down, but a SIGKILL
    can't), then start from an empty folder: a fresh database each run."""
    if not BENCH_ROOT.exists():
        return
    rt = bench_runtime("http://127.0.0.1:1", {"pg": localrt.PG_PORT, "redis": 1, "pubsub": 1})
    with contextlib.suppress(Exception):
        localrt.services_down(rt)
    for name in ("standin", "pubsub", "redis"):
        with contextlib.suppress(Exception):
            localrt.stop_process(rt, name)
    with contextlib.suppress(Exception):
        localrt.postgres_down(rt)
    shutil.rmtree(localrt.pg_base_dir(rt), ignore_errors=True)
    shutil.rmtree(BENCH_ROOT, ignore_errors=True)


def start_standin(rt: Any, port: int, as_is: bool) -> int:
    argv = [
        PY,
        str(REPO / "tests" / "contract" / "gemini_standin.py"),
        *([] if as_is else ["--keep-requests", "100"]),
        "--port",
        str(port),
        "--first-token-delay-ms",
        str(STANDIN_FIRST_MS),
        "--chunks",
        str(STANDIN_CHUNKS),
        "--inter-chunk-delay-ms",
        str(STANDIN_GAP_MS),
    ]
    pid = localrt.start_process(rt, "standin", argv)
    localrt.wait_until(
        "Gemini stand-in",
        lambda: localrt.tcp_open("127.0.0.1", port),
        30,
        log_path=rt.log_file("standin"),
        pid=pid,
        pid_name="the stand-in",
    )
    return int(pid)


def leftovers(rt: Any, standin_port: int) -> list[str]:
    """What still runs or listens after the teardown (should be nothing)."""
    left = [
        f"{name} (pid file)"
        for name in ("supervisord", "postgres", "redis", "pubsub", "standin")
        if localrt.read_pid(rt, name) is not None
    ]
    left += [f"pid {pid} (a service process)" for pid in localrt._stragglers(str(rt.root))]
    ports = [
        *default_ports(),
        ("postgres", rt.pg_port),
        ("redis", rt.redis_port),
        ("pubsub", rt.pubsub_port),
        ("stand-in", standin_port),
    ]
    left += [f"{name} still listens on :{port}" for name, port in ports if localrt.tcp_open("127.0.0.1", port, 0.2)]
    return left


def program_pids(rt: Any) -> dict[str, int | None]:
    pids = {}
    for name in rt.program_names:
        try:
            pids[name] = localrt.service_pid(rt, name)
        except Exception:  # noqa: BLE001 - supervisord gone: reported as None
            pids[name] = None
    return pids


def supervisord_exits(rt: Any) -> list[str]:
    try:
        lines = rt.log_file("supervisord").read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if " exited: " in line or "gave up" in line]


# Envoy's own counters of why a request failed, summed over the service clusters: what a 503
# from the gateway was (no connection in time, refused, reset, over a circuit breaker).
GATEWAY_COUNTERS = (
    "upstream_rq_5xx",
    "upstream_cx_connect_timeout",
    "upstream_cx_connect_fail",
    "upstream_cx_destroy_remote_with_active_rq",
    "upstream_cx_destroy_local_with_active_rq",
    "upstream_cx_none_healthy",
    "upstream_rq_pending_failure_eject",
    "upstream_rq_rx_reset",
    "upstream_rq_tx_reset",
    "upstream_rq_pending_overflow",
    "upstream_cx_overflow",
    "upstream_rq_retry",
    "upstream_rq_timeout",
)


def gateway_counters() -> dict[str, int]:
    """Envoy's counters over the service clusters, plus the 5xx answers its listener sent
    (`downstream_rq_5xx`: from an upstream or made by Envoy itself)."""
    answer = localrt.http_get(f"http://127.0.0.1:{localrt.ENVOY_ADMIN_PORT}/stats", timeout=5)
    totals = dict.fromkeys((*GATEWAY_COUNTERS, "downstream_rq_5xx"), 0)
    if answer is None or answer[0] != 200:
        return {}
    for line in answer[1].splitlines():
        name, _, value = line.partition(": ")
        scope, _, counter = name.rpartition(".")
        if not value.strip().isdigit():
            continue
        if counter in GATEWAY_COUNTERS and scope.startswith("cluster.") and ".external" not in scope:
            totals[counter] += int(value)
        elif counter == "downstream_rq_5xx" and scope.startswith("http.") and "admin" not in scope:
            totals[counter] += int(value)
    return totals


def service_5xx(rt: Any) -> dict[str, int]:
    """5xx answers each service counted itself (http_requests_total; with several processes on
    one port, a scrape reaches one of them)."""
    found = {}
    for spec in rt.services:
        answer = localrt.http_get(f"http://127.0.0.1:{spec.http_port}/metrics", timeout=5)
        if answer is None or answer[0] != 200:
            continue
        found[spec.name] = sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in answer[1].splitlines()
            if line.startswith("http_requests_total{") and 'status="5' in line
        )
    return found


def get_options() -> dict[str, list[str]]:
    """The partners and situations chat offers (asked as a guest: every API needs a token)."""
    gateway = f"http://127.0.0.1:{localrt.GATEWAY_PORT}"
    with httpx.Client(base_url=gateway, timeout=10, trust_env=False) as client:
        token = client.post("/api/v2/auth/guest", json={}).raise_for_status().json()["access_token"]
        data = (
            client.get(f"{CHAT_PATH}/options", headers={"Authorization": f"Bearer {token}"}).raise_for_status().json()
        )
    return {
        "partners": [c["id"] for c in data.get("characters", [])],
        "situations": [s["id"] for s in data.get("situations", [])],
    }


# ------------------------------------------------------------------------------ the run


@dataclass
class Bench:
    args: argparse.Namespace
    rt: Any
    pm: ProcessMap
    db: Database
    platform: PlatformTarget
    floor: FloorTarget
    memory: MemorySampler
    results: dict[str, Any]
    turns_done: int = 0

    def say(self, text: str) -> None:
        print(text, flush=True)

    async def measured(self, coro: Any, drain: bool) -> tuple[list[Sample], float, dict[str, Any], dict[str, Any]]:
        before = snapshot(self.pm)
        samples, seconds = await coro
        drained = await self.db.drain(self.args.drain_timeout) if drain else {}
        after = snapshot(self.pm)
        return samples, seconds, cpu_between(before, after), drained

    async def warm_up(self) -> None:
        self.say("warming up (not measured): 4 conversations for 4 s, platform and floor")
        await self.platform.prepare("warm", 4)
        await closed_loop(self.platform, 4, 4, "warm", self.args.timeout)
        await closed_loop(self.floor, 4, 2, "warm", self.args.timeout)
        await self.db.drain(self.args.drain_timeout)

    async def idle(self, seconds: float = 4.0) -> None:
        before = snapshot(self.pm)
        await asyncio.sleep(seconds)
        cpu = cpu_between(before, snapshot(self.pm))
        self.results["idle"] = cpu | {
            "cpu_percent": {g: round(ms / cpu["seconds"] / 10, 1) for g, ms in cpu["ms"].items()}
        }

    async def levels(self) -> None:
        out = self.results.setdefault("levels", [])
        for level in self.args.levels:
            await self.platform.prepare(f"c{level}", level)
            samples, seconds, cpu, drained = await self.measured(
                closed_loop(self.platform, level, self.args.level_s, f"c{level}", self.args.timeout), drain=True
            )
            platform = summarise(samples, seconds) | {"cpu": cpu, "drain": drained}
            floor: dict[str, Any] = {}
            if not self.args.no_floor:
                fs, fsec, fcpu, _ = await self.measured(
                    closed_loop(self.floor, level, self.args.level_s, f"f{level}", self.args.timeout), drain=False
                )
                floor = summarise(fs, fsec) | {"cpu": fcpu}
            ratio = None
            if floor.get("replies_per_s") and platform["replies_per_s"] is not None:
                ratio = round(platform["replies_per_s"] / floor["replies_per_s"], 3)
            out.append({"concurrency": level, "platform": platform, "floor": floor, "ratio_replies_per_s": ratio})
            self.say(
                f"  closed loop c={level}: platform {platform['replies_per_s']} replies/s, "
                f"first text p95 {platform['first_text_ms']['p95']} ms, errors {platform['errors']}; "
                f"floor {floor.get('replies_per_s')} replies/s; feedback drained in {drained.get('seconds')} s"
            )

    async def bursts(self) -> None:
        out = self.results.setdefault("bursts", [])
        for size in self.args.bursts:
            await self.platform.prepare(f"b{size}", size)
            samples, seconds, cpu, drained = await self.measured(
                burst(self.platform, size, f"b{size}", self.args.burst_timeout), drain=True
            )
            platform = summarise(samples, seconds) | {"cpu": cpu, "drain": drained}
            floor: dict[str, Any] = {}
            if not self.args.no_floor:
                fs, fsec, fcpu, _ = await self.measured(
                    burst(self.floor, size, f"fb{size}", self.args.burst_timeout), drain=False
                )
                floor = summarise(fs, fsec) | {"cpu": fcpu}
            for run in (platform, floor):
                if run:
                    run["held"] = bool(
                        run["errors"] == 0
                        and run["first_text_ms"]["p95"] is not None
                        and run["first_text_ms"]["p95"] <= self.args.burst_p95_s * 1000
                    )
            out.append({"size": size, "platform": platform, "floor": floor})
            self.say(
                f"  burst {size}: platform first text p95 {platform['first_text_ms']['p95']} ms, errors "
                f"{platform['errors']}; floor p95 {floor.get('first_text_ms', {}).get('p95')} ms, errors "
                f"{floor.get('errors')}"
            )
        for who in ("platform", "floor"):
            held = 0
            for row in out:
                if not row[who] or not row[who]["held"]:
                    break
                held = row["size"]
            self.results.setdefault("largest_burst_held", {})[who] = held

    async def long_run(self) -> None:
        """Learners who send a message, read the reply, think, and send the next; added in steps."""
        args = self.args
        rng = random.Random(7)
        samples: list[tuple[int, Sample]] = []  # (step, sample)
        step_now = 0
        stop = asyncio.Event()
        transport = self.platform.transport(max(args.long_steps) + 8)
        tasks: list[asyncio.Task[None]] = []
        await self.platform.prepare("long", max(args.long_steps))

        async def learner(index: int) -> None:
            conv = self.platform.conversation("long", index)
            slot = transport.slot()
            try:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), rng.uniform(0, args.think_s))
                while not stop.is_set():
                    if conv.turns and conv.turns % args.turns_per_session == 0:
                        conv.new_session()
                    step = step_now
                    # After an error the learner sends the same message again, as the page offers.
                    sample = await self.platform.turn(transport, slot, conv, args.timeout)
                    samples.append((step, sample))
                    pause = args.think_s * rng.uniform(0.5, 1.5)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), pause)
            finally:
                await transport.release(slot)

        steps_out: list[dict[str, Any]] = []
        self.results["long"] = {
            "think_s": args.think_s,
            "step_s": args.long_step_s,
            "p95_limit_s": args.long_p95_s,
            "steps": steps_out,
        }
        try:
            for step_index, learners in enumerate(args.long_steps):
                step_now = step_index
                while len(tasks) < learners:
                    tasks.append(asyncio.create_task(learner(len(tasks))))
                before = snapshot(self.pm)
                start = time.monotonic()
                await asyncio.sleep(args.long_step_s)
                after = snapshot(self.pm)
                try:
                    stored, analysed, _ = await self.db.counts()
                    backlog: int | None = stored - analysed
                except Exception:  # noqa: BLE001 - reported as unknown
                    backlog = None
                end = start + args.long_step_s
                done_in_window = [
                    s for _, s in samples if s.ok and s.full_ms is not None and start <= s.t0 + s.full_ms / 1000 < end
                ]
                mine = [s for st, s in samples if st == step_index]
                interim = summarise(mine, args.long_step_s)
                steps_out.append(
                    {
                        "learners": learners,
                        "cpu": cpu_between(before, after),
                        "turns_completed_in_window": len(done_in_window),
                        "feedback_backlog_at_end": backlog,
                    }
                )
                self.say(
                    f"  long step {learners} learners: first text p95 {interim['first_text_ms']['p95']} ms "
                    f"(replies so far), errors {interim['errors']}, feedback backlog {backlog}"
                )
                if interim["errors"] or (
                    interim["first_text_ms"]["p95"] is not None
                    and interim["first_text_ms"]["p95"] > args.long_p95_s * 1000
                ):
                    break
        finally:
            stop.set()
            # Replies under way finish (bounded by the request timeout), then the learners stop.
            if tasks:
                await asyncio.wait(tasks, timeout=args.timeout + 5)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await transport.aclose()
        # Each step's figures from every turn sent during it, those finished after it ended too.
        for index, row in enumerate(steps_out):
            row.update(summarise([s for st, s in samples if st == index], args.long_step_s))
            row["held"] = bool(
                row["errors"] == 0
                and row["first_text_ms"]["p95"] is not None
                and row["first_text_ms"]["p95"] <= args.long_p95_s * 1000
            )
        held = 0
        for row in steps_out:
            if not row["held"]:
                break
            held = row["learners"]
        self.results["long"]["largest_held"] = held
        self.results["long"]["drain_after"] = await self.db.drain(args.drain_timeout)

    async def run(self) -> None:
        self.memory.start()
        try:
            await self.warm_up()
            await self.idle()
            self.results["processes"] = snapshot(self.pm).procs
            if self.args.long:
                self.say(
                    f"long run: steps {self.args.long_steps} learners, {self.args.long_step_s:g} s each, "
                    f"think {self.args.think_s:g} s"
                )
                await self.long_run()
            else:
                self.say(f"closed loop: levels {self.args.levels}, {self.args.level_s:g} s each")
                await self.levels()
                if self.args.bursts:
                    self.say(f"bursts: {self.args.bursts}")
                    await self.bursts()
        finally:
            self.memory.stop()
            await self.db.close()
        self.results["memory"] = {
            g: {
                "peak_rss_mb": round(self.memory.peak_rss_kb.get(g, 0) / 1024, 1),
                "peak_anon_mb": round(self.memory.peak_anon_kb.get(g, 0) / 1024, 1),
                "peak_processes": self.memory.peak_procs.get(g, 0),
            }
            for g in (*PLATFORM_GROUPS, *APART_GROUPS)
        }


# ------------------------------------------------------------------------------- report


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = []
    for row in [headers, *rows]:
        cells = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def triple(d: dict[str, Any]) -> str:
    return "/".join(fmt(d.get(k)) for k in ("p50", "p95", "p99"))


def errors_text(run: dict[str, Any]) -> str:
    return ", ".join(f"{kind} x{n}" for kind, n in run.get("errors_by_kind", {}).items())


def per_turn(cpu: dict[str, Any], group: str, turns: int) -> str:
    if not turns:
        return "-"
    return fmt(cpu["ms"].get(group, 0) / turns, 1)


def all_in(cpu: dict[str, Any], with_emulator: bool = True) -> float:
    return sum(v for g, v in cpu["ms"].items() if g in PLATFORM_GROUPS and (with_emulator or g != "emulator"))


def cpu_rows(runs: list[tuple[str, dict[str, Any]]], results: dict[str, Any]) -> list[list[str]]:
    """Rows: each group's CPU ms per completed turn for each run (column)."""
    idle = results.get("idle", {}).get("cpu_percent", {})
    memory = results.get("memory", {})
    procs = results.get("processes", {})
    rows = []
    for group in PLATFORM_GROUPS:
        mem = memory.get(group, {})
        rows.append(
            [label(group), fmt(procs.get(group, 0)), fmt(idle.get(group), 1)]
            + [per_turn(run["cpu"], group, run["replies"]) for _, run in runs]
            + [f"{fmt(mem.get('peak_rss_mb'))}/{fmt(mem.get('peak_anon_mb'))}"]
        )
    for name, with_emulator in (("ALL-IN", True), ("all-in without emulator", False)):
        idle_all = sum(v for g, v in idle.items() if g in PLATFORM_GROUPS and (with_emulator or g != "emulator"))
        rows.append(
            [name, "", fmt(idle_all, 1)]
            + [fmt(all_in(run["cpu"], with_emulator) / run["replies"], 1) if run["replies"] else "-" for _, run in runs]
            + [""]
        )
    rows.append(["(not in all-in)", "", ""] + ["" for _ in runs] + [""])
    for group in APART_GROUPS:
        mem = memory.get(group, {})
        rows.append(
            [label(group), fmt(procs.get(group, 0)), fmt(idle.get(group), 1)]
            + [per_turn(run["cpu"], group, run["replies"]) for _, run in runs]
            + [f"{fmt(mem.get('peak_rss_mb'))}/{fmt(mem.get('peak_anon_mb'))}"]
        )
    rows.append(
        ["rest of the machine, % of all CPUs", "", ""]
        + [fmt(100 * run["cpu"]["other_ms"] / max(1.0, run["cpu"]["machine_capacity_ms"]), 1) for _, run in runs]
        + [""]
    )
    rows.append(
        ["machine busy, % of all CPUs", "", ""]
        + [fmt(100 * run["cpu"]["machine_busy_ms"] / max(1.0, run["cpu"]["machine_capacity_ms"]), 0) for _, run in runs]
        + [""]
    )
    return rows


def report(results: dict[str, Any]) -> str:
    out: list[str] = []
    meta = results["meta"]
    procs = results.get("processes", {})
    out.append("")
    out.append(f"== Platform benchmark {meta['started']} ({meta['mode']}) ==")
    out.append(
        f"machine: {meta['cpus']} CPUs ({meta['cpu_model']}), {meta['memory_gb']} GB; load client: {meta['client']}"
    )
    out.append(
        "processes per service: "
        + ", ".join(f"{label(g)} {procs.get(g, 0)}" for g in PLATFORM_GROUPS)
        + " (postgres: postmaster, its workers and one backend per open connection)"
    )
    out.append(
        f"stand-in: first chunk after {STANDIN_FIRST_MS} ms, {STANDIN_CHUNKS} chunks {STANDIN_GAP_MS} ms apart "
        f"(the floor's ideal full reply: {STANDIN_FIRST_MS + (STANDIN_CHUNKS - 1) * STANDIN_GAP_MS} ms); "
        f"{meta['standin']}"
    )
    out.append("latencies in ms, p50/p95/p99 of the replies that completed; errors are counted apart")

    levels = results.get("levels", [])
    if levels:
        out.append("")
        out.append(
            f"-- Closed loop: each conversation sends its next message when its reply is done "
            f"({meta['level_s']:g} s per level); platform = through Envoy, floor = the stand-in alone"
        )
        rows = []
        for row in levels:
            p, f = row["platform"], row["floor"] or {}
            rows.append(
                [
                    fmt(row["concurrency"]),
                    fmt(p["replies_per_s"], 1),
                    fmt(f.get("replies_per_s"), 1),
                    fmt(row["ratio_replies_per_s"], 2),
                    triple(p["first_text_ms"]),
                    triple(f.get("first_text_ms", {})),
                    triple(p["full_reply_ms"]),
                    triple(f.get("full_reply_ms", {})),
                    fmt(p["errors"]),
                    fmt(f.get("errors")),
                ]
            )
        out.append(
            table(
                [
                    "conc",
                    "replies/s",
                    "floor",
                    "ratio",
                    "first text",
                    "floor first",
                    "full reply",
                    "floor full",
                    "errors",
                    "floor err",
                ],
                rows,
            )
        )
        for row in levels:
            for who in ("platform", "floor"):
                if row[who] and row[who]["errors"]:
                    out.append(f"  c={row['concurrency']} {who} errors: {errors_text(row[who])}")
        runs = [(f"c={row['concurrency']}", row["platform"]) for row in levels]
        out.append("")
        out.append(
            "-- CPU ms per completed turn, platform runs (from the first request until feedback has analysed "
            "every turn); idle = % of one CPU with no load; RSS = peak MB, sum over the group's processes / "
            "anonymous only"
        )
        out.append(
            table(
                ["process", "procs", "idle %", *[name for name, _ in runs], "RSS/anon MB"],
                cpu_rows(runs, results),
            )
        )
        drains = ", ".join(
            f"c={row['concurrency']} {fmt(row['platform']['drain'].get('seconds'), 1)} s"
            + (
                f" (TIMED OUT, backlog {row['platform']['drain'].get('backlog')})"
                if row["platform"]["drain"].get("timed_out")
                else ""
            )
            for row in levels
        )
        out.append(f"feedback caught up after the load ended: {drains}")
        floor_runs = [row for row in levels if row["floor"]]
        if floor_runs:
            out.append(
                "floor, CPU ms per reply: "
                + "; ".join(
                    f"c={row['concurrency']} stand-in "
                    f"{per_turn(row['floor']['cpu'], 'standin', row['floor']['replies'])}"
                    f" client {per_turn(row['floor']['cpu'], 'client', row['floor']['replies'])}"
                    for row in floor_runs
                )
            )

    bursts = results.get("bursts", [])
    if bursts:
        out.append("")
        out.append(
            f"-- Bursts: N requests at once, each a new session on a new connection; held = first text p95 <= "
            f"{meta['burst_p95_s']:g} s and no errors"
        )
        rows = []
        for row in bursts:
            p, f = row["platform"], row["floor"] or {}
            rows.append(
                [
                    fmt(row["size"]),
                    triple(p["first_text_ms"]),
                    triple(p["full_reply_ms"]),
                    fmt(p["errors"]),
                    "yes" if p["held"] else "NO",
                    fmt(all_in(p["cpu"]) / p["replies"], 1) if p["replies"] else "-",
                    fmt(p["drain"].get("seconds"), 1),
                    triple(f.get("first_text_ms", {})),
                    fmt(f.get("errors")),
                    ("yes" if f.get("held") else "NO") if f else "-",
                ]
            )
        out.append(
            table(
                [
                    "burst",
                    "first text",
                    "full reply",
                    "errors",
                    "held",
                    "all-in ms/turn",
                    "drain s",
                    "floor first",
                    "floor err",
                    "floor held",
                ],
                rows,
            )
        )
        for row in bursts:
            for who in ("platform", "floor"):
                if row[who] and row[who]["errors"]:
                    out.append(f"  burst {row['size']} {who} errors: {errors_text(row[who])}")
        held = results.get("largest_burst_held", {})
        out.append(
            f"largest burst held (and every smaller one): platform {held.get('platform')}, floor {held.get('floor')}"
        )

    long = results.get("long")
    if long:
        out.append("")
        out.append(
            f"-- Long run: learners send a message, read the reply, think {long['think_s']:g} s (+-50%), send the next "
            f"(a new session every {meta['turns_per_session']} turns); {long['step_s']:g} s per step; held = first "
            f"text p95 <= {long['p95_limit_s']:g} s and no errors"
        )
        rows = []
        for row in long["steps"]:
            turns = row["turns_completed_in_window"]
            cpu = row["cpu"]
            rows.append(
                [
                    fmt(row["learners"]),
                    fmt(row["replies"]),
                    fmt(turns / long["step_s"], 1),
                    triple(row["first_text_ms"]),
                    triple(row["full_reply_ms"]),
                    fmt(row["errors"]),
                    "yes" if row["held"] else "NO",
                    fmt(row["feedback_backlog_at_end"]),
                    fmt(all_in(cpu) / turns, 1) if turns else "-",
                    fmt(all_in(cpu, False) / turns, 1) if turns else "-",
                    fmt(per_turn(cpu, "client", turns)),
                    fmt(100 * cpu["machine_busy_ms"] / max(1.0, cpu["machine_capacity_ms"]), 0),
                ]
            )
        out.append(
            table(
                [
                    "learners",
                    "replies",
                    "replies/s",
                    "first text",
                    "full reply",
                    "errors",
                    "held",
                    "fb backlog",
                    "all-in ms/turn",
                    "w/o emulator",
                    "client ms/turn",
                    "busy %",
                ],
                rows,
            )
        )
        for row in long["steps"]:
            if row["errors"]:
                out.append(f"  {row['learners']} learners errors: {errors_text(row)}")
        out.append(f"most learners held: {long['largest_held']}")
        drain = long.get("drain_after", {})
        out.append(
            f"feedback caught up {fmt(drain.get('seconds'), 1)} s after the last step (backlog then: "
            f"{drain.get('backlog')})"
        )
        runs = [(f"{row['learners']}", row | {"replies": row["turns_completed_in_window"]}) for row in long["steps"]]
        out.append("")
        out.append("-- CPU ms per completed turn per step (turns completed within the step); RSS = peak MB sum/anon")
        out.append(table(["process", "procs", "idle %", *[n for n, _ in runs], "RSS/anon MB"], cpu_rows(runs, results)))

    out.append("")
    counters = results.get("gateway_counters") or {}
    if counters:
        shown = ", ".join(f"{name} {value}" for name, value in counters.items() if value) or "all zero"
        out.append(f"Envoy's counters of upstream trouble over the whole run: {shown}")
        answered = results.get("service_5xx") or {}
        out.append(f"5xx answers counted by the services themselves: {answered or 'none'}")
    out.append(f"supervisord saw during the run: {results.get('restarts') or 'no exits, no restarts'}")
    out.append(f"teardown: {results.get('teardown', '?')}")
    return "\n".join(out)


# --------------------------------------------------------------------------------- main


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: levels 1,8 for 5 s, bursts 50,100")
    ap.add_argument("--levels", type=int_list, default=[1, 8, 32, 64, 128], help="closed-loop concurrencies")
    ap.add_argument("--level-s", type=float, default=20.0, help="seconds per closed-loop level")
    ap.add_argument("--bursts", type=int_list, default=[50, 100, 200, 400, 800], help="burst sizes ('' for none)")
    ap.add_argument("--burst-p95-s", type=float, default=5.0, help="a burst is held with first text p95 at most this")
    ap.add_argument("--long", action="store_true", help="the long-run profile instead of levels and bursts")
    ap.add_argument("--long-steps", type=int_list, default=[25, 50, 100, 200, 400], help="learners per step")
    ap.add_argument("--long-step-s", type=float, default=60.0, help="seconds per step")
    ap.add_argument("--think-s", type=float, default=5.0, help="a learner's pause after a reply (+-50%%)")
    ap.add_argument("--turns-per-session", type=int, default=10, help="long run: a new session after this many turns")
    ap.add_argument("--long-p95-s", type=float, default=2.0, help="a step is held with first text p95 at most this")
    ap.add_argument("--no-floor", action="store_true", help="skip the runs against the stand-in alone")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw", help="load client (raw asyncio streams)")
    ap.add_argument("--no-uvloop", action="store_true", help="the load client on asyncio's own event loop")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds a closed-loop request may take")
    ap.add_argument("--burst-timeout", type=float, default=120.0, help="seconds a burst request may take")
    ap.add_argument("--drain-timeout", type=float, default=180.0, help="longest wait for feedback to catch up")
    ap.add_argument(
        "--standin-as-is",
        action="store_true",
        help="keep every request the stand-in gets, as the tests do (unbounded memory)",
    )
    ap.add_argument("--json", type=Path, default=None, help="results file (bench/results/<timestamp>.json)")
    ap.add_argument(
        "--save-capacity",
        action="store_true",
        help="also write chat's capacity record, bench/results/chat_capacity.json (bench/chat_capacity.py)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.levels, args.level_s, args.bursts = [1, 8], 5.0, [50, 100]
        args.long_steps, args.long_step_s = [10, 25], 20.0
    if not args.levels and not args.long:
        ap.error("--levels needs at least one level")
    return args


def machine_info() -> dict[str, Any]:
    model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError, ValueError):
        mem_gb = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    return {"cpus": NCPU, "cpu_model": model, "memory_gb": round(mem_gb, 1)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not Path(PY).exists():
        raise SystemExit("bench: the virtualenv is missing: run `bash scripts/setup.sh` first")
    check_default_ports()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the teardown below

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, terminate)

    started = time.strftime("%Y%m%d-%H%M%S")
    wp_vars = sorted(k for k in os.environ if k.startswith("WP_"))
    if wp_vars:
        print(f"bench: note: WP_ variables in this environment reach the services: {', '.join(wp_vars)}")
    print(f"bench: starting the platform in {BENCH_ROOT.relative_to(REPO)} (logs in .run/bench/logs/)", flush=True)
    clean_previous_run()
    standin_port = free_port()
    standin_url = f"http://127.0.0.1:{standin_port}"
    rt = bench_runtime(standin_url)
    results: dict[str, Any] = {
        "meta": {
            "started": started,
            "mode": "long" if args.long else ("quick" if args.quick else "default"),
            **machine_info(),
            "client": f"{'raw asyncio streams' if args.client == 'raw' else 'one httpx.AsyncClient'} on "
            f"{'asyncio' if args.no_uvloop else 'uvloop'}, in the bench process",
            "standin": "tests/contract/gemini_standin.py, every request kept"
            if args.standin_as_is
            else "tests/contract/gemini_standin.py --keep-requests 100",
            "standin_shape": {"first_ms": STANDIN_FIRST_MS, "chunks": STANDIN_CHUNKS, "gap_ms": STANDIN_GAP_MS},
            "level_s": args.level_s,
            "burst_p95_s": args.burst_p95_s,
            "turns_per_session": args.turns_per_session,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "services": {s.name: {"http": s.http_port, "grpc": s.grpc_port} for s in rt.services},
            "infra_ports": {"postgres": rt.pg_port, "redis": rt.redis_port, "pubsub": rt.pubsub_port},
            "wp_env": wp_vars,
        }
    }
    failure: BaseException | None = None
    try:
        start_standin(rt, standin_port, args.standin_as_is)
        t0 = time.monotonic()
        localrt.infra_up(rt, timeout=120)
        localrt.services_up(rt, timeout=240)
        results["meta"]["startup_s"] = round(time.monotonic() - t0, 1)
        env = localrt.read_env_file(rt)
        pids_at_start = program_pids(rt)
        exits_at_start = len(supervisord_exits(rt))
        roots = {
            "postgres": localrt.read_pid(rt, "postgres"),
            "redis": localrt.read_pid(rt, "redis"),
            "emulator": localrt.read_pid(rt, "pubsub"),
            "standin": localrt.read_pid(rt, "standin"),
        }
        pm = ProcessMap({k: v for k, v in roots.items() if v}, localrt.read_pid(rt, "supervisord") or -1)
        options = get_options()
        results["meta"]["options"] = options
        bench = Bench(
            args,
            rt,
            pm,
            Database(env["WP_DATABASE_URL"]),
            PlatformTarget(
                "127.0.0.1",
                localrt.GATEWAY_PORT,
                args.client,
                options,
                identities=Identities(f"http://127.0.0.1:{localrt.GATEWAY_PORT}"),
            ),
            FloorTarget("127.0.0.1", standin_port, args.client, options),
            MemorySampler(pm),
            results,
        )
        if args.no_uvloop:
            asyncio.run(bench.run())
        else:
            import uvloop

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(bench.run())
        results["gateway_counters"] = gateway_counters()
        results["service_5xx"] = service_5xx(rt)
        pids_at_end = program_pids(rt)
        changed = {n: (pids_at_start[n], pids_at_end[n]) for n in pids_at_start if pids_at_start[n] != pids_at_end[n]}
        exits = supervisord_exits(rt)[exits_at_start:]
        if changed or exits:
            results["restarts"] = {"pids_changed": changed, "supervisord_log": exits}
    except BaseException as exc:
        failure = exc
        raise
    finally:
        print("bench: stopping the platform and the stand-in", flush=True)
        try:
            localrt.all_down(rt)
        finally:
            localrt.stop_process(rt, "standin")
        left = leftovers(rt, standin_port)
        results["teardown"] = "nothing left running" if not left else "LEFT RUNNING: " + "; ".join(left)
        if failure is not None and not isinstance(failure, KeyboardInterrupt | SystemExit):
            results["failure"] = f"{type(failure).__name__}: {failure}"
        if "levels" in results or "bursts" in results or "long" in results:
            out = args.json or RESULTS / f"{started}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
            if failure is None:
                print(report(results))
            if failure is None and args.save_capacity and "levels" in results:
                import chat_capacity  # bench/chat_capacity.py, beside this script

                shown = str(out.relative_to(REPO)) if out.is_relative_to(REPO) else str(out)
                record = chat_capacity.record_from_full_platform(results, results_file=shown)
                saved = chat_capacity.save(record)
                print(
                    f"chat capacity: {saved.relative_to(REPO)}: inFlightPerReplica "
                    f"{record['derived']['in_flight_per_replica']} (the chart's services.chat.autoscaling must match)"
                )
            print(f"\nresults: {out.relative_to(REPO) if out.is_relative_to(REPO) else out}", flush=True)
        print(f"bench: teardown: {results['teardown']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
