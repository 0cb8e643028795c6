"""The gateway pod stops without cutting a streamed reply: the chart's own Envoy configuration
(rendered for production) runs here with the drain sidecar (python -m workplace_kit.envoy_drain),
in front of an upstream that streams a reply over three seconds. Mid-stream the pod is told to
stop as Kubernetes would: the sidecar gets SIGTERM and Envoy's preStop hook (GET /drained)
waits. The gateway's readiness turns 503 at once, the reply finishes whole, the preStop returns
only then, and Envoy stops after it."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import uvicorn
import yaml
from fastapi import FastAPI
from fastapi.responses import StreamingResponse
from helm_python.chart import Chart
from support.envoy import running_envoy
from support.services import free_port

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "workplace"
EVENTS = 40
EVERY_S = 0.075


def _slow_upstream(port: int) -> uvicorn.Server:
    app = FastAPI()

    @app.get("/slow-reply")
    async def slow_reply() -> StreamingResponse:
        import asyncio

        async def events():
            for i in range(EVENTS):
                await asyncio.sleep(EVERY_S)
                yield f"event: token\ndata: {i}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(100):
        with contextlib.suppress(OSError):
            socket_ok = urllib.request.urlopen(f"http://127.0.0.1:{port}/docs", timeout=1)
            socket_ok.close()
            return server
        time.sleep(0.05)
    raise AssertionError("the upstream did not start")


def _gateway(listener: int, health: int, admin: int, upstream: int) -> tuple[dict, dict]:
    """The production chart's gateway: Envoy's configuration (on local ports, every upstream the
    test's) and its Deployment."""
    values = yaml.safe_load((CHART / "values-production.yaml").read_text())
    rendered = Chart.load(CHART).render(values, name="workplace", namespace="workplace")
    texts = [text for path, text in rendered.items() if not path.endswith("NOTES.txt")]
    docs = [d for text in texts for d in yaml.safe_load_all(text) if d]
    config_map = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-gateway"))
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-gateway"))
    config = yaml.safe_load(config_map["data"]["envoy.yaml"])
    config["admin"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": admin}
    ports = {"health": health}
    for item in config["static_resources"]["listeners"]:
        item["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": ports.get(item["name"], listener)}
    for cluster in config["static_resources"]["clusters"]:
        port = admin if cluster["name"] == "envoy_admin" else upstream
        for endpoints in cluster["load_assignment"]["endpoints"]:
            for endpoint in endpoints["lb_endpoints"]:
                endpoint["endpoint"]["address"]["socket_address"] = {"address": "127.0.0.1", "port_value": port}
    return config, deployment


def _drain_command(deployment: dict, admin: int, port: int) -> list[str]:
    """The chart's drain sidecar command, on the test's ports; checks Envoy's preStop calls it."""
    envoy, drain = deployment["spec"]["template"]["spec"]["containers"]
    assert (envoy["name"], drain["name"]) == ("envoy", "drain")
    hook = envoy["lifecycle"]["preStop"]["httpGet"]
    assert hook["path"] == "/drained" and hook["port"] == drain["ports"][0]["containerPort"]
    command = list(drain["command"])
    assert command[:3] == ["python", "-m", "workplace_kit.envoy_drain"]
    for flag, value in (("--admin", f"http://127.0.0.1:{admin}"), ("--host", "127.0.0.1"), ("--port", str(port))):
        command[command.index(flag) + 1] = value
    return [sys.executable, *command[1:]]


def _status(url: str, timeout: float = 2) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # nothing listening (yet)


def test_a_stopping_gateway_lets_the_streamed_reply_finish(tmp_path: Path) -> None:
    listener, health, admin, upstream, drain_port = (free_port() for _ in range(5))
    server = _slow_upstream(upstream)
    config, deployment = _gateway(listener, health, admin, upstream)
    ready = f"http://127.0.0.1:{health}/ready"
    try:
        with running_envoy(config, tmp_path, ready_url=f"http://127.0.0.1:{admin}/ready"):
            assert _status(ready) == 200
            sidecar = subprocess.Popen(
                _drain_command(deployment, admin, drain_port),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            try:
                for _ in range(100):
                    if _status(f"http://127.0.0.1:{drain_port}/healthz") == 200:
                        break
                    time.sleep(0.05)
                received: list[str] = []
                readiness: list[int] = []
                prestop: dict[str, float] = {}

                def envoy_prestop() -> None:  # what the kubelet runs before it sends Envoy SIGTERM
                    started = time.monotonic()
                    prestop["status"] = _status(f"http://127.0.0.1:{drain_port}/drained", timeout=30)
                    prestop["returned_after_s"] = time.monotonic() - started
                    prestop["at"] = time.monotonic()

                hook = threading.Thread(target=envoy_prestop)
                with httpx.stream("GET", f"http://127.0.0.1:{listener}/slow-reply", timeout=30) as reply:
                    assert reply.status_code == 200
                    for line in reply.iter_lines():
                        if line.startswith("data: "):
                            received.append(line[6:])
                        if len(received) == 5 and not hook.is_alive() and not prestop:
                            sidecar.send_signal(signal.SIGTERM)  # the pod is terminating
                            hook.start()
                            time.sleep(0.5)
                            readiness.append(_status(ready))
                    finished = time.monotonic()
                hook.join(timeout=25)
                print(f"\npreStop returned {prestop.get('returned_after_s', 0):.2f} s after SIGTERM, "
                      f"{prestop.get('at', 0) - finished:+.2f} s after the reply's last event")  # fmt: skip
                assert readiness == [503], "the gateway still said it was ready while draining"
                assert received == [str(i) for i in range(EVENTS)], "the reply was cut"
                # Envoy is stopped only after the preStop hook returns, and that waited for the stream.
                assert prestop["status"] == 200 and prestop["at"] >= finished - 0.1, prestop
                assert sidecar.wait(timeout=10) == 0, sidecar.stdout.read() if sidecar.stdout else ""
                stats = json.loads(
                    urllib.request.urlopen(
                        f"http://127.0.0.1:{admin}/stats?format=json&filter=^http.gateway.downstream_cx_active$",
                        timeout=2,
                    ).read()
                )["stats"]
                assert [s["value"] for s in stats] == [0]
            finally:
                if sidecar.poll() is None:
                    sidecar.kill()
    finally:
        server.should_exit = True
