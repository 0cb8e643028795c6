"""The authored content the offline dialogue engine plays: characters, situations and moves.

The engine holds no content. A service owns a content folder and hands its catalogue to the
engine (free chat: libs/content/src/workplace_content/free_chat/, with the characters of the
shared catalogue; a scenario: workplace_content.dialogue.scenario_script):
    characters.yaml   who the partners are (ids, names, role, register) per language, unless
                      the service hands in a Cast
    situations.yaml   the situations, their time of day and each partner's opening line
    intents.yaml      what a learner may do (the moves: examples, keywords, slots) and each
                      partner's replies
A move ("intent") is recognised from its examples (by meaning) and its keywords (by the words
themselves); its slots pick phrases out of the learner's own words so that a line can use them.
A reply line may be limited to situations, times of day and the phase of the conversation, may
need slots ({thing}) and may ask for a slot (then it is skipped once the learner said it).
Every loading error names the file and the field that is wrong.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml

from workplace_kit.ai.types import Partner

Language = Literal["ja", "en"]
LANGUAGES: tuple[Language, ...] = ("ja", "en")
TimeOfDay = Literal["morning", "daytime", "evening"]
TIMES_OF_DAY: tuple[TimeOfDay, ...] = ("morning", "daytime", "evening")
# opening: only as the partner's first reply; later: only after the first exchange.
PHASES = ("opening", "later")
FALLBACK_INTENT = "fallback"
CACHE_FILE = "embedding_cache.npz"
# Placeholders every line may use without declaring a slot.
BUILTIN_PLACEHOLDERS = frozenset({"partner_name"})


class CatalogueError(ValueError):
    """The authored dialogue data is malformed; the message says where."""


@dataclass(frozen=True)
class Situation:
    id: str
    title_ja: str
    title_en: str
    description_ja: str
    description_en: str = ""
    time_of_day: TimeOfDay | None = None  # None: whenever the learner practises

    def title(self, language: Language) -> str:
        return self.title_ja if language == "ja" else self.title_en


@dataclass(frozen=True)
class Persona:
    partner: Partner
    language: Language
    name: str  # fills {partner_name}
    full_name: str
    role: str
    register: str  # how the partner speaks: for writers, and for an LLM's system instruction
    style_notes: str
    # How the partner returns a greeting at each time of day, before answering the rest of a
    # message that opens with one (「おはようございます。昨日の件ですが…」).
    greetings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplyLine:
    text: str
    situations: frozenset[str] = frozenset()  # empty: every situation
    times: frozenset[str] = frozenset()  # empty: any time of day
    phase: str | None = None  # None: any phase
    asks: frozenset[str] = frozenset()  # slots this line asks for (skipped once they are known)
    needs: frozenset[str] = frozenset()  # slots its text uses ({thing}); filled from the learner
    # The line refers to one of these things, so the learner must have mentioned one of them.
    mentions: tuple[str, ...] = ()
    # Only while the learner has not given these slots (「行きましょう！」 accepts on the spot, so
    # not once a day was named).
    without: frozenset[str] = frozenset()

    def fits(self, situation: str) -> bool:
        return not self.situations or situation in self.situations

    @property
    def is_general(self) -> bool:
        """Usable in every situation, at any time, in any phase and without slots."""
        return not (self.situations or self.times or self.phase or self.needs or self.mentions)


@dataclass(frozen=True)
class Intent:
    id: str
    examples: Mapping[Language, tuple[str, ...]]
    replies: Mapping[Partner, Mapping[Language, tuple[ReplyLine, ...]]]
    keywords: Mapping[Language, tuple[str, ...]] = field(default_factory=dict)
    slots: Mapping[str, Mapping[Language, tuple[re.Pattern[str], ...]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Character:
    """A partner the learner can talk to, with its label in each language (for pickers)."""

    id: str
    labels: Mapping[Language, str]


@dataclass(frozen=True)
class Cast:
    """The characters a catalogue plays, with each one's persona per language."""

    characters: tuple[Character, ...]
    personas: Mapping[Partner, Mapping[Language, Persona]]


@dataclass(frozen=True)
class Catalogue:
    folder: Path  # where the content files (and, by default, the embedding cache) are
    characters: tuple[Character, ...]
    situations: tuple[Situation, ...]
    openers: Mapping[str, Mapping[Partner, Mapping[Language, str]]]
    personas: Mapping[Partner, Mapping[Language, Persona]]
    intents: tuple[Intent, ...]
    # The embedding cache; None: CACHE_FILE in the folder. Several catalogues may share one file
    # (the scenario service's scripts): texts are looked up by their words.
    cache_file: Path | None = None

    @property
    def partners(self) -> tuple[Partner, ...]:
        return tuple(c.id for c in self.characters)

    @property
    def cache_path(self) -> Path:
        return self.cache_file or self.folder / CACHE_FILE

    def situation(self, situation_id: str) -> Situation:
        for situation in self.situations:
            if situation.id == situation_id:
                return situation
        known = ", ".join(s.id for s in self.situations)
        raise KeyError(f"unknown situation {situation_id!r} (known: {known})")

    def persona(self, partner: Partner, language: Language = "ja") -> Persona:
        """Name, role and speaking style of a partner in one language."""
        if partner not in self.personas:
            raise KeyError(f"unknown partner {partner!r} (known: {', '.join(self.personas)})")
        if language not in LANGUAGES:
            raise KeyError(f"unknown language {language!r} (known: ja, en)")
        return self.personas[partner][language]

    def opening_line(self, situation_id: str, partner: Partner, language: Language = "ja") -> str:
        """What the partner says first in a situation ("" if none is authored)."""
        self.situation(situation_id)  # raises for an unknown id
        return self.openers[situation_id][partner].get(language, "")

    def intent(self, intent_id: str) -> Intent:
        for intent in self.intents:
            if intent.id == intent_id:
                return intent
        raise KeyError(intent_id)

    def all_texts(self) -> list[str]:
        """Every text the index embeds (examples and reply lines), without duplicates."""
        seen: dict[str, None] = {}
        for intent in self.intents:
            for language in LANGUAGES:
                for text in intent.examples[language]:
                    seen.setdefault(text, None)
            for by_language in intent.replies.values():
                for lines in by_language.values():
                    for line in lines:
                        seen.setdefault(line.text, None)
        return list(seen)


# ---------------------------------------------------------------- loading the authored data


def _read_yaml(folder: Path, name: str) -> Any:
    path = folder / name
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read {path}: {exc}") from exc


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise CatalogueError(f"{where}: missing '{key}'")
    return mapping[key]


def _string_list(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, str | int | float) for item in raw):
        raise CatalogueError(f"{where}: expected a list of strings")
    return tuple(str(item).strip() for item in raw if str(item).strip())


def _greetings(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: expected {{morning: ..., daytime: ..., evening: ...}}")
    if unknown := set(raw) - set(TIMES_OF_DAY):
        raise CatalogueError(f"{where}: unknown {sorted(unknown)} (known: {', '.join(TIMES_OF_DAY)})")
    return {str(k): str(v).strip() for k, v in raw.items() if str(v).strip()}


def _placeholders(text: str, where: str) -> frozenset[str]:
    try:
        return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)
    except ValueError as exc:
        raise CatalogueError(f"{where}: bad placeholder in {text!r} ({exc})") from exc


def _parse_line(raw: Any, where: str, slots: frozenset[str]) -> ReplyLine:
    if isinstance(raw, str):
        raw = {"text": raw}
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: a reply must be a string or a mapping with 'text'")
    text = str(_require(raw, "text", where)).strip()
    times = frozenset(_string_list(raw.get("times"), f"{where}.times"))
    if unknown := times - set(TIMES_OF_DAY):
        raise CatalogueError(f"{where}.times: unknown {sorted(unknown)} (known: {', '.join(TIMES_OF_DAY)})")
    phase = raw.get("phase")
    if phase is not None and phase not in PHASES:
        raise CatalogueError(f"{where}.phase: {phase!r} is not one of {', '.join(PHASES)}")
    asks = frozenset(_string_list(raw.get("asks"), f"{where}.asks"))
    without = frozenset(_string_list(raw.get("without"), f"{where}.without"))
    needs = _placeholders(text, where) - BUILTIN_PLACEHOLDERS
    for name in sorted((asks | needs | without) - slots):
        raise CatalogueError(f"{where}: slot {{{name}}} is not declared in this intent's slots")
    return ReplyLine(
        text=text,
        situations=frozenset(_string_list(raw.get("situations"), f"{where}.situations")),
        times=times,
        phase=phase,
        asks=asks,
        needs=needs,
        mentions=_string_list(raw.get("mentions"), f"{where}.mentions"),
        without=without,
    )


def _parse_slots(raw: Any, where: str) -> dict[str, dict[Language, tuple[re.Pattern[str], ...]]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise CatalogueError(f"{where}: expected a mapping of slot name -> {{ja: [...], en: [...]}}")
    slots: dict[str, dict[Language, tuple[re.Pattern[str], ...]]] = {}
    for name, by_language in raw.items():
        name = str(name)
        if not name.isidentifier() or name in BUILTIN_PLACEHOLDERS:
            raise CatalogueError(f"{where}.{name}: not a usable slot name")
        slots[name] = {}
        for language in LANGUAGES:
            patterns = []
            for position, source in enumerate(_string_list((by_language or {}).get(language), f"{where}.{name}")):
                pattern_where = f"{where}.{name}.{language}[{position}]"
                try:
                    pattern = re.compile(source, re.IGNORECASE)
                except re.error as exc:
                    raise CatalogueError(f"{pattern_where}: not a valid regular expression ({exc})") from exc
                if name not in pattern.groupindex:
                    raise CatalogueError(f"{pattern_where}: needs a named group (?P<{name}>...)")
                patterns.append(pattern)
            slots[name][language] = tuple(patterns)
    return slots


def parse_intents(raw: Any, partners: tuple[Partner, ...], source: str = "intents.yaml") -> tuple[Intent, ...]:
    """The moves in intents.yaml's format (`source` names where they come from in errors)."""
    if not isinstance(raw, dict) or not raw:
        raise CatalogueError(f"{source}: expected a mapping of intent id -> definition")
    intents = []
    for intent_id, body in raw.items():
        where = f"{source}:{intent_id}"
        examples_raw = _require(body, "examples", where)
        replies_raw = _require(body, "replies", where)
        examples: dict[Language, tuple[str, ...]] = {}
        for language in LANGUAGES:
            texts = _string_list(_require(examples_raw, language, f"{where}.examples"), f"{where}.examples.{language}")
            if not texts:
                raise CatalogueError(f"{where}.examples.{language}: no examples")
            examples[language] = texts
        keywords_raw = body.get("keywords") or {}
        if not isinstance(keywords_raw, dict):
            raise CatalogueError(f"{where}.keywords: expected {{ja: [...], en: [...]}}")
        keywords = {lang: _string_list(keywords_raw.get(lang), f"{where}.keywords.{lang}") for lang in LANGUAGES}
        slots = _parse_slots(body.get("slots"), f"{where}.slots")
        replies: dict[Partner, dict[Language, tuple[ReplyLine, ...]]] = {}
        unknown = set(replies_raw) - set(partners) if isinstance(replies_raw, dict) else set()
        if unknown:
            raise CatalogueError(f"{where}.replies: no such character {sorted(unknown)}")
        for partner in partners:
            by_language = _require(replies_raw, partner, f"{where}.replies")
            replies[partner] = {}
            for language in LANGUAGES:
                lines_where = f"{where}.replies.{partner}.{language}"
                raw_lines = _require(by_language, language, f"{where}.replies.{partner}")
                if not isinstance(raw_lines, list):
                    raise CatalogueError(f"{lines_where}: expected a list of lines")
                lines = tuple(_parse_line(r, f"{lines_where}[{n}]", frozenset(slots)) for n, r in enumerate(raw_lines))
                if not any(line.is_general for line in lines):
                    raise CatalogueError(
                        f"{lines_where}: needs at least one line for every situation, time and phase, "
                        "without slots or mentions"
                    )
                replies[partner][language] = lines
        intents.append(Intent(str(intent_id), examples, replies, keywords, slots))
    if FALLBACK_INTENT not in {i.id for i in intents}:
        raise CatalogueError(f"{source}: the '{FALLBACK_INTENT}' intent is required")
    return tuple(intents)


def parse_cast(raw: Any, source: str = "characters.yaml") -> Cast:
    """Characters in characters.yaml's format: id -> {ja: {...}, en: {...}}."""
    if not isinstance(raw, dict) or not raw:
        raise CatalogueError(f"{source}: expected a mapping of character id -> languages")
    characters: list[Character] = []
    personas: dict[Partner, dict[Language, Persona]] = {}
    for partner, by_language in raw.items():
        partner = str(partner)
        personas[partner] = {}
        labels: dict[Language, str] = {}
        for language in LANGUAGES:
            p = _require(by_language, language, f"{source}:{partner}")
            where = f"{source}:{partner}.{language}"
            personas[partner][language] = Persona(
                partner=partner,
                language=language,
                name=str(_require(p, "name", where)),
                full_name=str(p.get("full_name", p["name"])),
                role=str(_require(p, "role", where)),
                register=str(_require(p, "register", where)),
                style_notes=str(p.get("style_notes", "")),
                greetings=_greetings(p.get("greetings"), f"{where}.greetings"),
            )
            labels[language] = str(_require(p, "label", where))
        characters.append(Character(partner, labels))
    return Cast(tuple(characters), personas)


def load_catalogue(folder: Path, cast: Cast | None = None) -> Catalogue:
    """Parse situations.yaml and intents.yaml in `folder`, with the characters of `cast` (or of
    the folder's characters.yaml when None; then once per process). Every error names the file
    and the field that is wrong."""
    if cast is None:
        return _load_folder(Path(folder))
    return _load(Path(folder), cast)


@lru_cache(maxsize=8)
def _load_folder(folder: Path) -> Catalogue:
    return _load(folder, parse_cast(_read_yaml(folder, "characters.yaml")))


def _load(folder: Path, cast: Cast) -> Catalogue:
    characters, personas = cast.characters, cast.personas
    partners = tuple(c.id for c in characters)

    situations_raw = _read_yaml(folder, "situations.yaml")
    if not isinstance(situations_raw, list):
        raise CatalogueError("situations.yaml: expected a list")
    situations = []
    openers: dict[str, dict[Partner, dict[Language, str]]] = {}
    for s in situations_raw:
        where = f"situations.yaml:{s.get('id', '?') if isinstance(s, dict) else '?'}"
        time_of_day = s.get("time_of_day") if isinstance(s, dict) else None
        if time_of_day is not None and time_of_day not in TIMES_OF_DAY:
            raise CatalogueError(f"{where}.time_of_day: {time_of_day!r} is not one of {', '.join(TIMES_OF_DAY)}")
        situation = Situation(
            id=str(_require(s, "id", where)),
            title_ja=str(_require(s, "title_ja", where)),
            title_en=str(_require(s, "title_en", where)),
            description_ja=str(_require(s, "description_ja", where)),
            description_en=str(s.get("description_en", "")),
            time_of_day=time_of_day,
        )
        situations.append(situation)
        raw_openers = s.get("openers") or {}
        unknown = set(raw_openers) - set(partners)
        if unknown:
            raise CatalogueError(f"{where}.openers: no such character {sorted(unknown)} in characters.yaml")
        openers[situation.id] = {
            partner: {lang: str(text) for lang, text in raw_openers.get(partner, {}).items()} for partner in partners
        }
    intents = parse_intents(_read_yaml(folder, "intents.yaml"), partners)
    return Catalogue(folder, tuple(characters), tuple(situations), openers, personas, intents)
