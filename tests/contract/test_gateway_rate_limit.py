"""The gateway's limit per client address and route (Envoy's local rate limit), on a real Envoy
with the rendered production config and its runtime ConfigMap: one address that floods a route
gets 429 in the services' JSON format with Retry-After once its burst is spent, another address
still gets through; locally (and with gateway.rateLimit.enabled false) nothing is limited."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml
from support.envoy import gateway_manager, on_local_ports, running_envoy
from support.services import free_port
from test_deploy_manifests import RELEASE, _documents, _kind, _production_values, _render, _rendered_envoy_config

REPO = Path(__file__).resolve().parents[2]
BURST, PER_SECOND = 60, 20  # scripts/generate.py CLIENT_RATE["api"]
FLOOD = 240
LOCAL_CONFIG = REPO / "deploy" / "envoy" / "envoy.yaml"


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _get(url: str, client: str) -> tuple[int, dict[str, str], bytes]:
    # What Google's load balancer sends: the client it saw, then its own address.
    request = urllib.request.Request(url, headers={"X-Forwarded-For": f"{client}, 34.120.0.1"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def _run(values: dict, tmp_path: Path, requests: int) -> dict:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    http_port, metrics_port, admin_port = free_port(), free_port(), free_port()
    values["gateway"]["ports"] = {"http": http_port, "metrics": metrics_port}
    docs = _documents(_render(values))
    config = _rendered_envoy_config(docs)
    on_local_ports(config, admin_port, {"auth_http": upstream.server_port})
    runtime = _kind(docs, "ConfigMap")[f"{RELEASE}-gateway-runtime"]["data"]
    url = f"http://127.0.0.1:{http_port}/api/v2/auth/session"
    try:
        with running_envoy(config, tmp_path, ready_url=f"http://127.0.0.1:{admin_port}/ready", runtime=runtime):
            started = time.monotonic()
            with ThreadPoolExecutor(16) as pool:
                flood = list(pool.map(lambda _: _get(url, "203.0.113.7"), range(requests)))
            elapsed = time.monotonic() - started
            other = [_get(url, "198.51.100.9") for _ in range(3)]
    finally:
        upstream.shutdown()
    return {"flood": flood, "other": other, "elapsed_s": elapsed}


def test_a_flooding_address_is_limited_and_told_when_to_come_back(tmp_path: Path) -> None:
    answers = _run(_production_values(), tmp_path, FLOOD)
    statuses = [status for status, _, _ in answers["flood"]]
    assert set(statuses) == {200, 429}, statuses
    # The burst, and what the bucket refilled while the flood lasted, pass; the rest is refused.
    passed = statuses.count(200)
    assert BURST <= passed <= BURST + PER_SECOND * answers["elapsed_s"] + 2, (passed, answers["elapsed_s"])
    refused = [(headers, body) for status, headers, body in answers["flood"] if status == 429]
    headers, body = refused[0]
    assert json.loads(body)["error"] == "rate_limited"
    assert headers.get("retry-after") == "1"
    assert [status for status, _, _ in answers["other"]] == [200, 200, 200], "another address shares no bucket"


def test_without_the_switch_nothing_is_limited(tmp_path: Path) -> None:
    values = _production_values()
    values["gateway"]["rateLimit"] = {"enabled": False}
    answers = _run(values, tmp_path, FLOOD)
    assert {status for status, _, _ in answers["flood"]} == {200}


def test_every_public_route_of_the_local_gateway_has_a_limit_that_starts_off() -> None:
    config = yaml.safe_load(LOCAL_CONFIG.read_text())
    manager = gateway_manager(config)
    filters = [f["name"] for f in manager["http_filters"]]
    assert filters.index("envoy.filters.http.local_ratelimit") < filters.index("envoy.filters.http.jwt_authn")
    routes = [r for r in manager["route_config"]["virtual_hosts"][0]["routes"] if "route" in r]
    assert len(routes) > 20
    for route in routes:
        limit = route["typed_per_filter_config"]["envoy.filters.http.local_ratelimit"]
        assert limit["filter_enabled"]["default_value"]["numerator"] == 0, route["match"]
        assert limit["filter_enabled"]["runtime_key"] == "gateway.rate_limit.enabled"
        assert limit["descriptors"][0]["entries"] == [{"key": "remote_address"}]
