"""The canary from the legacy app through the real gateway (the platform of `task up`), with a
stand-in for the legacy Flask app on its registry port: a share set with `task canary` takes
effect, each browser stays on its side, the legacy app's own paths follow it, and a rollback to
0 % takes effect well within the design's 30 s with no request failing."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from canary_rollback import (  # noqa: E402  (bench/canary_rollback.py: the same measurement)
    is_legacy,
    legacy_stand_in,
    measure_rollback,
    new_browser,
    set_share,
)

ROLLBACK_LIMIT_S = 30  # the design's rollback target


@pytest.fixture
def legacy(platform):
    with legacy_stand_in():
        try:
            yield platform
        finally:
            set_share(100)


def test_a_share_splits_browsers_and_each_stays_on_its_side(legacy):
    set_share(10)
    browsers = [new_browser() for _ in range(200)]
    on_new = [client for client, new in browsers if new]
    # 10 % of 200 is 20; a binomial spread of ±4 standard deviations is 3 to 37.
    assert 3 <= len(on_new) <= 37, len(on_new)
    for client, new in browsers[:40] + [(c, True) for c in on_new[:10]]:
        for _ in range(3):
            response = client.get("/healthz")
            assert response.status_code == 200
            assert is_legacy(response) == (not new), "a browser changed sides without a weight change"
    # The legacy app's own API goes to it while it takes a share; the new API stays new.
    assert is_legacy(httpx.get(legacy + "/api/chat_history", timeout=10))
    assert not is_legacy(httpx.get(legacy + "/api/v2/auth/me", timeout=10))
    # A browser on the new side keeps it when the share grows (the hash bucket stays below it).
    set_share(50)
    for client in on_new[:10]:
        assert not is_legacy(client.get("/healthz"))
    for client, _ in browsers:
        client.close()


def test_at_100_percent_nothing_reaches_the_legacy_app(legacy):
    set_share(100)
    for _ in range(20):
        client, new = new_browser()
        assert new
        client.close()
    # Its API paths fall through to the new pages' own answer (not found), not to the old app.
    response = httpx.get(legacy + "/api/chat_history", timeout=10)
    assert response.status_code == 404 and not is_legacy(response)


def test_a_rollback_takes_effect_within_30_s_and_no_request_fails(legacy):
    set_share(50)
    browsers = [new_browser()[0] for _ in range(30)]
    result = measure_rollback(browsers, after_s=3.0, to=0)
    print(
        f"rollback 50 % -> 0 %: command {result.command_s * 1000:.0f} ms, last new page "
        f"{(result.last_new_after_s or 0) * 1000:.0f} ms after it began, {result.requests} requests, "
        f"{len(result.failures)} failed"
    )
    assert result.failures == []
    assert result.new_before > 0, "no browser was on the new side before the rollback"
    assert result.last_new_after_s is None or result.last_new_after_s < ROLLBACK_LIMIT_S
    # Afterwards every browser, old or new, is on the legacy app.
    for client in browsers:
        assert is_legacy(client.get("/healthz"))
        client.close()
