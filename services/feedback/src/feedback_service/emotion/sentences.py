"""oseti's sentence splitter without bunkai.

oseti scores each sentence on its own, so where the boundaries fall changes the polarity. It splits
with bunkai's rule-based splitter, and importing bunkai costs ~700 MB of RSS: it loads janome, whose
dictionary is unpacked into Python objects, only to see whether a particle follows a boundary
(「すごい！と思った」 is one sentence). This module applies bunkai 1.5.7's rules (Bunkai() without a
model, as oseti builds it) with the MeCab tagger the analysers already share, whose ipadic is the
dictionary janome ships, so the splits are bunkai's:
- a boundary after runs of 。!?.！？． and the whitespace after them, face marks such as (^_^),
  marks such as （笑） and runs of …★☆♪, and emoji of the "Smileys & Emotion" and "Symbols" groups;
- none when a particle continues the sentence (「嬉しい！と思った」, 「え？って顔」);
- none at a dot between digits or letters (3.5, a.b) or in No.1;
- a line break is a boundary, and one right after a boundary goes with the sentence before it.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import MeCab

_PUNCTUATIONS = "。!?.！？．"
_FACE_SYMBOL = "!-/:-@\\[-`{-~！-／：-＠［-｀｛-～\u00a1-\u0fff\u1000-\u2fff\u4e00艸"
_FACE_CHAR = f"[{_FACE_SYMBOL}]"
_FACE_CHAR_OR_ALNUM = f"[a-zA-Z0-9ａ-ｚＡ-Ｚ０-９{_FACE_SYMBOL}]"
_FACEMARK = re.compile(f"{_FACE_CHAR}*[（(]{_FACE_CHAR_OR_ALNUM}*{_FACE_CHAR}+{_FACE_CHAR_OR_ALNUM}*[）)]{_FACE_CHAR}*")
_EMOTION_MARK = re.compile(
    r"[（(](笑|泣|汗|涙|怒|嬉|爆|驚|喜|悲|謎|恥|焦|苦|照|憂|笑い|わら|泣き|怒り|照れ)[)）]"
    f"|[…\u2605\u2606\u266a]+[{_PUNCTUATIONS}]?"
)
_PUNCTUATION_RUN = re.compile(f"[{_PUNCTUATIONS}]+\\s*")
_LINE_BREAKS = re.compile(r"[\n\s]*\n[\n\s]*")
_NUMERAL = re.compile(r"[〇一二三四五六七八九十百千万億兆京\d]")
_ALNUM = re.compile(r"[a-zA-Z0-9]")
_NO = re.compile(r"[nNｎＮ][oOｏＯ]")
# MeCab skips ipadic's blanks; janome makes each run a 記号,空白 word, and reads the words next to it in
# that context. 「　」 is the dictionary's 記号,空白 word, with the same context ids.
_BLANKS = " \t\n\v"
_BLANK_AS_WORD = str.maketrans(dict.fromkeys(_BLANKS, "\u3000"))
# Words after a boundary that continue the sentence (bunkai's MORPHEMES_AFTER_CANDIDATE).
_CONTINUING = (
    ("て",), ("の",), ("と",), ("って",), ("という",), ("に",), ("など",),
    ("くらい", "の"), ("くらい", "です"), ("くらい", "でし"), ("も", "あり"), ("ほど", "でし"),
)  # fmt: skip


class SentenceSplitter:
    """Callable like oseti's `self.bunkai`: text -> sentences, which join back into the text.
    Uses `tagger` (MeCab + ipadic), so callers serialise calls as for the tagger itself."""

    def __init__(self, tagger: Any) -> None:
        self._emoji_run, self._final_emoji = _emoji_tables()
        self._tagger = tagger

    def __call__(self, text: str) -> list[str]:
        if not text:
            return [text]  # as bunkai: one empty sentence
        spans = {(len(text) - 1, len(text))}
        for pattern in (_FACEMARK, _EMOTION_MARK, _PUNCTUATION_RUN):
            spans.update(match.span() for match in pattern.finditer(text))
        spans.update(m.span() for m in self._emoji_run.finditer(text) if self._final_emoji & set(m.group()))
        if any(end < len(text) for _, end in spans):
            words = self._words_by_position(text)
            spans = {(start, end) for start, end in spans if not _continues(text, end, words)}
        spans = {span for span in spans if not _inside_word(text, *span)}

        ends = Counter(end for _, end in spans)
        line_breaks = {match.start(): match.end() for match in _LINE_BREAKS.finditer(text)}
        boundaries = set(line_breaks.values())
        for end, count in ends.items():
            if end in line_breaks:
                if count > 1:  # bunkai moves only one of the boundaries there past the line break
                    boundaries.add(end)
            else:
                boundaries.add(end)
        sentences, start = [], 0
        for end in sorted(boundaries):
            sentences.append(text[start:end])
            start = end
        if start < len(text):
            sentences.append(text[start:])
        return sentences

    def _words_by_position(self, text: str) -> dict[int, str]:
        """Surface of the word covering each position, as bunkai numbers janome's words: janome reads
        text.strip(), and counts from its start."""
        text = text.strip()
        lattice = MeCab.Lattice()
        lattice.add_request_type(MeCab.MECAB_ALLOCATE_SENTENCE)
        lattice.set_sentence(text.translate(_BLANK_AS_WORD))
        offset = 0
        for char in text:
            if char in _BLANKS:  # its 「　」 (3 bytes) stays one 記号,空白 word, never joined to a symbol
                lattice.set_feature_constraint(offset, offset + 3, "記号,空白")
            offset += 3 if char in _BLANKS else len(char.encode())
        self._tagger.parse(lattice)
        words: dict[int, str] = {}
        start = 0
        node = lattice.bos_node()
        while node:
            words.update(dict.fromkeys(range(start, start + len(node.surface)), node.surface))
            start += len(node.surface)
            node = node.next
        return words


def _continues(text: str, end: int, words: dict[int, str]) -> bool:
    """A particle follows the boundary (past any line breaks), so the sentence goes on."""
    if end == len(text):
        return False
    while text[end] == "\n" and end + 1 < len(text):
        end += 1
    for rule in _CONTINUING:
        position = end
        for surface in rule:
            if words.get(position) != surface:
                break
            position += len(surface)
        else:
            return True
    return False


def _inside_word(text: str, start: int, end: int) -> bool:
    """A dot in 3.5, a.b or No.1 ends nothing."""
    if text[start] not in ".．":
        return False
    if 0 < start < len(text) - 1:
        before, after = text[start - 1], text[start + 1]
        if (_NUMERAL.match(before) and _NUMERAL.match(after)) or (_ALNUM.match(before) and _ALNUM.match(after)):
            return True
    return end - start == 1 and bool(_NO.match(text[start - 2 : start])) and end < len(text) and text[end].isdecimal()


# --- Emoji data ------------------------------------------------------------------------------------
# bunkai's emoji data comes from the packages emoji (which characters are emoji) and emojis (their
# groups). Importing both and searching emojis' list for each character took ~1.5 s of a cold start,
# so the two sets are kept precomputed in EMOJI_TABLE as code point ranges (a few KB):
# `python -m feedback_service.emotion.sentences` rewrites it from the installed packages, and
# tests/unit/test_emotion_sentences.py fails when it differs from what they give.
EMOJI_TABLE = Path(__file__).with_name("emoji_boundaries.json")
_FINAL_GROUPS = ("Smileys & Emotion", "Symbols")


def _ranges(chars: Iterable[str]) -> list[str]:
    """Sorted code points as "1F600-1F64F" ranges ("263A" for one)."""
    spans: list[list[int]] = []
    for code in sorted({ord(c) for c in chars}):
        if spans and spans[-1][1] == code - 1:
            spans[-1][1] = code
        else:
            spans.append([code, code])
    return [f"{a:X}" if a == b else f"{a:X}-{b:X}" for a, b in spans]


def _span_bounds(span: str) -> tuple[int, int]:
    first, _, last = span.partition("-")
    return int(first, 16), int(last or first, 16)


def build_emoji_table() -> dict[str, Any]:
    """The table from the installed emoji and emojis packages (slow: build time and tests only)."""
    from importlib.metadata import version

    import emoji
    import emojis  # type: ignore[import-untyped]

    def group(char: str) -> str | None:
        found = emojis.db.get_emoji_by_code(char) or emojis.db.get_emoji_by_code(char + "\ufe0f")
        return getattr(found, "category", None)

    singles = [char for char in emoji.EMOJI_DATA if len(char) == 1]
    return {
        "source": f"emoji {version('emoji')}, emojis {version('emojis')}",
        "single_code_point_emoji": _ranges(singles),
        "sentence_final_emoji": _ranges(c for c in singles if group(c) in _FINAL_GROUPS),
    }


@cache
def _emoji_tables() -> tuple[re.Pattern[str], frozenset[str]]:
    """(a run of single-code-point emoji, the emoji that end a sentence), from EMOJI_TABLE."""
    table = json.loads(EMOJI_TABLE.read_text(encoding="utf-8"))
    spans = [_span_bounds(span) for span in table["single_code_point_emoji"]]
    run = re.compile(
        "[" + "".join(re.escape(chr(a)) + ("" if a == b else "-" + re.escape(chr(b))) for a, b in spans) + "]+"
    )
    final = frozenset(
        chr(code)
        for span in table["sentence_final_emoji"]
        for code in range(_span_bounds(span)[0], _span_bounds(span)[1] + 1)
    )
    return run, final


def write_emoji_table(path: Path = EMOJI_TABLE) -> None:
    path.write_text(json.dumps(build_emoji_table(), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_emoji_table()
    print(f"wrote {EMOJI_TABLE}", file=sys.stderr)
