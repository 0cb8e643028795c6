"""Register and politeness of a learner's message towards the partner, with a better phrasing.

The verdict is one of ``ok``, ``too_casual``, ``rude``, ``too_formal`` or ``too_direct``. The partner (the chat's
"colleague", "senior", "boss", or a scenario role) maps to a level: ``peer``, ``senior`` or
``superior`` (register_rules.yaml). What is due per level:

- superior: です・ます throughout, 尊敬語 for what the superior does, 謙譲語 for the learner's
  requests and wishes; in English indirect requests (Could you…?) and softened refusals.
- senior: です・ます in Japanese; in English only bare commands are too blunt.
- peer: casual and polite are both fine; heavy keigo for a small thing is too formal.
- anyone: rude words, 「は？」, commands in 命令形, "shut up", are rude.
- too_direct: polite in form but blunt. To a superior, a refusal without a cushion word
  (「無理です。」「残業はできません。」, "I can't.") or leave announced instead of asked for
  (「明日休みます」, "I'm taking Friday off."); to a senior, a refusal with no cushion, no reason
  and no alternative. The better phrasing adds a cushion and softens the learner's own words:
  「残業はできません。」 → 「申し訳ありませんが、残業は難しいです。明日の朝でもよろしいでしょうか。」.
  Rude and too_casual come first; a cushioned refusal is ok and praised.

Every rule is data (register_rules.yaml); this module and its language parts apply them. The
better phrasing keeps the learner's own words and changes only what the rules name, so each
change can be explained: 「明日休みたいんだけど」 → 「明日お休みをいただきたいのですが、よろしいでしょうか。」.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from workplace_content import content

Verdict = Literal["ok", "too_casual", "rude", "too_formal", "too_direct"]
Level = Literal["peer", "senior", "superior"]
VERDICTS: tuple[str, ...] = ("ok", "too_casual", "rude", "too_formal", "too_direct")
LEVELS: tuple[str, ...] = ("peer", "senior", "superior")

RULES_PATH = Path(__file__).with_name("register_rules.yaml")


@dataclass(frozen=True)
class RegisterCheck:
    """What the checker found in one message."""

    verdict: Verdict
    language: str  # "ja" or "en"
    level: Level
    register_expected: str  # e.g. 「丁寧語・尊敬語・謙譲語」
    reasons: tuple[str, ...] = ()  # why it is not ok, most important first, one sentence each
    better_phrasing: str = ""  # the learner's message said in the expected register ("" when ok)
    strengths: tuple[str, ...] = ()  # what the message does well, register-wise
    changes: tuple[tuple[str, str], ...] = field(default=())  # (learner's words, suggested words)


def load_rules(path: Path = RULES_PATH) -> dict[str, Any]:
    rules = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(rules, dict) or not {"partners", "ja", "en", "expected"} <= rules.keys():
        raise ValueError(f"{path}: register rules need partners, expected, ja and en")
    for level in rules["partners"].values():
        if level not in LEVELS:
            raise ValueError(f"{path}: unknown level {level!r}; expected one of {LEVELS}")
    return rules


@functools.cache
def default_rules() -> dict[str, Any]:
    """register_rules.yaml, read once per process."""
    return load_rules(RULES_PATH)


# A catalogue character's relation to the learner -> the register level due. One may speak to a
# junior as to a peer; an outside party (customer, client, HR) is owed the superior's courtesy.
_RELATION_LEVEL: dict[str, Level] = {
    "superior": "superior",
    "outside": "superior",
    "senior": "senior",
    "peer": "peer",
    "junior": "peer",
}


def level_of(partner: str, rules: dict[str, Any]) -> Level:
    """The partner's level: a character of the catalogue by its relation to the learner, else
    the roles in the rules, anything else superior (an outside party or a role we do not know:
    polite is the safe register)."""
    characters = content().characters
    if partner in characters:
        return _RELATION_LEVEL[characters[partner].relation]
    key = (partner or "").strip().lower()
    level = rules["partners"].get(key) or rules["partners"].get((partner or "").strip())
    return level or rules.get("default_level", "superior")


_BRACKETED = r"[（(][^（）()]{0,24}[）)]"
_EMOJI = r"[\U0001F300-\U0001FAFF\u2600-\u27BF\uFE0F]"
_TRAILING_ASIDE_JA = re.compile(rf"(?:\s*(?:{_BRACKETED}|{_EMOJI}+|[wｗ]+|笑))+\s*$")
_TRAILING_ASIDE_EN = re.compile(rf"(?:\s*(?:{_BRACKETED}|{_EMOJI}+))+\s*$")


class RegisterChecker:
    """Checks a message against the register due to the partner. Thread-safe; the Japanese
    tagger (MeCab + IPAdic) opens on the first Japanese message."""

    def __init__(self, rules: dict[str, Any] | None = None) -> None:
        self.rules = rules or default_rules()
        self._lock = threading.Lock()

    @cached_property
    def _japanese(self) -> Any:
        from .register_ja import JapaneseRegister

        with self._lock:
            return JapaneseRegister(self.rules)

    @cached_property
    def _english(self) -> Any:
        from .register_en import EnglishRegister

        return EnglishRegister(self.rules)

    async def warm_up(self) -> None:
        """Open the tagger and read the rules now, not on the first message."""
        await asyncio.to_thread(lambda: (self._japanese, self._english))

    def check(self, text: str, language: str, partner: str) -> RegisterCheck:
        language = "en" if (language or "")[:2].lower() == "en" else "ja"
        level = level_of(partner, self.rules)
        expected = self.rules["expected"][language][level]
        text = (text or "").strip()
        # A closing aside (（笑）, an emoji, "(lol)") is not where the register is: check the words
        # before it, so 「送って（笑）」 is read as 「送って」.
        aside = _TRAILING_ASIDE_JA if language == "ja" else _TRAILING_ASIDE_EN
        text = aside.sub("", text).strip() or text
        if not text:
            return RegisterCheck("ok", language, level, expected)
        engine = self._english if language == "en" else self._japanese
        verdict, reasons, better, strengths, changes = engine.check(text, level, (partner or "").strip().lower())
        if verdict == "ok":
            better = ""
        return RegisterCheck(
            verdict=verdict,
            language=language,
            level=level,
            register_expected=expected,
            reasons=tuple(reasons),
            better_phrasing=better if better != text else "",
            strengths=tuple(strengths),
            changes=tuple(changes),
        )
