"""Loads and checks the whole catalogue: categories.yaml, characters/*.yaml,
free_chat/partners.yaml, scenarios/**/*.yaml (free chat's situations and lines are read by the
dialogue catalogue: free_chat/).

Each file is validated on its own (model.py), then the files against each other (a scenario's
character and category exist, ids match file names, the harassment set asks for consent).
Every problem is reported at once, each naming its file and field:
``python -m workplace_content check``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .model import Category, Character, Scenario

CONTENT_ROOT = Path(__file__).parent
# Free chat (雑談練習): its partners, situations and moves with their lines, and their embedding
# cache (read by the chat service through the kit's dialogue catalogue).
FREE_CHAT_DIR = CONTENT_ROOT / "free_chat"
FREE_CHAT_PARTNERS = "free_chat/partners.yaml"
Model = TypeVar("Model", bound=BaseModel)


class ContentError(ValueError):
    """The authored content is malformed; the message lists every file and field that is wrong."""

    def __init__(self, problems: list[str]):
        super().__init__("the content catalogue has errors:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ContentCatalogue:
    root: Path
    categories: tuple[Category, ...]
    characters: dict[str, Character]
    scenarios: tuple[Scenario, ...]
    free_chat_partners: tuple[str, ...] = ()  # character ids, in picker order

    def scenario(self, scenario_id: str) -> Scenario:
        for scenario in self.scenarios:
            if scenario.id == scenario_id:
                return scenario
        raise KeyError(scenario_id)

    def category(self, category_id: str) -> Category:
        for category in self.categories:
            if category.id == category_id:
                return category
        raise KeyError(category_id)

    def character(self, character_id: str) -> Character:
        return self.characters[character_id]

    @property
    def free_chat_characters(self) -> tuple[Character, ...]:
        return tuple(self.characters[c] for c in self.free_chat_partners)


def _describe(error: ValidationError) -> Iterator[str]:
    for problem in error.errors():
        # A check across fields (model.py's validators) names its own field in its message.
        message = str(problem["msg"]).removeprefix("Value error, ")
        where = ".".join(str(part) for part in problem["loc"])
        yield f"{where}: {message}" if where else message


def _read(path: Path, root: Path, model: type[Model], problems: list[str], **extra: Any) -> Model | None:
    name = path.relative_to(root).as_posix()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"{name}: cannot read ({exc})")
        return None
    if not isinstance(raw, dict):
        problems.append(f"{name}: expected a mapping of fields")
        return None
    try:
        return model.model_validate({**extra, **raw})
    except ValidationError as exc:
        problems.extend(f"{name}: {line}" for line in _describe(exc))
        return None


def _read_categories(root: Path, problems: list[str]) -> tuple[Category, ...]:
    path = root / "categories.yaml"
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"categories.yaml: cannot read ({exc})")
        return ()
    if not isinstance(raw, list):
        problems.append("categories.yaml: expected a list of categories")
        return ()
    categories = []
    for position, item in enumerate(raw):
        try:
            categories.append(Category.model_validate(item))
        except ValidationError as exc:
            problems.extend(f"categories.yaml: [{position}].{line}" for line in _describe(exc))
    return tuple(categories)


def _read_free_chat(root: Path, problems: list[str]) -> tuple[str, ...]:
    try:
        raw = yaml.safe_load((root / FREE_CHAT_PARTNERS).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(f"{FREE_CHAT_PARTNERS}: cannot read ({exc})")
        return ()
    partners = raw.get("partners") if isinstance(raw, dict) else None
    if not isinstance(partners, list) or not partners or not all(isinstance(p, str) for p in partners):
        problems.append(f"{FREE_CHAT_PARTNERS}: partners: expected a list of character ids")
        return ()
    return tuple(partners)


def load_content(root: Path = CONTENT_ROOT) -> ContentCatalogue:
    """Parse and cross-check every content file under `root`; raise ContentError listing all problems."""
    problems: list[str] = []
    categories = _read_categories(root, problems)
    characters: dict[str, Character] = {}
    for path in sorted((root / "characters").glob("*.yaml")):
        if (character := _read(path, root, Character, problems, id=path.stem)) is not None:
            characters[character.id] = character
    partners = _read_free_chat(root, problems)
    for partner in partners:
        if partner not in characters:
            problems.append(f"{FREE_CHAT_PARTNERS}: partners: no characters/{partner}.yaml")
    known_categories = {c.id: c for c in categories}
    scenarios: list[Scenario] = []
    seen: dict[str, str] = {}
    for path in sorted((root / "scenarios").rglob("*.yaml")):
        name = path.relative_to(root).as_posix()
        scenario = _read(path, root, Scenario, problems, id=path.stem)
        if scenario is None:
            continue
        if scenario.id in seen:
            problems.append(f"{name}: id {scenario.id!r} is also {seen[scenario.id]}")
        seen[scenario.id] = name
        if scenario.character not in characters:
            problems.append(f"{name}: character: no characters/{scenario.character}.yaml")
        category = known_categories.get(scenario.category)
        if category is None:
            problems.append(f"{name}: category: {scenario.category!r} is not in categories.yaml")
        elif category.needs_consent and scenario.consent is None:
            problems.append(f"{name}: consent: required in category {category.id!r}")
        elif not category.needs_consent and scenario.consent is not None:
            problems.append(f"{name}: consent: only the categories that need consent have it")
        if category is not None and path.parent.name != category.id:
            problems.append(f"{name}: the file belongs in scenarios/{category.id}/")
        scenarios.append(scenario)
    if not scenarios and not problems:
        problems.append("scenarios/: no scenario files")
    if problems:
        raise ContentError(problems)
    order = {c.id: n for n, c in enumerate(categories)}
    levels = {"beginner": 0, "intermediate": 1, "advanced": 2}
    scenarios.sort(key=lambda s: (order[s.category], levels[s.difficulty], s.id))
    return ContentCatalogue(root, categories, characters, tuple(scenarios), partners)


@lru_cache(maxsize=1)
def content() -> ContentCatalogue:
    """The catalogue shipped in this package, loaded once per process."""
    return load_content()
