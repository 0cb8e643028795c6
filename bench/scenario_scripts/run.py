"""Move recognition of the 54 scenario scripts, measured on a blind held-out set.

    .venv/bin/python bench/scenario_scripts/run.py [--scenario ID ...] [--json out.json]

heldout.yaml holds, per scenario and per move, one learner message in Japanese and one in
English, written without reading the moves' `examples` or `keywords` (see README.md), plus one
off-topic message per language that no move fits (expected: fallback). Each message is played
as the learner's first message after the scenario's opening line, exactly as the scenario
service asks the offline engine (history = the opening as a "model" turn; temperature 0), and
the recognised move is compared with the expected one.

Prints: accuracy on real moves per language and per category; the fallback rate on real moves
(a real move sent to fallback: should be low); the off-topic messages correctly sent to
fallback; every miss (scenario, language, expected, got, confidence, message) and the most
frequent (expected -> got) pairs; the embedding model's load time, the index build time per
scenario, and reply latency p50/p95 in ms. Deterministic; sets no thresholds; always exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from scenario_service.settings import VECTOR_CACHE
from workplace_content import content
from workplace_content.dialogue import OFF_TOPIC_MOVE, scenario_script
from workplace_kit.ai.embeddings import get_embedder
from workplace_kit.ai.offline_dialogue import FALLBACK_INTENT, OfflineDialogueEngine
from workplace_kit.ai.types import DialogueRequest, Turn

HERE = Path(__file__).resolve().parent
HELDOUT = HERE / "heldout.yaml"
LANGUAGES = ("ja", "en")


@dataclass(frozen=True)
class Result:
    scenario: str
    category: str
    language: str
    expected: str
    got: str
    confidence: float
    message: str
    ms: float

    @property
    def steered_back(self) -> bool:
        """Answered with the scenario's fallback lines: the engine's doubt, or the off-topic move."""
        return self.got in (FALLBACK_INTENT, OFF_TOPIC_MOVE)

    @property
    def hit(self) -> bool:
        return self.expected == self.got or (self.expected == FALLBACK_INTENT and self.steered_back)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0..1)."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def ratio(hits: int, total: int) -> str:
    return f"{hits}/{total} = {100 * hits / total:5.1f}%" if total else "0/0"


def play(scenario_ids: set[str]) -> tuple[list[Result], dict[str, float], float]:
    heldout: dict[str, list[dict[str, str]]] = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    catalogue = content()
    embedder = get_embedder()
    started = time.perf_counter()
    embedder.embed_query("warm-up")  # loads the model, so the index times below are the index's
    model_seconds = time.perf_counter() - started
    results: list[Result] = []
    build_seconds: dict[str, float] = {}
    for scenario in catalogue.scenarios:
        if scenario.id not in heldout or (scenario_ids and scenario.id not in scenario_ids):
            continue
        started = time.perf_counter()
        engine = OfflineDialogueEngine(scenario_script(scenario, catalogue, cache_file=VECTOR_CACHE), embedder)
        engine.ensure_index()
        build_seconds[scenario.id] = time.perf_counter() - started
        for item in heldout[scenario.id]:
            for language in LANGUAGES:
                opening = scenario.opening.get(language) if scenario.opening else ""
                history = (Turn("model", opening),) if opening else ()
                request = DialogueRequest(
                    system_instruction="",
                    message=item[language],
                    history=history,
                    partner=scenario.character,
                    situation=scenario.id,
                    language=language,  # type: ignore[arg-type]
                    temperature=0.0,
                )
                started = time.perf_counter()
                reply = engine.choose_reply(request)
                ms = 1000 * (time.perf_counter() - started)
                results.append(
                    Result(
                        scenario.id,
                        scenario.category,
                        language,
                        item["move"],
                        reply.intent,
                        reply.confidence,
                        item[language],
                        ms,
                    )
                )
    return results, build_seconds, model_seconds


def report(results: list[Result], build_seconds: dict[str, float], model_seconds: float) -> dict[str, object]:
    moves = [r for r in results if r.expected != FALLBACK_INTENT]
    off_topic = [r for r in results if r.expected == FALLBACK_INTENT]
    summary: dict[str, object] = {"scenarios": len(build_seconds), "messages": len(results)}

    print(
        f"held-out set: {len(build_seconds)} scenarios, {len(results)} messages "
        f"({len(moves)} on real moves, {len(off_topic)} off-topic), first message after the opening\n"
    )

    print("accuracy on real moves (recognised move == expected move)")
    for language in (*LANGUAGES, "all"):
        chosen = [r for r in moves if language in ("all", r.language)]
        hits = sum(r.hit for r in chosen)
        print(f"  {language:4} {ratio(hits, len(chosen))}")
        summary[f"accuracy_{language}"] = hits / len(chosen) if chosen else 0.0
    print("accuracy on every message, off-topic included")
    for language in (*LANGUAGES, "all"):
        chosen = [r for r in results if language in ("all", r.language)]
        print(f"  {language:4} {ratio(sum(r.hit for r in chosen), len(chosen))}")

    print("\naccuracy on real moves per category            ja                  en")
    categories = sorted({r.category for r in moves})
    per_category: dict[str, dict[str, float]] = {}
    for category in categories:
        cells = []
        per_category[category] = {}
        for language in LANGUAGES:
            chosen = [r for r in moves if r.category == category and r.language == language]
            hits = sum(r.hit for r in chosen)
            cells.append(f"{ratio(hits, len(chosen)):18}")
            per_category[category][language] = hits / len(chosen) if chosen else 0.0
        print((f"  {category:14} {len(scenarios_of(category, results)):2} scenarios   " + "  ".join(cells)).rstrip())
    summary["per_category"] = per_category

    print("\nfallback rate on real moves (a real move answered with a fallback line; lower is better)")
    for language in (*LANGUAGES, "all"):
        chosen = [r for r in moves if language in ("all", r.language)]
        fell = sum(r.steered_back for r in chosen)
        print(f"  {language:4} {ratio(fell, len(chosen))}")
        summary[f"fallback_rate_{language}"] = fell / len(chosen) if chosen else 0.0

    print("\noff-topic messages sent to fallback (higher is better)")
    for language in (*LANGUAGES, "all"):
        chosen = [r for r in off_topic if language in ("all", r.language)]
        hits = sum(r.hit for r in chosen)
        print(f"  {language:4} {ratio(hits, len(chosen))}")
        summary[f"off_topic_to_fallback_{language}"] = hits / len(chosen) if chosen else 0.0

    misses = [r for r in results if not r.hit]
    print(f"\nmisses ({len(misses)}): scenario | lang | expected -> got (confidence) | message")
    for r in misses:
        message = r.message if len(r.message) <= 90 else r.message[:87] + "..."
        print(f"  {r.scenario} | {r.language} | {r.expected} -> {r.got} ({r.confidence:.2f}) | {message}")

    print("\nmost frequent kinds of miss (expected -> got, over all scenarios and both languages)")
    pairs = Counter((r.expected, r.got) for r in misses)
    for (expected, got), count in pairs.most_common(15):
        where = sorted({f"{r.scenario}/{r.language}" for r in misses if (r.expected, r.got) == (expected, got)})
        print(f"  {count:3}  {expected} -> {got}: {', '.join(where)}")
    by_scenario = Counter(r.scenario for r in misses)
    print("\nscenarios with the most misses (of their messages in both languages)")
    totals = Counter(r.scenario for r in results)
    for scenario, count in by_scenario.most_common(10):
        print(f"  {count:3}/{totals[scenario]:<3} {scenario}")

    builds = list(build_seconds.values())
    latencies = [r.ms for r in results]
    print("\ntiming")
    print(f"  embedding model load                  {1000 * model_seconds:8.0f} ms (once per process)")
    print(f"  index build, all scenarios            {1000 * sum(builds):8.0f} ms")
    print(
        f"  index build per scenario p50 / max    {1000 * statistics.median(builds):8.0f} ms / "
        f"{1000 * max(builds):.0f} ms"
    )
    print(
        f"  reply latency p50 / p95 / max         {percentile(latencies, 0.5):8.1f} ms / "
        f"{percentile(latencies, 0.95):.1f} ms / {max(latencies):.1f} ms ({len(latencies)} replies)"
    )
    summary.update(
        index_build_total_ms=1000 * sum(builds),
        index_build_p50_ms=1000 * statistics.median(builds),
        latency_p50_ms=percentile(latencies, 0.5),
        latency_p95_ms=percentile(latencies, 0.95),
        model_load_ms=1000 * model_seconds,
    )
    return summary


def scenarios_of(category: str, results: list[Result]) -> set[str]:
    return {r.scenario for r in results if r.category == category}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", action="append", default=[], help="only this scenario (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the summary and every result here")
    args = parser.parse_args()
    results, build_seconds, model_seconds = play(set(args.scenario))
    if not results:
        print("no held-out messages for the scenarios asked for")
        return
    summary = report(results, build_seconds, model_seconds)
    if args.json:
        payload = {"summary": summary, "results": [asdict(r) | {"hit": r.hit} for r in results]}
        args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
