"""Drains the gateway's Envoy before its pod stops, so a streamed reply in flight finishes.

Envoy quits at once on SIGTERM, cutting every open stream. In the gateway pod this runs beside
it (a sidecar, `python -m workplace_kit.envoy_drain`) and:

1. on SIGTERM (the pod is terminating) or on the first GET /drained, fails Envoy's health check
   (admin POST /healthcheck/fail): the `/ready` health listener answers 503, the load balancer and
   Kubernetes stop sending new requests, and Envoy's drain manager asks clients to close their
   connections once their request is done;
2. waits until the gateway listener holds no connection (at least `--min-seconds`, for the load
   balancer to notice; at most `--drain-seconds`);
3. answers the waiting GET /drained with 200 and exits.

Envoy's own preStop hook is `httpGet /drained` on this sidecar: Kubernetes sends Envoy SIGTERM
only once that returns, i.e. once the streams have finished or the drain time is up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time
import urllib.request

import uvicorn
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from .service import QuietServer

log = logging.getLogger("workplace_kit.envoy_drain")


class Drain:
    def __init__(self, admin: str, listener_prefix: str, drain_s: float, min_s: float, poll_s: float = 0.5):
        self.admin = admin.rstrip("/")
        self.stat = f"http.{listener_prefix}.downstream_cx_active"
        self.drain_s = drain_s
        self.min_s = min_s
        self.poll_s = poll_s
        self.done = asyncio.Event()
        self._started: asyncio.Task[None] | None = None

    def _admin(self, method: str, path: str) -> bytes:
        request = urllib.request.Request(self.admin + path, method=method)
        with urllib.request.urlopen(request, timeout=2) as answer:
            return bytes(answer.read())

    def active_connections(self) -> int:
        body = self._admin("GET", f"/stats?format=json&filter=^{self.stat}$")
        stats = json.loads(body).get("stats", [])
        return int(sum(s.get("value", 0) for s in stats if s.get("name") == self.stat))

    def start(self) -> None:
        if self._started is None:
            self._started = asyncio.create_task(self._run(), name="drain")

    async def _run(self) -> None:
        started = time.monotonic()
        try:
            await asyncio.to_thread(self._admin, "POST", "/healthcheck/fail")
            log.info("gateway health check failed on purpose: draining", extra={"drain_s": self.drain_s})
            while (elapsed := time.monotonic() - started) < self.drain_s:
                active = await asyncio.to_thread(self.active_connections)
                if elapsed >= self.min_s and active == 0:
                    break
                await asyncio.sleep(self.poll_s)
            log.info("gateway drained", extra={"after_s": round(time.monotonic() - started, 1)})
        except OSError as exc:  # Envoy already gone: nothing left to drain
            log.warning("envoy admin unreachable while draining: %r", exc)
        finally:
            self.done.set()


def _app(drain: Drain) -> FastAPI:
    app = FastAPI(title="gateway drain", openapi_url=None)

    @app.get("/drained", response_class=PlainTextResponse)
    async def drained() -> str:
        """Envoy's preStop: starts the drain if SIGTERM has not, answers once it is over."""
        drain.start()
        await drain.done.wait()
        return "drained\n"

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok\n"

    return app


async def run(args: argparse.Namespace) -> None:
    drain = Drain(args.admin, args.listener_prefix, args.drain_seconds, args.min_seconds)
    server = QuietServer(uvicorn.Config(_app(drain), host=args.host, port=args.port, log_config=None, access_log=False))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, drain.start)
    serving = asyncio.create_task(server.serve())
    log.info("waiting for the pod to stop", extra={"listen": f"{args.host}:{args.port}", "admin": args.admin})
    await drain.done.wait()
    await asyncio.sleep(1)  # let the waiting preStop request read its answer
    server.should_exit = True
    await serving


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workplace_kit.envoy_drain", description=__doc__.splitlines()[0])
    parser.add_argument("--admin", default="http://127.0.0.1:9901", help="Envoy's admin address")
    parser.add_argument("--listener-prefix", default="gateway", help="the gateway listener's stat_prefix")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9902, help="where GET /drained is answered")
    parser.add_argument("--drain-seconds", type=float, default=45, help="the longest wait for open streams")
    parser.add_argument("--min-seconds", type=float, default=5, help="the shortest wait (load balancer)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='{"severity":"%(levelname)s","message":"%(message)s"}')
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
