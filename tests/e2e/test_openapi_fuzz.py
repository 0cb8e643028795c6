"""Property-based checks of the HTTP APIs against their own OpenAPI documents (the
schemathesis CLI, every check): whatever a client sends, the answer is never a server error,
valid requests are accepted, invalid ones rejected, and status codes, content types and
bodies match what the document promises. Run against each service's own port: the
gateway answers methods it does not route (e.g. QUERY) itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ST = Path(sys.executable).parent / "st"


@pytest.mark.parametrize("service,port", [("chat", 8101), ("feedback", 8102), ("auth", 8103)])
def test_http_api_conforms_to_its_openapi(platform, service, port, tmp_path):
    # Signed in as a guest, as the page is: the APIs act for the learner of the token.
    token = httpx.post("http://127.0.0.1:8103/api/v2/auth/guest", json={}, timeout=30).json()["access_token"]
    result = subprocess.run(
        [
            str(ST), "run", f"http://127.0.0.1:{port}/openapi.json",
            "--header", f"Authorization: Bearer {token}",
            "--checks", "all",
            "--max-examples", "25",
            "--seed", "20261125",
            "--request-timeout", "30",
            "--report-dir", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, f"{service}:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
