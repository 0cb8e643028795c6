"""A compact, hand-written English emotion lexicon for the canonical emotions.

Why not the NRC Emotion Lexicon (NRCLex): its licence allows research use only, each word maps to
several emotions at once (e.g. "happy" -> anticipation, joy, trust), and common words are missing from
the packaged list (e.g. "sad", "embarrassed", "relieved"). This list holds only words and phrases that
name or plainly express a feeling, with their inflected forms written out (no lemmatiser needed), and
leaves evaluative words ("great", "terrible") to VADER's polarity.
"""

from __future__ import annotations

import re
from collections import Counter

# Compact on purpose: one block per emotion reads better than one word per line.
# fmt: off
_LEXICON: dict[str, tuple[str, ...]] = {
    "joy": (
        "happy", "happier", "happiest", "happily", "happiness", "glad", "gladly", "pleased", "delighted",
        "delightful", "joy", "joyful", "cheerful", "enjoy", "enjoyed", "enjoying", "enjoys", "enjoyable", "fun",
        "proud", "celebrate", "celebrated", "celebrating", "smile", "smiled", "smiling", "laugh", "laughed",
        "laughing", "overjoyed", "satisfied",
    ),
    "anger": (
        "angry", "angrier", "angrily", "anger", "angered", "mad", "furious", "fury", "rage", "raging", "outraged",
        "outrageous", "annoyed", "annoying", "annoyance", "irritated", "irritating", "irritation", "frustrated",
        "frustrating", "frustration", "infuriated", "infuriating", "livid", "resent", "resented", "resentful",
        "resentment", "pissed", "pissed off", "hostile", "indignant",
    ),
    "sadness": (
        "sad", "sadder", "saddest", "sadly", "sadness", "unhappy", "depressed", "depressing", "disappointed",
        "disappointing", "disappointment", "upset", "miserable", "heartbroken", "gloomy", "lonely", "regret",
        "regrets", "regretted", "regretful", "cry", "cried", "crying", "tears", "grief", "grieving", "gutted",
        "discouraged", "hopeless", "let down", "down in the dumps", "hurt", "hurts", "heartbreaking",
    ),
    "fear": (
        "afraid", "scared", "scary", "frightened", "frightening", "fear", "fearful", "fears", "worried", "worry",
        "worrying", "worries", "anxious", "anxiety", "nervous", "nervously", "uneasy", "concerned", "panic",
        "panicked", "panicking", "terrified", "dread", "dreading", "stressed", "stressful", "overwhelmed",
        "insecure", "freaked out", "freaking out",
    ),
    "shame": (
        "ashamed", "embarrassed", "embarrassing", "embarrassment", "humiliated", "humiliating", "mortified", "shy",
        "awkward", "guilty",
    ),
    "liking": (
        "love", "loved", "loving", "adore", "adored", "fond", "fondness", "appreciate", "appreciated",
        "appreciation", "grateful", "gratitude", "thankful", "admire", "admired", "admiration", "fan of",
    ),
    "dislike": (
        "hate", "hated", "hates", "hating", "dislike", "disliked", "dislikes", "disgusted", "disgusting", "gross",
        "reluctant", "unwilling", "bored", "boring", "fed up", "sick of", "tired of", "can't stand", "cannot stand",
    ),
    "excitement": (
        "excited", "exciting", "excitement", "thrilled", "thrilling", "eager", "eagerly", "pumped", "enthusiastic",
        "enthusiasm", "energized", "energised", "motivated", "can't wait", "cannot wait", "looking forward",
    ),
    "relief": (
        "relieved", "relief", "reassured", "reassuring", "comforted", "phew", "thank goodness", "at ease",
        "peace of mind",
    ),
    "surprise": (
        "surprised", "surprising", "surprise", "shocked", "shocking", "astonished", "astonishing", "stunned",
        "amazed", "wow", "unexpected", "unexpectedly",
    ),
}
# fmt: on

# A negator within this many words before an emotion word cancels it ("not happy" is not joy; VADER
# already turns the polarity around, so the emotion is simply not counted).
NEGATION_WINDOW = 3
_NEGATORS = frozenset(
    {"not", "no", "never", "hardly", "barely", "without", "nothing", "nobody", "neither", "nor", "cannot"}
)
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)*|[.,!?;:]")
_CLAUSE_BREAKS = frozenset(".,!?;:")


def _tokenise(text: str) -> list[str]:
    # Curly apostrophes are common in typed text; fold them so "can’t" matches "can't".
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def _build_entries() -> dict[tuple[str, ...], str]:
    entries: dict[tuple[str, ...], str] = {}
    for emotion, expressions in _LEXICON.items():
        for expression in expressions:
            key = tuple(_tokenise(expression))
            if key in entries:
                raise ValueError(f"{expression!r} is listed under both {entries[key]} and {emotion}")
            entries[key] = emotion
    return entries


_ENTRIES = _build_entries()
_LONGEST = max(len(key) for key in _ENTRIES)


def _is_negator(token: str) -> bool:
    return token in _NEGATORS or token.endswith("n't")


def count_emotion_expressions(text: str) -> Counter[str]:
    """How many expressions of each canonical emotion the text contains, negated ones left out."""
    tokens = _tokenise(text)
    counts: Counter[str] = Counter()
    index = 0
    while index < len(tokens):
        # Longest phrase first, so "can't wait" is read as one expression, not as a negator.
        for length in range(min(_LONGEST, len(tokens) - index), 0, -1):
            emotion = _ENTRIES.get(tuple(tokens[index : index + length]))
            if emotion is not None:
                break
        else:
            index += 1
            continue
        if not _negated(tokens, index):
            counts[emotion] += 1
        index += length
    return counts


def _negated(tokens: list[str], index: int) -> bool:
    for token in reversed(tokens[max(0, index - NEGATION_WINDOW) : index]):
        if token in _CLAUSE_BREAKS:
            return False
        if _is_negator(token):
            return True
    return False
