"""Whose address a per-address limit counts (workplace_kit.ratelimit.client_address)."""

from __future__ import annotations

from starlette.requests import Request
from workplace_kit.ratelimit import client_address


def _request(headers: dict[str, str], peer: str = "10.0.0.9") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "headers": raw, "client": (peer, 5000), "method": "GET", "path": "/"})


def test_the_gateways_trusted_client_wins_over_forwarded_claims():
    headers = {
        "x-forwarded-for": "6.6.6.6, 203.0.113.7, 34.1.1.1, 35.191.3.4",
        "x-envoy-external-address": "203.0.113.7",
    }
    assert client_address(_request(headers)) == "203.0.113.7"


def test_without_it_the_entry_the_gateway_appended_counts_not_the_clients_own():
    assert client_address(_request({"x-forwarded-for": "6.6.6.6, 127.0.0.1"})) == "127.0.0.1"


def test_without_any_header_the_peer_counts():
    assert client_address(_request({}, peer="192.0.2.5")) == "192.0.2.5"
