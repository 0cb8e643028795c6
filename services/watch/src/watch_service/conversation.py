"""The model conversation a watched dialogue plays, from the scenario's own authored content.

Speaker "a" is the scenario's character, speaker "b" a model learner (a catalogue character
standing in the learner's role, data/model_learners.yaml). Offline, the conversation is the
scenario played well: a opens with the scenario's opening line; b says an example line of
the next good move of the scenario's plan (data/model_plans.yaml, else the moves that meet
criteria and miss none, in file order, then the move that ends the scenario); a answers with
that move's reply; and so on until a has answered the ending move. Lines are picked
deterministically from the dialogue's id, so a dialogue reads the same every time it is
replayed and tests are stable.

When the learner steps in, a answers the learner's line as the scenario's script reads it
(the domain asks the script engine), and b takes the learner's words up with a short bridge
(data/bridges.yaml) before its own next line. Everything here is pure: no I/O but reading the
data files once.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from workplace_content import Character, ContentCatalogue, Scenario

DATA = Path(__file__).parent / "data"
SPEAKERS = ("a", "b")
CHARACTER, MODEL_LEARNER = SPEAKERS
LEARNER = ""  # the speaker id of the learner's own turns (interventions)


@dataclass(frozen=True)
class Speaker:
    id: str
    display_name: str
    persona: str
    character_id: str


@dataclass(frozen=True)
class TurnView:
    """What the conversation needs to know of a stored turn."""

    speaker_id: str
    text: str
    intervention: bool = False
    move: str = ""
    addressed_to: str = ""


@dataclass(frozen=True)
class Line:
    """A line to say: its text, the scenario move it makes (b) or answers (a), and whether
    saying it ends the scenario."""

    text: str
    move: str = ""
    ends: bool = False


def seeded(*parts: object) -> random.Random:
    """A random generator that depends only on `parts` (the dialogue id, the turn index)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def other(speaker_id: str) -> str:
    return MODEL_LEARNER if speaker_id == CHARACTER else CHARACTER


def first_speaker(scenario: Scenario) -> str:
    """The character opens when the scenario has an opening line; else the model learner."""
    return CHARACTER if scenario.opening is not None else MODEL_LEARNER


def next_speaker(turns: Sequence[TurnView], first: str) -> str:
    """Who says the next turn: the speakers alternate; an intervention is answered first by
    the speaker it was addressed to (the character unless said otherwise)."""
    if not turns:
        return first
    last = turns[-1]
    if last.intervention:
        return last.addressed_to or CHARACTER
    return other(last.speaker_id)


def pending_intervention(turns: Sequence[TurnView], speaker_id: str) -> TurnView | None:
    """The learner's latest intervention that `speaker_id` has not spoken since (None: none)."""
    for turn in reversed(turns):
        if turn.intervention:
            return turn
        if turn.speaker_id == speaker_id:
            return None
    return None


# ------------------------------------------------------------------------------ the cast


@dataclass(frozen=True)
class CastRules:
    by_relation: dict[str, tuple[str, ...]]
    role_suffix: dict[str, str]


@lru_cache(maxsize=4)
def load_cast_rules(path: Path = DATA / "model_learners.yaml") -> CastRules:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return CastRules(
        by_relation={k: tuple(v) for k, v in raw["by_relation"].items()},
        role_suffix=dict(raw["role_suffix"]),
    )


def _scenario_texts(scenario: Scenario, language: str) -> str:
    parts: list[str] = [
        scenario.situation.get(language),
        scenario.learner_role.get(language),
        scenario.description.get(language),
        scenario.goal.get(language),
        scenario.character_note.get(language),
        scenario.closing.get(language),
        *scenario.fallback.get(language),
    ]
    if scenario.opening is not None:
        parts.append(scenario.opening.get(language))
    for move in scenario.moves.values():
        parts.extend(move.examples.get(language))
        parts.extend(move.replies.get(language))
    return "\n".join(parts)


def model_learner(scenario: Scenario, content: ContentCatalogue, rules: CastRules | None = None) -> Character:
    """The catalogue character who plays the learner's part in this scenario."""
    rules = rules or load_cast_rules()
    relation = content.character(scenario.character).relation
    texts = {language: _scenario_texts(scenario, language) for language in ("ja", "en")}
    for character_id in rules.by_relation[relation]:
        if character_id == scenario.character:
            continue
        character = content.character(character_id)
        if any(character.persona(language).name in texts[language] for language in texts):
            continue  # the scenario talks about them: they cannot also be the one talking
        return character
    raise LookupError(f"no model learner fits scenario {scenario.id!r} (data/model_learners.yaml)")


def speakers_for(
    scenario: Scenario, content: ContentCatalogue, language: str, rules: CastRules | None = None
) -> tuple[Speaker, Speaker]:
    rules = rules or load_cast_rules()
    character = content.character(scenario.character)
    persona = character.persona(language)
    separator = "。" if language == "ja" else ". "
    role = persona.role.rstrip("。.")
    a = Speaker(CHARACTER, persona.full_name, f"{role}{separator}{scenario.character_note.get(language)}", character.id)
    learner = model_learner(scenario, content, rules)
    b = Speaker(
        MODEL_LEARNER,
        learner.persona(language).full_name,
        f"{scenario.learner_role.get(language)}{rules.role_suffix.get(language, '')}",
        learner.id,
    )
    return a, b


# ------------------------------------------------------------------------------ the plan


def _good(scenario: Scenario, move_id: str) -> bool:
    move = scenario.moves[move_id]
    return bool(move.meets) and not move.misses


def default_plan(scenario: Scenario) -> tuple[str, ...]:
    ending = [m for m in scenario.moves if scenario.moves[m].ends and _good(scenario, m)]
    if not ending:  # every scenario has one (the content tests say so); the fullest ending else
        ending = sorted(
            (m for m in scenario.moves if scenario.moves[m].ends), key=lambda m: -len(scenario.moves[m].meets)
        )
    steps = [m for m in scenario.moves if _good(scenario, m) and not scenario.moves[m].ends]
    return (*steps, ending[0])


@lru_cache(maxsize=4)
def load_plans(path: Path = DATA / "model_plans.yaml") -> dict[str, tuple[str, ...]]:
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {scenario_id: tuple(moves) for scenario_id, moves in (raw.get("plans") or {}).items()}


def plan_problems(scenario: Scenario, plan: Sequence[str]) -> list[str]:
    """What is wrong with a plan for this scenario (empty: nothing)."""
    problems = [f"{scenario.id}: no move {m!r}" for m in plan if m not in scenario.moves]
    if problems:
        return problems
    if not plan or not scenario.moves[plan[-1]].ends:
        problems.append(f"{scenario.id}: the plan's last move must end the scenario")
    problems += [
        f"{scenario.id}: {m!r} ends the scenario before the plan does" for m in plan[:-1] if scenario.moves[m].ends
    ]
    problems += [f"{scenario.id}: {m!r} misses a criterion" for m in plan if scenario.moves[m].misses]
    if len(set(plan)) != len(plan):
        problems.append(f"{scenario.id}: a move is listed twice")
    return problems


def plan_for(scenario: Scenario, plans: dict[str, tuple[str, ...]] | None = None) -> tuple[str, ...]:
    plans = load_plans() if plans is None else plans
    chosen = plans.get(scenario.id)
    if chosen and not plan_problems(scenario, chosen):
        return chosen
    return default_plan(scenario)


# ------------------------------------------------------------------------------ bridges

_JA_SENTENCE = re.compile(r"[^。！？!?]+")
_EN_SENTENCE = re.compile(r".+?(?:[.!?](?=\s|$)|$)", re.S)
_QUOTE_MARKS = str.maketrans("", "", '「」『』"“”')
QUOTE_JA_CHARS = 28
_JA_PARTICLES = "てでがをにはと"
# An opening apology or filler that a quote can leave out (「申し訳ありません、」).
_JA_OPENER = re.compile(r"^(申し訳|すみません|恐れ入り|大変申し訳|失礼|あの|えっと|ごめん)")
QUOTE_EN_WORDS = 8


def quote_of(text: str, language: str) -> str:
    """The start of what the learner said, short enough to quote in a line: the first
    sentence, cut at a clause boundary (or a word) when it is long."""
    text = " ".join(text.translate(_QUOTE_MARKS).split())
    if language == "ja":
        first = next((s.strip() for s in _JA_SENTENCE.findall(text) if s.strip()), text)
        head, comma, rest = first.partition("、")
        if len(first) > QUOTE_JA_CHARS and comma and rest and _JA_OPENER.match(head):
            first = rest  # the learner's point, not the apology in front of it
        if len(first) > QUOTE_JA_CHARS:
            # Cut at a clause (、), else after a particle, never in the middle of a word.
            cut = first.rfind("、", 0, QUOTE_JA_CHARS)
            if cut < 6:
                cut = max((i + 1 for i, ch in enumerate(first[: QUOTE_JA_CHARS - 1]) if ch in _JA_PARTICLES), default=0)
            first = first[:cut].rstrip("、") + "…" if cut >= 6 else first[: QUOTE_JA_CHARS - 2] + "…"
        return first.strip("、。 ,.")
    match = _EN_SENTENCE.match(text)
    first = (match.group(0) if match else text).strip()
    words = first.split()
    if len(words) > QUOTE_EN_WORDS:
        first = " ".join(words[: QUOTE_EN_WORDS - 1]).rstrip(",;:") + "…"
    return first.rstrip(" .!?,;:")


@dataclass(frozen=True)
class Bridges:
    """The model learner's lines that take up the learner's words, by kind and language."""

    lines: dict[str, dict[str, tuple[str, ...]]]

    @staticmethod
    def kind_of(scenario: Scenario, move: str) -> str:
        found = scenario.moves.get(move)
        if found is None:
            return "other"
        if found.misses:
            return "poor"
        return "good" if found.meets else "other"

    def line(self, kind: str, quote: str, language: str, rng: random.Random) -> str:
        variants = self.lines[kind][language]
        return rng.choice(variants).format(quote=quote)


@lru_cache(maxsize=4)
def load_bridges(path: Path = DATA / "bridges.yaml") -> Bridges:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Bridges({kind: {lang: tuple(lines) for lang, lines in by_lang.items()} for kind, by_lang in raw.items()})


_JA_END = tuple("。！？!?…」』）)")
_EN_END = tuple(".!?…\"'”)")


def finished_sentence(text: str, language: str) -> str:
    """The text with a closing full stop when it has none: a learner's example line is written
    without one (「…19時には出ないといけないんです」), a line in a transcript reads better with it."""
    text = text.strip()
    if not text or text.endswith(_JA_END if language == "ja" else _EN_END):
        return text
    return text + ("。" if language == "ja" else ".")


@dataclass(frozen=True)
class Closings:
    """The model learner's closing lines, by register and language."""

    lines: dict[str, dict[str, tuple[str, ...]]]
    registers: dict[str, str]

    def line(self, relation: str, language: str, rng: random.Random) -> str:
        return rng.choice(self.lines[self.registers.get(relation, "polite")][language])


@lru_cache(maxsize=4)
def load_closings(path: Path = DATA / "closings.yaml") -> Closings:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    registers = dict(raw.pop("registers"))
    return Closings({k: {lang: tuple(v) for lang, v in by.items()} for k, by in raw.items()}, registers)


def joined(first: str, second: str, language: str) -> str:
    if not first:
        return second
    return f"{first}{'' if language == 'ja' else ' '}{second}"


# ------------------------------------------------------------------------------ the script


@dataclass
class ModelConversation:
    """The offline model conversation of one scenario (the learner's intervention aside,
    which the scenario's script engine reads)."""

    scenario: Scenario
    plan: tuple[str, ...]
    bridges: Bridges = field(default_factory=load_bridges)
    closings: Closings = field(default_factory=load_closings)
    # How many of a move's example lines the model learner picks from (seeded by the dialogue
    # id and turn). One: the first example is the full answer the character's replies were
    # written for; a later one can leave a reply answering details nobody said (「坂本様からですか」
    # after a line about the section manager).
    example_choices: int = 1

    @classmethod
    def of(cls, scenario: Scenario) -> ModelConversation:
        return cls(scenario, plan_for(scenario))

    @staticmethod
    def answered(turns: Iterable[TurnView]) -> set[str]:
        """The moves the character has answered so far."""
        return {t.move for t in turns if t.speaker_id == CHARACTER and t.move}

    @staticmethod
    def said(turns: Iterable[TurnView]) -> set[str]:
        """The moves the model learner has made so far (answered or not)."""
        return {t.move for t in turns if t.speaker_id == MODEL_LEARNER and t.move}

    def next_move(self, turns: Sequence[TurnView]) -> str:
        """The plan's next step: the first move neither made nor answered yet; when the learner
        stepped in before the character answered a step, that step again (in other words)."""
        answered, said = self.answered(turns), self.said(turns)
        fresh = (m for m in self.plan if m not in answered and m not in said)
        return next(fresh, next((m for m in self.plan if m not in answered), self.plan[-1]))

    def closed(self, turns: Sequence[TurnView]) -> bool:
        """The character has answered a move that ends the scenario: the model learner closes."""
        return any(self.ends(t.move) for t in turns if t.speaker_id == CHARACTER)

    def closing(self, relation: str, language: str, rng: random.Random) -> Line:
        return Line(self.closings.line(relation, language, rng), "", True)

    def ends(self, move: str) -> bool:
        found = self.scenario.moves.get(move)
        return found is not None and found.ends

    def opening(self, language: str) -> Line | None:
        if self.scenario.opening is None:
            return None
        return Line(self.scenario.opening.get(language))

    def reply_to(self, move: str, turns: Sequence[TurnView], language: str) -> Line:
        """The character's authored reply to a move: a move made again gets its next line."""
        replies = self.scenario.moves[move].replies.get(language)
        said = sum(1 for t in turns if t.speaker_id == CHARACTER and t.move == move)
        return Line(replies[said % len(replies)], move, self.ends(move))

    def learner_line(self, turns: Sequence[TurnView], language: str, rng: random.Random) -> Line:
        """The model learner's next line: an example of the plan's next move."""
        move = self.next_move(turns)
        examples = [finished_sentence(e, language) for e in self.scenario.moves[move].examples.get(language)]
        before = {t.text for t in turns if t.speaker_id == MODEL_LEARNER}
        unused = [e for e in examples if not any(e in said for said in before)] or examples
        choices = [e for e in examples[: self.example_choices] if e in unused] or unused[:1]
        return Line(rng.choice(choices), move)

    def bridge(self, intervention: TurnView, language: str, rng: random.Random) -> str:
        kind = self.bridges.kind_of(self.scenario, intervention.move)
        return self.bridges.line(kind, quote_of(intervention.text, language), language, rng)
