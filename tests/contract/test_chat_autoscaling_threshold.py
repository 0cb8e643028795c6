"""Chat's KEDA threshold (requests in flight per replica) is what the recorded benchmark gives,
not a guess: bench/results/chat_capacity.json holds the closed-loop levels of `task bench` and
their source, bench/chat_capacity.py the rule (capacity per pod within the first-text target,
times a headroom), and the chart's values must equal the result."""

from __future__ import annotations

import json

import pytest
import yaml
from test_deploy_manifests import (
    CHART_DIR,
    PRODUCTION_VALUES,
    RELEASE,
    REPO,
    _documents,
    _kind,
    _load_script,
    _production_values,
    _render,
)

CAPACITY = _load_script("chat_capacity_for_contract_tests", REPO / "bench" / "chat_capacity.py")


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads(CAPACITY.RECORD.read_text())


def _chat_requests_threshold(docs: list[dict]) -> str:
    scaled = _kind(docs, "ScaledObject")[f"{RELEASE}-chat"]
    (requests,) = [t for t in scaled["spec"]["triggers"] if t["name"] == "requests"]
    assert "requests_in_flight" in requests["metadata"]["query"]
    return requests["metadata"]["threshold"]


def test_the_record_says_where_its_figures_come_from_and_follows_the_rule(record) -> None:
    source = record["source"]
    assert source["measured_on"] and source["recorded_on"] and source["bench_command"]
    assert source.get("document") or source.get("results_file"), "a run's results file, or the page it is from"
    assert record["rule"]["first_text_p95_ms_max"] == CAPACITY.TARGET_FIRST_TEXT_P95_MS
    assert record["rule"]["headroom"] == CAPACITY.HEADROOM
    assert record["standin"]["first_ms"] == CAPACITY.STANDIN_FIRST_MS
    assert record["derived"] == CAPACITY.derive(record), "the record's 'derived' is stale: write it again"


def test_production_scales_chat_at_the_threshold_the_benchmark_gives(record) -> None:
    threshold = CAPACITY.derive(record)["in_flight_per_replica"]
    assert _production_values()["services"]["chat"]["autoscaling"]["inFlightPerReplica"] == threshold
    assert _chat_requests_threshold(_documents(_render(_production_values()))) == str(threshold)
    # The default values (keda.enabled) too, and the derivation is written where the value is set.
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert defaults["services"]["chat"]["autoscaling"]["inFlightPerReplica"] == threshold
    assert _chat_requests_threshold(_documents(_render({"keda": {"enabled": True}}))) == str(threshold)
    assert "bench/results/chat_capacity.json" in PRODUCTION_VALUES.read_text()


def _level(concurrency: int, p95: float, errors: int | None = 0) -> dict:
    return {"concurrency": concurrency, "first_text_p95_ms": p95, "errors": errors}


def test_the_rule_takes_the_largest_level_held_from_below_per_process_with_headroom() -> None:
    rule = CAPACITY.default_rule()

    def threshold(levels: list[dict], processes: int = 2) -> int:
        return CAPACITY.derive({"levels": levels, "chat_processes": processes, "rule": rule})["in_flight_per_replica"]

    assert threshold([_level(32, 347), _level(64, 476), _level(128, 912)]) == 16
    assert threshold([_level(32, 347), _level(64, 501), _level(128, 480)]) == 8, "held from below only"
    assert threshold([_level(32, 347), _level(64, 476, errors=3)]) == 8, "a level with errors is not held"
    assert threshold([_level(32, 347), _level(64, 476, errors=None)]) == 16, "unreported errors are not errors"
    assert threshold([_level(64, 476)], processes=1) == 32
    assert threshold([_level(8, 300)], processes=8) == 1, "never below one"
    with pytest.raises(ValueError, match="no level"):
        threshold([_level(8, 900)])


def test_a_bench_run_becomes_a_record_with_save_capacity() -> None:
    """bench/full_platform.py --save-capacity: its results file, turned into the record."""
    results = {
        "meta": {
            "started": "20261203-101500",
            "cpus": 2,
            "cpu_model": "x",
            "standin_shape": {"first_ms": 300, "chunks": 20, "gap_ms": 40},
            "args": {"levels": [32, 64, 128], "level_s": 20.0},
        },
        "processes": {"chat": 2, "feedback": 1},
        "levels": [
            {
                "concurrency": c,
                "platform": {"first_text_ms": {"p95": p95}, "errors": 0, "replies_per_s": 1.0},
                "floor": {"replies_per_s": 1.0},
            }
            for c, p95 in ((32, 340.0), (64, 470.0), (128, 900.0))
        ],
    }
    record = CAPACITY.record_from_full_platform(results, results_file="bench/results/20261203-101500.json")
    assert record["source"]["measured_on"] == "2026-12-03"
    assert record["source"]["bench_command"] == "bench/full_platform.py --levels 32,64,128 --level-s 20"
    assert record["derived"] == {"capacity_streams": 64, "streams_per_pod": 32.0, "in_flight_per_replica": 16}
    assert CAPACITY.derive(json.loads(json.dumps(record))) == record["derived"]
