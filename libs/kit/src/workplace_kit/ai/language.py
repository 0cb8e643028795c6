"""Tell Japanese from English in a learner's message, for choosing the reply language.

The platform only speaks Japanese and English, so a character-class count is enough and
needs no model. Japanese characters carry more meaning each than Latin letters, so they are
weighted up: "今日はMTGがあります" is Japanese, "I had 寿司 for lunch" is English.
"""

from __future__ import annotations

from typing import Literal

Language = Literal["ja", "en"]

# One kana or kanji is worth about three Latin letters of content.
_JAPANESE_CHAR_WEIGHT = 3


def _is_japanese_char(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF  # hiragana, katakana (incl. ー)
        or 0x31F0 <= code <= 0x31FF  # katakana phonetic extensions
        or 0x3400 <= code <= 0x4DBF  # CJK extension A
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
        or 0xFF66 <= code <= 0xFF9F  # half-width katakana
        or ch in "々〆〇"
    )


def _is_latin_letter(ch: str) -> bool:
    code = ord(ch)
    return ("a" <= ch.lower() <= "z") or (0xFF21 <= code <= 0xFF3A) or (0xFF41 <= code <= 0xFF5A)


def detect_language(text: str) -> Language:
    """Return "ja" or "en". Text with no letters at all (empty, digits, emoji) counts as "ja",
    the platform's default language."""
    japanese = sum(1 for ch in text if _is_japanese_char(ch))
    latin = sum(1 for ch in text if _is_latin_letter(ch))
    if japanese == 0 and latin == 0:
        return "ja"
    return "ja" if japanese * _JAPANESE_CHAR_WEIGHT >= latin else "en"
