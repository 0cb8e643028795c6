"""Behind the public edge the gateway finds the learner's address in X-Forwarded-For: Google's
load balancer appends the client it saw and its own address, and the production gateway trusts
exactly those two hops, so x-envoy-external-address (what the services limit by) is the client,
whatever the client wrote into the header itself. Run on a real Envoy with the rendered config."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from support.envoy import gateway_manager, on_local_ports, running_envoy
from support.services import free_port
from test_deploy_manifests import _documents, _production_values, _render, _rendered_envoy_config


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({k.lower(): v for k, v in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _gateway(values: dict) -> dict:
    return _rendered_envoy_config(_documents(_render(values)))


def test_production_trusts_the_load_balancers_two_hops_and_development_none() -> None:
    assert gateway_manager(_gateway(_production_values())).get("xff_num_trusted_hops") == 2
    assert "xff_num_trusted_hops" not in gateway_manager(_gateway({}))


def test_the_service_sees_the_client_the_load_balancer_saw(tmp_path: Path) -> None:
    echo = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    http_port, metrics_port, admin_port = free_port(), free_port(), free_port()
    values = _production_values()
    values["gateway"]["ports"] = {"http": http_port, "metrics": metrics_port}
    config = _gateway(values)
    on_local_ports(config, admin_port, {"auth_http": echo.server_port})  # /api/v2/auth/... goes there
    try:
        with running_envoy(config, tmp_path, ready_url=f"http://127.0.0.1:{admin_port}/ready"):
            # What Google's front end sends: the client's own claim, then the client it saw and
            # the forwarding rule's address.
            request = urllib.request.Request(
                f"http://127.0.0.1:{http_port}/api/v2/auth/whoami",
                headers={
                    "X-Forwarded-For": "6.6.6.6, 203.0.113.7, 34.120.0.1",
                    "X-Envoy-External-Address": "6.6.6.6",
                },
            )
            with urllib.request.urlopen(request, timeout=5) as answer:
                seen = json.loads(answer.read())
    finally:
        echo.shutdown()
    assert seen["x-envoy-external-address"] == "203.0.113.7"
