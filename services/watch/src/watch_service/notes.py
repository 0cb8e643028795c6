"""What to notice in a watched dialogue: the model learner's (and the learner's own) phrases
worth copying, and why.

Two sources. The scenario: the criteria a turn's move meets, in the scenario's own words.
And a small phrase check (data/phrases.yaml): cushion words, humble and honorific forms,
structure (the point first, a short reason, a concrete proposal, exact times and numbers),
empathy and thanks, each quoted in the clause it was said in. Plus the scenario's learning
points and a one- or two-sentence summary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml
from workplace_content import Scenario

from .conversation import DATA, MODEL_LEARNER, TurnView


@dataclass(frozen=True)
class Note:
    turn_index: int
    speaker_id: str
    phrase: str
    why: str
    kind: str
    turn_id: str = ""


@dataclass(frozen=True)
class PhraseRule:
    id: str
    kind: str
    patterns: dict[str, tuple[re.Pattern[str], ...]]
    why: dict[str, str]


_JA_CLAUSE_END = "。！？!?、"
# Where an English sentence ends: not after a title ("Mr. Suzuki").
_EN_END = re.compile(r"(?<!\bMr)(?<!\bMs)(?<!\bMrs)(?<!\bDr)[.!?]+(?=\s|$)")
PHRASE_MAX_JA = 40
PHRASE_MAX_EN_WORDS = 14


def clause_around(text: str, start: int, end: int, language: str) -> str:
    """The clause (ja) or sentence (en) a match is in, short enough to quote."""
    if language == "ja":
        left = max((text.rfind(mark, 0, start) for mark in _JA_CLAUSE_END), default=-1) + 1
        # The clause ends at the first boundary after the match (a match may hold a 、 itself).
        rights = [i for i in (text.find(mark, end) for mark in _JA_CLAUSE_END) if i >= 0]
        right = min(rights) if rights else len(text)
        clause = text[left:right].strip()
        if len(clause) > PHRASE_MAX_JA:
            clause = text[max(left, start - 10) : min(right, end + 20)].strip() + "…"
        return clause.strip("、 ")
    left = 0
    for end_mark in _EN_END.finditer(text):
        if end_mark.end() > start:
            right = end_mark.end()
            break
        left = end_mark.end()
    else:
        right = len(text)
    sentence = text[left:right].strip()
    if len(sentence.split()) <= PHRASE_MAX_EN_WORDS:
        return sentence.rstrip(",;")
    # Long: the part between the commas around the match.
    comma_before = text.rfind(",", left, start)
    comma_after = text.find(",", end, right)
    part = text[comma_before + 1 if comma_before >= 0 else left : comma_after if comma_after >= 0 else right].strip()
    words = part.split()
    if len(words) <= PHRASE_MAX_EN_WORDS:
        return part.rstrip(",;")
    before = len(text[left:start].split()) - len(text[left : comma_before + 1 if comma_before >= 0 else left].split())
    first = max(0, before - 2)
    return " ".join(words[first : first + PHRASE_MAX_EN_WORDS - 2]).rstrip(",;") + "…"


class PhraseChecker:
    def __init__(self, rules: Sequence[PhraseRule], per_turn: int = 3) -> None:
        self.rules = tuple(rules)
        self.per_turn = per_turn

    def phrases(self, text: str, language: str) -> list[tuple[str, str, str]]:
        """(phrase, why, kind) for the phrases worth copying in a text, at most per_turn."""
        found: list[tuple[str, str, str]] = []
        seen: set[str] = set()
        for rule in self.rules:
            for pattern in rule.patterns.get(language, ()):
                match = pattern.search(text)
                if match is None:
                    continue
                phrase = clause_around(text, match.start(), match.end(), language)
                if phrase and phrase not in seen:
                    seen.add(phrase)
                    found.append((phrase, rule.why[language], rule.kind))
                break  # one note per rule
            if len(found) >= self.per_turn:
                break
        return found


@lru_cache(maxsize=2)
def load_phrase_checker(path: Path = DATA / "phrases.yaml") -> PhraseChecker:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    rules = []
    for item in raw["rules"]:
        patterns = {
            "ja": tuple(re.compile(p) for p in item.get("ja", ())),
            "en": tuple(re.compile(p, re.IGNORECASE) for p in item.get("en", ())),
        }
        rules.append(PhraseRule(item["id"], item["kind"], patterns, dict(item["why"])))
    return PhraseChecker(rules, int(raw.get("per_turn", 3)))


def _criteria_note(scenario: Scenario, move: str, language: str) -> tuple[str, list[str]] | None:
    found = scenario.moves.get(move)
    if found is None or not found.meets or found.misses:
        return None
    texts = [c.text.get(language) for c in scenario.criteria if c.id in found.meets]
    if language == "ja":
        why = "この場面のポイント" + "".join(f"「{t}」" for t in texts) + "ができています。"
    else:
        why = "It does what this scene asks for: " + "; ".join(t[:1].lower() + t[1:] for t in texts) + "."
    return why, [c.id for c in scenario.criteria if c.id in found.meets]


@dataclass(frozen=True)
class WatchNotes:
    notes: list[Note]
    learning_points: list[str]
    summary: str


def build_notes(
    scenario: Scenario,
    turns: Sequence[tuple[int, str, TurnView]],
    *,
    language: str,
    learner_name: str,
    checker: PhraseChecker | None = None,
) -> WatchNotes:
    """Notes for the model learner's turns and the learner's own interventions: (turn index,
    turn id, turn) in order."""
    checker = checker or load_phrase_checker()
    notes: list[Note] = []
    met: list[str] = []
    for index, turn_id, turn in turns:
        if turn.speaker_id != MODEL_LEARNER and not turn.intervention:
            continue
        criteria = _criteria_note(scenario, turn.move, language)
        if criteria is not None:
            why, ids = criteria
            notes.append(Note(index, turn.speaker_id, turn.text, why, "criterion", turn_id))
            if not turn.intervention:
                met += [i for i in ids if i not in met]
        for phrase, why, kind in checker.phrases(turn.text, language):
            notes.append(Note(index, turn.speaker_id, phrase, why, kind, turn_id))
    return WatchNotes(
        notes,
        list(scenario.learning_points.get(language)),
        summary_of(scenario, met, notes, language=language, learner_name=learner_name),
    )


def summary_of(
    scenario: Scenario, met: Sequence[str], notes: Sequence[Note], *, language: str, learner_name: str
) -> str:
    title = scenario.title.get(language)
    texts = [c.text.get(language) for c in scenario.criteria if c.id in met][:3]
    phrase = next((n.phrase for n in notes if n.kind != "criterion" and n.speaker_id == MODEL_LEARNER), "")
    if language == "ja":
        if not texts:
            return f"「{title}」の会話はまだ始まったばかりです。続きを見て、お手本の言い方を確かめましょう。"
        first = f"「{title}」のお手本では、{learner_name}さんが" + "".join(f"「{t}」" for t in texts)
        first += "といったポイントを押さえていました。"
        return first + (f"特に「{phrase}」のような言い方は、そのまま使えます。" if phrase else "")
    if not texts:
        return f'The conversation "{title}" has only just begun. Watch on to hear how the model answer goes.'
    points = "; ".join(t[:1].lower() + t[1:] for t in texts)
    first = f'In this model of "{title}", {learner_name} hits the key points: {points}.'
    return first + (f' Phrases like "{phrase}" are worth borrowing as they are.' if phrase else "")
