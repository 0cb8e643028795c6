"""HTTP metrics from the kit's own middleware: the names and labels the alert rules read."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from workplace_kit.telemetry import instrument_http_app


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_count_latency_and_in_flight_are_labelled_by_route_template():
    app = FastAPI()

    @app.get("/probe/items/{item_id}")
    def item(item_id: str) -> dict[str, str]:
        if item_id == "missing":
            raise HTTPException(404, "no such item")
        return {"id": item_id}

    instrument_http_app(app)
    client = TestClient(app)
    handler = "/probe/items/{item_id}"
    ok_before = sample("http_requests_total", handler=handler, method="GET", status="200")
    missing_before = sample("http_requests_total", handler=handler, method="GET", status="404")
    timed_before = sample("http_request_duration_seconds_count", handler=handler, method="GET")

    client.get("/probe/items/1")
    client.get("/probe/items/2")
    client.get("/probe/items/missing")
    client.get("/healthz-not-a-route-either")
    metrics = client.get("/metrics")

    assert metrics.status_code == 200 and "http_request_duration_seconds_bucket" in metrics.text
    assert sample("http_requests_total", handler=handler, method="GET", status="200") == ok_before + 2
    assert sample("http_requests_total", handler=handler, method="GET", status="404") == missing_before + 1
    assert sample("http_request_duration_seconds_count", handler=handler, method="GET") == timed_before + 3
    assert sample("http_request_duration_seconds_bucket", handler=handler, method="GET", le="0.2") >= 3
    assert sample("http_requests_inprogress", method="GET") == 0
    # /metrics itself is not counted; unmatched paths are grouped, never one series per URL.
    assert sample("http_requests_total", handler="/metrics", method="GET", status="200") == 0
    assert sample("http_requests_total", handler="none", method="GET", status="404") >= 1


def test_requests_in_flight_is_exported_as_zero_and_counts_a_request_while_it_runs():
    """The autoscaling signal: present before any request (so an empty query means lost
    metrics), one while a request runs, back to zero after."""
    app = FastAPI()
    seen: list[float] = []

    @app.get("/probe/slow")
    def slow() -> dict[str, str]:
        seen.append(sample("requests_in_flight"))
        return {}

    instrument_http_app(app)
    client = TestClient(app)
    exported = client.get("/metrics").text.splitlines()
    assert any(line.startswith("requests_in_flight ") for line in exported)  # no labels: always there
    before = sample("requests_in_flight")
    client.get("/probe/slow")
    assert seen == [before + 1] and sample("requests_in_flight") == before
