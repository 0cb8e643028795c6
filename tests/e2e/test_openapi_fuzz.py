"""Property-based checks of every service's HTTP API against its own OpenAPI document (the
schemathesis CLI, every check), through the public gateway and directly: whatever a client
sends, the answer is never a server error, valid requests are accepted, invalid ones
rejected, and status codes, content types and bodies match what the document promises.

The documents themselves are not public: they are read from the service ports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from workplace_kit import registry

ST = Path(sys.executable).parent / "st"
# Serializers for the request bodies schemathesis cannot make by itself (audio).
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
GATEWAY = "http://127.0.0.1:8080"
SERVICES = [s for s in registry.load().services if s.routes]


# Cases per operation. Through the gateway, what a client reaches, the full budget; directly, the
# same seed's first cases again: the service's own answers without Envoy in between (what a
# pod-to-pod caller gets), a check that costs a fraction of the first (generation and, for speech,
# synthesis are most of the run's time).
GATEWAY_EXAMPLES = 25
DIRECT_EXAMPLES = 6


def _schemathesis(
    service: registry.ServiceEntry, base_url: str, tmp_path: Path, *extra: str, examples: int
) -> tuple[int, str]:
    # Signed in as a guest, as the page is: the APIs act for the learner of the token.
    token = httpx.post(GATEWAY + "/api/v2/auth/guest", json={}, timeout=30).json()["access_token"]
    result = subprocess.run(
        [
            str(ST), "run", f"http://127.0.0.1:{service.http_port}/openapi.json",
            "--url", base_url,
            "--header", f"Authorization: Bearer {token}",
            "--checks", "all",
            *extra,
            "--max-examples", str(examples),
            "--seed", "20261125",
            "--request-timeout", "30",
            "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "SCHEMATHESIS_HOOKS": str(HOOKS)},
    )  # fmt: skip
    output = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"{service.name} at {base_url}:\n{output}"
    cases = re.search(r"(\d+) generated", result.stdout)
    assert cases, output
    print(f"schemathesis {service.name} via {base_url}: {cases.group(1)} cases")
    return int(cases.group(1)), output


def _document(service: registry.ServiceEntry) -> dict:
    document = httpx.get(f"http://127.0.0.1:{service.http_port}/openapi.json", timeout=10).json()
    return document


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_http_api_conforms_through_the_gateway_and_directly(platform, service, tmp_path):
    document = _document(service)
    if not document["paths"]:
        # Nothing to fuzz yet: only a service that says so may publish no operation.
        assert "not implemented yet" in document["info"]["title"] or service.name == "web", service.name
        return
    # Through the gateway every check but one: a method Envoy knows but the API does not
    # (QUERY without a content type) is refused by Envoy itself, with a 400 in our JSON format.
    gateway_cases, _ = _schemathesis(
        service, GATEWAY, tmp_path / "gateway", "--exclude-checks", "unsupported_method", examples=GATEWAY_EXAMPLES
    )
    direct_cases, _ = _schemathesis(
        service, f"http://127.0.0.1:{service.http_port}", tmp_path / "direct", examples=DIRECT_EXAMPLES
    )
    assert gateway_cases > 0 and direct_cases > 0
