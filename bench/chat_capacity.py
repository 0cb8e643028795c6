#!/usr/bin/env python3
"""Chat's autoscaling threshold from its measured capacity: how many streamed replies one chat
pod carries with first text p95 within target, times a headroom factor. The result is the
chart's `services.chat.autoscaling.inFlightPerReplica` (KEDA scales chat on requests in flight
per replica, `requests_in_flight`, where each streamed reply counts while it streams);
tests/contract/test_chat_autoscaling_threshold.py fails when the chart and the record disagree.

The record, bench/results/chat_capacity.json (kept in the repository, unlike the other results):
the closed-loop levels of a `task bench` run (bench/full_platform.py) and where they come from.
Write it from a run:

    .venv/bin/python bench/full_platform.py --save-capacity        # a run, then the record
    .venv/bin/python bench/chat_capacity.py --from-results bench/results/<timestamp>.json
    .venv/bin/python bench/chat_capacity.py                        # what the record gives

The rule (derive()):
- target: first text p95 at most the stand-in's first chunk (300 ms) plus the 200 ms the
  design gives the platform's own work at p95 (the "p95 < 200 ms for non-AI calls" KPI,
  deploy/prometheus/rules): 500 ms; and no error at that level;
- capacity: the largest closed-loop level that meets it, every smaller level meeting it too. In
  a closed loop every conversation holds one stream at a time, so a level of N conversations is
  N requests in flight at chat, spread over its processes (`local_processes`; a pod runs one);
- per pod: capacity / chat processes;
- threshold: per pod x HEADROOM, rounded down. KEDA answers a rise within a scrape (30 s) and a
  poll (15 s), and a new pod takes a minute or more to serve: at half its capacity a replica's
  load can double in that time before first text p95 leaves its target.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RECORD = REPO / "bench" / "results" / "chat_capacity.json"
STANDIN_FIRST_MS = 300  # bench/full_platform.py: the stand-in's first chunk
PLATFORM_P95_BUDGET_MS = 200  # the design's KPI for the platform's own (non-AI) work at p95
TARGET_FIRST_TEXT_P95_MS = STANDIN_FIRST_MS + PLATFORM_P95_BUDGET_MS
HEADROOM = 0.5


def meets_target(level: dict[str, Any], target_ms: float) -> bool:
    """A level is held when its first text p95 is within target and it had no error (a count
    the source did not report, None, is not an error)."""
    p95 = level.get("first_text_p95_ms")
    return p95 is not None and p95 <= target_ms and not level.get("errors")


def derive(record: dict[str, Any]) -> dict[str, Any]:
    """The threshold the record's levels give: see the module's docstring."""
    rule = record["rule"]
    held = 0
    for level in sorted(record["levels"], key=lambda lv: lv["concurrency"]):
        if not meets_target(level, rule["first_text_p95_ms_max"]):
            break
        held = level["concurrency"]
    if not held:
        raise ValueError("no level meets the target: the record gives no capacity")
    per_pod = held / record["chat_processes"]
    return {
        "capacity_streams": held,
        "streams_per_pod": per_pod,
        "in_flight_per_replica": max(1, math.floor(per_pod * rule["headroom"])),
    }


def record_from_full_platform(results: dict[str, Any], *, results_file: str) -> dict[str, Any]:
    """The record from a bench/full_platform.py results file (its closed-loop levels)."""
    meta = results["meta"]
    levels = []
    for row in results.get("levels", []):
        platform, floor = row["platform"], row.get("floor") or {}
        levels.append(
            {
                "concurrency": row["concurrency"],
                "first_text_p95_ms": platform["first_text_ms"]["p95"],
                "errors": platform["errors"],
                "replies_per_s": platform["replies_per_s"],
                "floor_replies_per_s": floor.get("replies_per_s"),
            }
        )
    if not levels:
        raise ValueError("the results have no closed-loop levels (a --long run?)")
    processes = results.get("processes", {}).get("chat")
    if not processes:
        raise ValueError("the results do not say how many chat processes ran")
    started = meta["started"]  # %Y%m%d-%H%M%S
    record = {
        "source": {
            "kind": "a bench run",
            "bench_command": "bench/full_platform.py " + " ".join(_argv(meta.get("args", {}))),
            "results_file": results_file,
            "measured_on": f"{started[:4]}-{started[4:6]}-{started[6:8]}",
            "recorded_on": time.strftime("%Y-%m-%d"),
        },
        "machine": {"cpus": meta.get("cpus"), "cpu_model": meta.get("cpu_model")},
        "chat_processes": processes,
        "standin": meta.get("standin_shape"),
        "levels": levels,
        "rule": default_rule(),
    }
    record["derived"] = derive(record)
    return record


def default_rule() -> dict[str, Any]:
    return {
        "first_text_p95_ms_max": TARGET_FIRST_TEXT_P95_MS,
        "target_why": (
            f"the stand-in's first chunk ({STANDIN_FIRST_MS} ms) plus the {PLATFORM_P95_BUDGET_MS} ms the "
            "design gives the platform's own work at p95 (deploy/prometheus/rules: p95 < 200 ms for non-AI calls)"
        ),
        "headroom": HEADROOM,
        "headroom_why": (
            "KEDA sees a rise within a scrape (30 s) and a poll (15 s) and a new pod serves a minute or more "
            "later: at half its capacity a replica's load can double meanwhile"
        ),
    }


def _argv(args: dict[str, Any]) -> list[str]:
    flags = []
    for key in ("quick", "long"):
        if args.get(key):
            flags.append(f"--{key}")
    if args.get("levels"):
        flags.append("--levels " + ",".join(str(v) for v in args["levels"]))
    if args.get("level_s"):
        flags.append(f"--level-s {args['level_s']:g}")
    return flags


def save(record: dict[str, Any], path: Path = RECORD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from-results", type=Path, help="write the record from this full_platform results file")
    args = parser.parse_args(argv)
    if args.from_results:
        results = json.loads(args.from_results.read_text())
        shown = args.from_results.resolve()
        name = str(shown.relative_to(REPO)) if shown.is_relative_to(REPO) else str(shown)
        save(record_from_full_platform(results, results_file=name))
    record = json.loads(RECORD.read_text())
    derived = derive(record)
    print(
        f"{RECORD.relative_to(REPO)}: {derived['capacity_streams']} streams held on {record['chat_processes']} chat "
        f"processes ({derived['streams_per_pod']:g} per pod) -> inFlightPerReplica {derived['in_flight_per_replica']}"
    )
    if record.get("derived") != derived:
        print("the record's own 'derived' differs: write it again (--from-results)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
