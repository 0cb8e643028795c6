"""`python -m workplace_content check [ROOT]`: validate every content file and print the counts
(or every problem, each with its file and field, and exit 1)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from .catalogue import CONTENT_ROOT, ContentError, load_content


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workplace_content")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate the catalogue and print its counts")
    check.add_argument("root", nargs="?", type=Path, default=CONTENT_ROOT)
    args = parser.parse_args(argv)
    try:
        catalogue = load_content(args.root)
    except ContentError as exc:
        print(exc, file=sys.stderr)
        return 1
    by_category = Counter(s.category for s in catalogue.scenarios)
    by_level = Counter(s.difficulty for s in catalogue.scenarios)
    print(f"{len(catalogue.scenarios)} scenarios, {len(catalogue.characters)} characters")
    for category in catalogue.categories:
        print(f"  {category.id:<14} {by_category[category.id]:>3}  {category.name.ja}")
    print("  " + ", ".join(f"{level} {count}" for level, count in sorted(by_level.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
