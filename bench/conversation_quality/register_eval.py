"""The register checker (feedback_service.coaching.register) measured on the labelled sets here.

    .venv/bin/python bench/conversation_quality/register_eval.py [--json out.json] [--show-errors]

- register.yaml: verdict accuracy (overall, per language, per partner level), a confusion table
  over every verdict (ok, too_casual, rude, too_formal, too_direct), and how many flagged items got
  a suggestion that contains the expected forms (and none of the forms to avoid).
- sentences.yaml: each sentence's politeness label (polite / casual / rude) read as said to the
  boss (ok / too_casual / rude).
- messages.yaml: each message's register said to its own partner (keigo or polite → ok; casual to a
  colleague → ok; rude → rude): false alarms on messages written in the right register.

Prints figures only; sets no thresholds and always exits 0.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from feedback_service.coaching.register import VERDICTS, RegisterChecker

HERE = Path(__file__).resolve().parent


def load(name: str) -> Any:
    return yaml.safe_load((HERE / name).read_text(encoding="utf-8"))


def percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}% ({part}/{whole})" if whole else "  n/a"


def contains_forms(suggestion: str, forms: list[Any], language: str) -> bool:
    text = suggestion.lower() if language == "en" else suggestion
    for form in forms:
        options = form if isinstance(form, list) else [form]
        options = [o.lower() if language == "en" else o for o in options]
        if not any(o in text for o in options):
            return False
    return True


def confusion(rows: list[tuple[str, str]], labels: tuple[str, ...] = VERDICTS) -> list[str]:
    # every verdict the checker knows, and any label of the set it does not (yet) know
    labels = tuple(dict.fromkeys([*labels, *(e for e, _ in rows), *(g for _, g in rows)]))
    counts = Counter(rows)
    lines = ["  expected \\ got " + "".join(f"{g:>12}" for g in labels)]
    for e in labels:
        if not any(exp == e for exp, _ in rows):
            continue
        lines.append(f"  {e:<15}" + "".join(f"{counts[(e, g)]:>12}" for g in labels))
    return lines


def print_table(rows: list[tuple[str, str]], errors: list[str], show_errors: bool) -> None:
    """The confusion table, then each miss when asked for."""
    for line in confusion(rows):
        print(line)
    if show_errors and errors:
        print("  misses:")
        for line in errors:
            print(line)


def evaluate_register(checker: RegisterChecker, show_errors: bool) -> dict[str, Any]:
    items = load("register.yaml")["items"]
    rows: list[tuple[str, str]] = []
    by_language: Counter[str] = Counter()
    right_by_language: Counter[str] = Counter()
    by_level: Counter[str] = Counter()
    right_by_level: Counter[str] = Counter()
    flagged_with_forms = suggested = forms_ok = 0
    errors: list[str] = []
    results = []
    seconds: list[float] = []
    for item in items:
        start = time.perf_counter()
        check = checker.check(item["text"], item["language"], item["partner"])
        seconds.append(time.perf_counter() - start)
        rows.append((item["verdict"], check.verdict))
        right = check.verdict == item["verdict"]
        by_language[item["language"]] += 1
        right_by_language[item["language"]] += right
        by_level[check.level] += 1
        right_by_level[check.level] += right
        forms_hit = None
        if item["verdict"] != "ok" and item.get("forms"):
            flagged_with_forms += 1
            suggested += bool(check.better_phrasing)
            avoid = [a.lower() if item["language"] == "en" else a for a in item.get("avoid", [])]
            text = check.better_phrasing.lower() if item["language"] == "en" else check.better_phrasing
            forms_hit = (
                bool(check.better_phrasing)
                and contains_forms(check.better_phrasing, item["forms"], item["language"])
                and not any(a in text for a in avoid)
            )
            forms_ok += forms_hit
        if not right or forms_hit is False:
            errors.append(
                f"  {item['id']:<28} expected {item['verdict']:<10} got {check.verdict:<10} "
                f"{item['text']!r} -> {check.better_phrasing!r}"
            )
        results.append(
            {**item, "got": check.verdict, "better_phrasing": check.better_phrasing, "reasons": check.reasons}
        )

    correct = sum(e == g for e, g in rows)
    print("== Register checker: register.yaml")
    print(f"  items                          {len(items)}")
    print(f"  verdict accuracy               {percent(correct, len(rows))}")
    for language in sorted(by_language):
        print(f"    {language:<28} {percent(right_by_language[language], by_language[language])}")
    for level in ("peer", "senior", "superior"):
        print(f"    to a {level:<23} {percent(right_by_level[level], by_level[level])}")
    flagged = [(e, g) for e, g in rows if e != "ok"]
    caught = sum(g != "ok" for _, g in flagged)
    false_alarms = sum(g != "ok" for e, g in rows if e == "ok")
    print(f"  flagged items caught           {percent(caught, len(flagged))}")
    print(f"  ok items flagged (false alarm) {percent(false_alarms, sum(e == 'ok' for e, _ in rows))}")
    print(f"  flagged items with forms       {flagged_with_forms}")
    print(f"    got a suggestion             {percent(suggested, flagged_with_forms)}")
    print(f"    suggestion has the forms     {percent(forms_ok, flagged_with_forms)}")
    print(
        f"  latency per message (ms)       mean {1000 * sum(seconds) / len(seconds):.2f}, max {1000 * max(seconds):.1f}"
    )
    print("  confusion:")
    print_table(rows, errors, show_errors)
    return {
        "items": len(items),
        "accuracy": correct / len(rows),
        "forms_ok": forms_ok,
        "flagged_with_forms": flagged_with_forms,
        "results": results,
    }


def evaluate_labelled(checker: RegisterChecker, show_errors: bool) -> dict[str, Any]:
    """sentences.yaml said to the boss, messages.yaml said to their own partners."""
    out: dict[str, Any] = {}
    to_boss = {"polite": "ok", "casual": "too_casual", "rude": "rude"}
    sentences = [s for s in load("sentences.yaml")["sentences"] if s.get("politeness") in to_boss]
    rows = []
    errors = []
    for s in sentences:
        got = checker.check(s["text"], s["language"], "boss").verdict
        rows.append((to_boss[s["politeness"]], got))
        if got != to_boss[s["politeness"]]:
            errors.append(f"  {s['language']} expected {to_boss[s['politeness']]:<10} got {got:<10} {s['text']!r}")
    correct = sum(e == g for e, g in rows)
    print("== Register checker: sentences.yaml politeness, said to the boss")
    print(f"  sentences                      {len(rows)}")
    print(f"  verdict accuracy               {percent(correct, len(rows))}")
    for language in ("ja", "en"):
        sub = [(e, g) for (e, g), s in zip(rows, sentences, strict=True) if s["language"] == language]
        print(f"    {language:<28} {percent(sum(e == g for e, g in sub), len(sub))}")
    print_table(rows, errors, show_errors)
    out["sentences_accuracy"] = correct / len(rows) if rows else 0.0

    expected_for = {"keigo": "ok", "polite": "ok", "casual": "ok", "rude": "rude"}
    messages = load("messages.yaml")["messages"]
    rows = []
    errors = []
    for m in messages:
        expected = expected_for.get(m["register"])
        if expected is None:
            continue
        if m["register"] == "casual" and m["partner"] != "colleague":
            expected = "too_casual"
        got = checker.check(m["text"], m["language"], m["partner"]).verdict
        rows.append((expected, got))
        if got != expected:
            errors.append(f"  {m['id']:<36} expected {expected:<10} got {got:<10} {m['text']!r}")
    correct = sum(e == g for e, g in rows)
    ok_rows = [(e, g) for e, g in rows if e == "ok"]
    print("== Register checker: messages.yaml, each said to its own partner")
    print(f"  messages                       {len(rows)}")
    print(f"  verdict accuracy               {percent(correct, len(rows))}")
    print(f"  right-register messages flagged {percent(sum(g != 'ok' for _, g in ok_rows), len(ok_rows))}")
    print_table(rows, errors, show_errors)
    out["messages_accuracy"] = correct / len(rows) if rows else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write every verdict and suggestion here")
    parser.add_argument("--show-errors", action="store_true", help="list the items the checker got wrong")
    args = parser.parse_args()
    checker = RegisterChecker()
    start = time.perf_counter()
    checker.check("おはようございます", "ja", "boss")
    checker.check("Good morning", "en", "boss")
    print(f"(setup {time.perf_counter() - start:.2f}s)")
    report = evaluate_register(checker, args.show_errors)
    report.update(evaluate_labelled(checker, args.show_errors))
    if args.json:
        args.json.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
