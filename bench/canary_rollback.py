"""How fast a canary weight change takes effect at the gateway, and whether any request fails.

Against the platform of `task up` (real Envoy, real web service) and a stand-in for the legacy
Flask app on its registry port: browsers (each with its own wp_canary cookie) keep requesting
pages while `task canary -- 0` (the rollback) runs; prints how long after the command started
the last page came from the new services, how long the command took, and the failed requests.

    .venv/bin/python bench/canary_rollback.py            # task up first
    .venv/bin/python bench/canary_rollback.py --from 50 --browsers 60 --after 5
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from workplace_kit import canary
from workplace_kit.registry import load

REPO = Path(__file__).resolve().parent.parent
GATEWAY = "http://127.0.0.1:8080"
LEGACY_MARK = "x-legacy-stand-in"  # the stand-in's answers carry it; the new services' do not
PAGE = "/healthz"  # a page route (web's catch-all, split) that both apps answer cheaply


class _LegacyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"app": "legacy", "path": self.path}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header(LEGACY_MARK, "1")
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's handler names

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def legacy_stand_in() -> Iterator[int]:
    """A stand-in for the legacy app on the registry's legacy port, for as long as the block runs."""
    legacy = load().legacy
    assert legacy is not None, "the registry has no [legacy] app"
    server = ThreadingHTTPServer(("127.0.0.1", legacy.http_port), _LegacyHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="legacy-stand-in", daemon=True)
    thread.start()
    try:
        yield legacy.http_port
    finally:
        server.shutdown()
        server.server_close()


def set_share(percent: int) -> float:
    """`task canary -- percent` (scripts/canary.py); returns the seconds it took."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "canary.py"), str(percent)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return time.monotonic() - started


def is_legacy(response: httpx.Response) -> bool:
    return response.headers.get(LEGACY_MARK) == "1"


def new_browser(gateway: str = GATEWAY) -> tuple[httpx.Client, bool]:
    """A browser's first visit: it gets its wp_canary cookie; True if it landed on the new pages."""
    client = httpx.Client(base_url=gateway, timeout=30)
    first = client.get(PAGE)
    first.raise_for_status()
    assert client.cookies.get(canary.STICKY_COOKIE), "the gateway gave no canary cookie"
    return client, not is_legacy(first)


@dataclass
class Rollback:
    started: float = 0.0  # when the rollback command started (monotonic)
    command_s: float = 0.0
    last_new_after_s: float | None = None  # the last page from the new services, after `started`
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    new_before: int = 0


def measure_rollback(browsers: list[httpx.Client], after_s: float = 3.0, to: int = 0) -> Rollback:
    """Browsers request pages in a loop; at once `task canary -- to` runs; they go on for after_s."""
    result = Rollback()
    stop = threading.Event()
    lock = threading.Lock()

    def browse(client: httpx.Client) -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                response = client.get(PAGE)
                ok = response.status_code == 200
                reason = f"{response.status_code} {response.text[:100]}"
            except httpx.HTTPError as error:
                response, ok, reason = None, False, repr(error)
            with lock:
                result.requests += 1
                if not ok:
                    result.failures.append(reason)
                elif response is not None and not is_legacy(response):
                    if result.started and sent >= result.started:
                        elapsed = sent - result.started
                        result.last_new_after_s = max(result.last_new_after_s or 0.0, elapsed)
                    elif not result.started:
                        result.new_before += 1

    threads = [threading.Thread(target=browse, args=(c,), daemon=True) for c in browsers]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # traffic on both sides before the change
    result.started = time.monotonic()
    result.command_s = set_share(to)
    time.sleep(after_s)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", type=int, default=50, help="the share before the rollback")
    parser.add_argument("--browsers", type=int, default=40)
    parser.add_argument("--after", type=float, default=3.0, help="seconds of traffic after the command")
    args = parser.parse_args()
    with legacy_stand_in():
        try:
            set_share(args.start)
            browsers = [new_browser()[0] for _ in range(args.browsers)]
            result = measure_rollback(browsers, args.after)
        finally:
            set_share(100)
    last = "none" if result.last_new_after_s is None else f"{result.last_new_after_s * 1000:.0f} ms"
    print(f"rollback {args.start} % -> 0 %, {args.browsers} browsers, {result.requests} requests")
    print(f"  pages from the new services before the change: {result.new_before}")
    print(f"  the command (task canary -- 0) took             {result.command_s * 1000:.0f} ms")
    print(f"  last page from the new services after it began: {last}")
    print(f"  failed requests:                                {len(result.failures)}")
    return 0 if not result.failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
