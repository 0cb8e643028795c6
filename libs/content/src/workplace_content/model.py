"""The shape of the authored catalogue: characters and scenarios, both languages in each file.

Every file is validated against these models when it is loaded (pydantic, unknown fields
refused), and a loading error names the file and the field that is wrong, e.g.
``scenarios/declining/decline-overtime.yaml: moves.refuse_flatly.replies.en: Field required``.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Difficulty = Literal["beginner", "intermediate", "advanced"]
TimeOfDay = Literal["morning", "daytime", "evening"]
# A scenario may run at most this many learner turns; the character then closes the talk.
MAX_TURNS_LIMIT = 20
_ID = r"^[a-z][a-z0-9_-]{1,62}$"
# Moves every scenario script has without authoring them (workplace_content.dialogue).
RESERVED_MOVES = frozenset({"fallback", "off_topic"})


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Text(Strict):
    """One text in both languages."""

    ja: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def get(self, language: str) -> str:
        return self.en if language == "en" else self.ja


class Texts(Strict):
    """A list of texts per language (the two lists need not be translations of each other)."""

    ja: tuple[str, ...] = Field(min_length=1)
    en: tuple[str, ...] = Field(min_length=1)

    def get(self, language: str) -> tuple[str, ...]:
        return self.en if language == "en" else self.ja

    @field_validator("ja", "en")
    @classmethod
    def _no_blank(cls, texts: tuple[str, ...]) -> tuple[str, ...]:
        if any(not t.strip() for t in texts):
            raise ValueError("empty text in the list")
        return tuple(t.strip() for t in texts)


# ------------------------------------------------------------------------------ characters


class Voice(Strict):
    """What the text-to-speech service needs to pick a fitting voice."""

    gender: Literal["female", "male"]
    age: Literal["20s", "30s", "40s", "50s", "60s"]
    tone: Literal["bright", "calm", "firm", "gentle", "brisk", "warm"]


class Greetings(Strict):
    morning: str = Field(min_length=1)
    daytime: str = Field(min_length=1)
    evening: str = Field(min_length=1)


class Persona(Strict):
    """A character in one language."""

    label: str = Field(min_length=1)  # what a picker shows: 上司, Boss
    name: str = Field(min_length=1)  # how they are called in lines: 山本
    full_name: str = Field(min_length=1)
    role: str = Field(min_length=1)
    personality: str = Field(min_length=1)
    speaking_style: str = Field(min_length=1)  # how they speak (for writers and for Gemini's instruction)
    style_notes: str = ""
    greetings: Greetings


class Character(Strict):
    id: str = Field(pattern=_ID)  # the file name, without .yaml
    # Where the character stands to the learner: the register the learner owes them (the
    # feedback service checks politeness against it; a junior may be spoken to casually).
    relation: Literal["superior", "senior", "peer", "junior", "outside"]
    voice: Voice
    ja: Persona
    en: Persona

    def persona(self, language: str) -> Persona:
        return self.en if language == "en" else self.ja


# ------------------------------------------------------------------------------- scenarios


class Category(Strict):
    id: str = Field(pattern=_ID)
    name: Text
    description: Text
    # Its scenarios ask for the learner's explicit consent before they start (harassment set).
    needs_consent: bool = False
    # Chit-chat (the weather, lunch, the weekend) is part of its scenarios rather than a change of
    # subject the character steers back from (small talk).
    chit_chat_fits: bool = False


class Criterion(Strict):
    """What a good response does in this scenario; the coaching report scores each."""

    id: str = Field(pattern=_ID)
    text: Text


class Move(Strict):
    """Something the learner may do in the scenario, and how the character answers it.

    `examples` are what a learner might say (recognised by meaning), `keywords` words that
    mark the move. `replies` are the character's lines; a repeated move gets the next unused
    line (so later lines are follow-ups). `meets` / `misses` name the criteria the move shows
    or fails (read by the coaching report). `ends`: the character's reply closes the scenario.
    """

    examples: Texts
    keywords: Texts | None = None
    replies: Texts
    meets: tuple[str, ...] = ()
    misses: tuple[str, ...] = ()
    ends: bool = False

    @model_validator(mode="after")
    def _enough_examples(self) -> Move:
        for language in ("ja", "en"):
            if len(self.examples.get(language)) < 3:
                raise ValueError(f"examples.{language}: at least 3 examples, so the move can be recognised")
        return self


class Consent(Strict):
    """Harassment-prevention scenarios: what the learner agrees to before starting, and where
    to get help (shown before and after)."""

    notice: Text
    help: Text


class Scenario(Strict):
    id: str = Field(pattern=_ID)  # the file name, without .yaml
    category: str = Field(pattern=_ID)
    difficulty: Difficulty
    # The learner plays the senior or the boss (the character is their junior).
    reverse_role: bool = False
    title: Text
    description: Text
    situation: Text
    learner_role: Text
    goal: Text
    character: str = Field(pattern=_ID)  # a file in characters/
    # How the character behaves in this scenario, on top of the character's usual personality.
    character_note: Text
    time_of_day: TimeOfDay | None = None
    estimated_minutes: int = Field(ge=1, le=60)
    tags: Texts
    learning_points: Texts
    criteria: tuple[Criterion, ...] = Field(min_length=2)
    opening: Text | None = None  # the character's first line; None: the learner speaks first
    moves: dict[str, Move] = Field(min_length=4)
    # The character's kind, in-character lines when no move fits (never "I don't understand").
    fallback: Texts
    # What the character says when the talk reaches max_turns without a natural end.
    closing: Text
    max_turns: int = Field(8, ge=2, le=MAX_TURNS_LIMIT)
    consent: Consent | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        criteria = {c.id for c in self.criteria}
        if len(criteria) != len(self.criteria):
            raise ValueError("criteria: two criteria share an id")
        for move_id, move in self.moves.items():
            if move_id in RESERVED_MOVES:
                raise ValueError(f"moves.{move_id}: the name is reserved (the engine's own moves)")
            if not re.match(_ID, move_id):
                raise ValueError(f"moves.{move_id}: a move id is lower case letters, digits, _ or -")
            for name in ("meets", "misses"):
                for criterion in getattr(move, name):
                    if criterion not in criteria:
                        raise ValueError(
                            f"moves.{move_id}.{name}: no criterion {criterion!r} (known: {', '.join(sorted(criteria))})"
                        )
        if not any(move.ends for move in self.moves.values()):
            raise ValueError("moves: at least one move must have `ends: true` (the scenario's natural end)")
        if not any(move.meets for move in self.moves.values()):
            raise ValueError("moves: no move meets any criterion")
        return self
