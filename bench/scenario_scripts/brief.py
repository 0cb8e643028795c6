"""Print what the held-out set was written from, and nothing more.

For each scenario: title, situation, learner_role, goal, criteria, opening, and per move its
id, meets/misses and its first reply line per language. The moves' `examples` and `keywords`
are deliberately never printed, so that heldout.yaml could be written blind to them.

    .venv/bin/python bench/scenario_scripts/brief.py [scenario-id ...]
"""

from __future__ import annotations

import sys

from workplace_content import content


def main(wanted: list[str]) -> None:
    for scenario in content().scenarios:
        if wanted and scenario.id not in wanted:
            continue
        print(f"=== {scenario.id}  [{scenario.category}]")
        for name in ("title", "situation", "learner_role", "goal"):
            text = getattr(scenario, name)
            print(f"{name}.ja: {text.ja}")
            print(f"{name}.en: {text.en}")
        for criterion in scenario.criteria:
            print(f"criterion {criterion.id}: {criterion.text.ja} / {criterion.text.en}")
        if scenario.opening is not None:
            print(f"opening.ja: {scenario.opening.ja}")
            print(f"opening.en: {scenario.opening.en}")
        else:
            print("opening: (none; the learner speaks first)")
        for move_id, move in scenario.moves.items():
            print(f"-- move {move_id}  meets={list(move.meets)} misses={list(move.misses)}")
            print(f"   reply.ja: {move.replies.ja[0]}")
            print(f"   reply.en: {move.replies.en[0]}")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
