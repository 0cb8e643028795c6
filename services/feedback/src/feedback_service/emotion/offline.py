"""Offline emotion analysis: ML-Ask + oseti for Japanese, VADER + a small emotion lexicon for English.

Both analysers return the canonical labels of types.EMOTIONS. Scores are each emotion's share of the
emotion expressions found (so they add up to 1); polarity is in [-1, 1]; no expression found means
"neutral". Keyword matchers misread words that only intensify (ML-Ask files 「大変」 under iya even in
「大変助かりました」), so two rules guard the result:
- Japanese adjectival nouns used as degree adverbs are removed before analysis
  (JapaneseEmotionAnalyser._without_degree_modifiers);
- an emotion whose valence contradicts clear polarity evidence from the other engine (oseti, VADER) is
  taken as a misreading and dropped, so it can never be the dominant emotion
  (_drop_contradicted_emotions).
On top of the engines sits the cue layer (cues.py, cues.yaml): workplace formulas the word lists cannot
read (a polite refusal, a routine apology, thanks, sarcasm after a complaint, rudeness) and everyday
workplace words the dictionaries wrongly score (明日, 議事録, "please"). Cues work per sentence: a
refusal or a routine apology mutes its sentence's dictionary words, thanks and rudeness bound its
polarity and add their emotion."""

from __future__ import annotations

import asyncio
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from workplace_kit.ai.language import detect_language

from .cues import CueBook, Reading, Sentence, interpret, load_cues
from .english_lexicon import _tokenise, count_emotion_expressions
from .tone_summary import describe_tone
from .types import EMOTIONS, EmotionResult

SUPPORTED_LANGUAGES = ("ja", "en")

# Polarity at least this far from 0, from evidence independent of the emotion words, overrules an
# emotion of the opposite valence. For oseti 0.5 means at least three positive words for each negative.
CLEAR_POLARITY = 0.5

POSITIVE_EMOTIONS = frozenset({"joy", "liking", "relief"})
NEGATIVE_EMOTIONS = frozenset({"anger", "sadness", "fear", "dislike", "shame"})

MLASK_TO_CANONICAL: dict[str, str] = {
    "yorokobi": "joy",
    "ikari": "anger",
    "aware": "sadness",
    "kowa": "fear",
    "haji": "shame",
    "suki": "liking",
    "iya": "dislike",
    "takaburi": "excitement",
    "yasu": "relief",
    "odoroki": "surprise",
}

# ML-Ask's orientation, used as polarity only when oseti found no net evidence; kept weaker than
# oseti's direct word evidence because it only counts emotion classes.
_MLASK_ORIENTATION_POLARITY: dict[str, float] = {
    "POSITIVE": 0.5,
    "mostly_POSITIVE": 0.25,
    "NEUTRAL": 0.0,
    "mostly_NEGATIVE": -0.25,
    "NEGATIVE": -0.5,
}


def _require_text(text: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise ValueError("Cannot analyse the emotion of empty text: pass the learner's message.")


def _valence(emotion: str) -> int:
    return 1 if emotion in POSITIVE_EMOTIONS else -1 if emotion in NEGATIVE_EMOTIONS else 0


def _drop_contradicted_emotions(counts: Mapping[str, int], polarity: float) -> dict[str, int]:
    if abs(polarity) < CLEAR_POLARITY:
        return dict(counts)
    sign = 1 if polarity > 0 else -1
    return {emotion: n for emotion, n in counts.items() if _valence(emotion) != -sign}


def _shares(counts: Mapping[str, int]) -> dict[str, float]:
    total = sum(counts.values())
    return {emotion: round(n / total, 3) for emotion, n in counts.items() if n > 0} if total else {}


def _combine(reading: Reading, sentence_scores: list[float | None]) -> float:
    """Mean polarity of the sentences that have evidence, after the cues' bounds; 0.0 without any."""
    bounded = (reading.bound(i, score) for i, score in enumerate(sentence_scores))
    evidence = [score for score in bounded if score is not None]
    polarity = sum(evidence) / len(evidence) if evidence else 0.0
    if reading.message_ceiling is not None:
        polarity = min(polarity, reading.message_ceiling)
    return polarity


def _with_cue_emotions(counts: Mapping[str, int], reading: Reading, polarity: float) -> Counter[str]:
    """Dictionary emotions that the polarity does not contradict, plus what the cues found."""
    combined = Counter(_drop_contradicted_emotions(counts, polarity))
    combined.update(reading.emotions)
    return combined


def _polarity_from_emotions(counts: Mapping[str, int]) -> float:
    """When no word carries polarity, the emotions' valence gives a weak one (「恥ずかしかった」: shame)."""
    net = sum(_valence(emotion) * n for emotion, n in counts.items())
    return 0.5 if net > 0 else -0.5 if net < 0 else 0.0


_CUES = None


def cue_book() -> CueBook:
    """cues.yaml, read and checked once per process."""
    global _CUES
    if _CUES is None:
        _CUES = load_cues(split_words={"en": _tokenise})
    return _CUES


def _dominant(scores: Mapping[str, float], polarity: float, preferred: str | None = None) -> str:
    """Highest score; ties go to the preferred label, then to the one agreeing with the polarity."""
    if not scores:
        return "neutral"
    best = max(scores.values())
    tied = [emotion for emotion in EMOTIONS if scores.get(emotion) == best]
    if preferred in tied:
        return preferred
    sign = (polarity > 0) - (polarity < 0)
    agreeing = [emotion for emotion in tied if _valence(emotion) == sign]
    return (agreeing or tied)[0]


# --- Japanese -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Token:
    surface: str
    pos: str
    subpos: str
    base_form: str
    start: int
    end: int
    conjugation: str = ""


class JapaneseEmotionAnalyser:
    """ML-Ask emotions and oseti polarity over MeCab + ipadic. Not safe to call from two threads at once
    (MeCab taggers are not), so calls are serialised by a lock."""

    engine = "offline:mlask+oseti"

    def __init__(self) -> None:
        from mlask import MLAsk

        from ..japanese_tagger import TAGGER_LOCK, shared_tagger
        from .japanese_polarity import NegationAwareOseti
        from .sentences import SentenceSplitter

        # The process's one tagger for ML-Ask, oseti, the splitter and _tokens (each would open its
        # own) and the register checker; its lock serialises every use of it.
        self._tagger = shared_tagger()
        self._mlask = MLAsk.__new__(MLAsk)  # MLAsk.__init__ only opens a tagger of its own, then this:
        self._mlask.mecab = self._tagger
        self._mlask._read_emodic()
        self._cues = cue_book()
        neutral = self._cues.neutral_words["ja"]
        self._oseti = NegationAwareOseti(self._tagger, SentenceSplitter(self._tagger), ignored=neutral)
        emotions = self._mlask.emodic["emotion"]
        for label, expressions in emotions.items():
            emotions[label] = [expression for expression in expressions if expression not in neutral]
        self._emotive_words = frozenset(
            word for words in self._mlask.emodic["emotion"].values() for word in words
        ) | frozenset(self._oseti.word_dict)
        self._lock = TAGGER_LOCK

    def analyse(self, text: str) -> EmotionResult:
        _require_text(text)
        with self._lock:
            text = self._without_degree_modifiers(text)
            pieces = self._oseti.bunkai(text)
            sentences = [Sentence(piece, _cue_words(self._tokens(piece))) for piece in pieces]
            words = [self._oseti._calc_sentiment_polarity(piece) for piece in pieces]
            hits = self._cues.find("ja", sentences)
            negative = {i for i, found in enumerate(words) if any(value < 0 for _, value in found)}
            reading = interpret(hits, negative)
            kept = "".join(piece for i, piece in enumerate(pieces) if i not in reading.muted)
            mlask = self._mlask.analyze(kept) if kept.strip() else {}

        found = mlask.get("emotion") or {}
        counts: Counter[str] = Counter()
        for mlask_label, expressions in found.items():
            counts[MLASK_TO_CANONICAL[mlask_label]] += len(expressions)

        # oseti's sentence score; sentences where it found no polarity word say nothing, so they do
        # not pull the mean to 0.
        scores_by_sentence = [sum(v for _, v in found) / len(found) if found else None for found in words]
        polarity = _combine(reading, scores_by_sentence)
        if polarity != 0.0:
            counts = _with_cue_emotions(counts, reading, polarity)
        else:
            counts.update(reading.emotions)
            polarity = _MLASK_ORIENTATION_POLARITY.get(mlask.get("orientation") or "NEUTRAL", 0.0)
            polarity = polarity or _polarity_from_emotions(counts)

        scores = _shares(counts)
        representative = mlask.get("representative")
        preferred = reading.preferred() or (MLASK_TO_CANONICAL[representative[0]] if representative else None)
        dominant = _dominant(scores, polarity, preferred)
        polarity = round(max(-1.0, min(1.0, polarity)), 3)
        return EmotionResult(
            language="ja",
            dominant=dominant,
            scores=scores,
            polarity=polarity,
            engine=self.engine,
            summary=describe_tone("ja", dominant, polarity),
        )

    def _tokens(self, text: str) -> list[_Token]:
        tokens: list[_Token] = []
        cursor = 0
        node = self._tagger.parseToNode(text)
        while node:
            if node.surface:
                feature = node.feature.split(",")
                start = text.find(node.surface, cursor)
                if start < 0:  # MeCab normalised something; offsets are unreliable from here on
                    break
                cursor = start + len(node.surface)
                base_form = feature[6] if len(feature) > 6 and feature[6] != "*" else node.surface
                conjugation = feature[5] if len(feature) > 5 else ""
                tokens.append(_Token(node.surface, feature[0], feature[1], base_form, start, cursor, conjugation))
            node = node.next
        return tokens

    def _without_degree_modifiers(self, text: str) -> str:
        """Remove emotive adjectival nouns used as degree adverbs: 「大変助かりました」, 「大変申し訳ございません」,
        「めちゃくちゃ楽しかった」, 「非常に嬉しい」. Used that way (no copula, straight before a predicate) they
        intensify the next word and express no feeling of their own, yet both dictionaries score them
        (ML-Ask 大変 -> iya, oseti 大変/非常/めちゃくちゃ -> negative).
        「大変でした」 and 「大変な一日」 keep theirs."""
        tokens = self._tokens(text)
        spans = [
            (token.start, token.end)
            for index, token in enumerate(tokens)
            if token.base_form in self._emotive_words and _is_degree_modifier(tokens, index)
        ]
        for start, end in reversed(spans):
            text = text[:start] + text[end:]
        return text


# A bare imperative (考えろ, 早くしろ) is marked for cues.yaml as this word; 頑張れ cheers rather than orders.
IMPERATIVE = "〔命令〕"
_CHEERING_VERBS = frozenset({"頑張る", "がんばる"})


def _cue_words(tokens: list[_Token]) -> tuple[str, ...]:
    """The words cues.yaml matches: base forms, with IMPERATIVE after a plain imperative verb."""
    words: list[str] = []
    for token in tokens:
        words.append(token.base_form)
        if (
            token.pos == "動詞"
            and token.subpos == "自立"
            and token.conjugation.startswith("命令")
            and token.base_form not in _CHEERING_VERBS
        ):
            words.append(IMPERATIVE)
    return tuple(words)


_LIGHT_VERBS = frozenset({"する", "できる", "出来る"})  # 「安心する」 is the feeling itself
_PREDICATE_NOUNS = frozenset({"サ変接続", "ナイ形容詞語幹", "形容動詞語幹"})  # お世話になる, 申し訳ない, 残念だ


def _heads_predicate(token: _Token) -> bool:
    if token.pos == "動詞":
        return token.subpos == "自立" and token.base_form not in _LIGHT_VERBS
    if token.pos == "名詞":
        return token.subpos in _PREDICATE_NOUNS
    return token.pos in ("形容詞", "接頭詞")


def _is_degree_modifier(tokens: list[_Token], index: int) -> bool:
    token = tokens[index]
    if (token.pos, token.subpos) != ("名詞", "形容動詞語幹") or index + 1 >= len(tokens):
        return False
    following = tokens[index + 1]
    if following.start == token.end and _heads_predicate(following):
        return True
    # 「非常に嬉しい」: adverbial に before an adjective. Before a verb (「残念に思う」) the word is the feeling.
    if following.surface == "に" and following.subpos == "副詞化" and index + 2 < len(tokens):
        head = tokens[index + 2]
        return head.pos == "形容詞" or (head.pos, head.subpos) == ("名詞", "形容動詞語幹")
    return False


# --- English --------------------------------------------------------------------------------------


class EnglishEmotionAnalyser:
    """VADER's compound score as polarity; the emotion from english_lexicon, checked against VADER's sign."""

    engine = "offline:vader+lexicon"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._cues = cue_book()
        self._vader = SentimentIntensityAnalyzer()
        for word in self._cues.neutral_words["en"]:  # this instance's own copy of the lexicon
            self._vader.lexicon.pop(word, None)

    def analyse(self, text: str) -> EmotionResult:
        _require_text(text)
        pieces = [piece for piece in _SENTENCE_END.split(text.strip()) if piece]
        sentences = [Sentence(piece, tuple(_tokenise(piece))) for piece in pieces]
        hits = self._cues.find("en", sentences)
        negative = {i for i, s in enumerate(sentences) if any(self._vader.lexicon.get(w, 0) <= -1 for w in s.words)}
        reading = interpret(hits, negative)
        kept = [piece for i, piece in enumerate(pieces) if i not in reading.muted]
        scores_by_sentence = [
            None if i in reading.muted else (self._vader.polarity_scores(piece)["compound"] or None)
            for i, piece in enumerate(pieces)
        ]
        polarity = round(_combine(reading, scores_by_sentence), 3)
        counts = _with_cue_emotions(count_emotion_expressions(" ".join(kept)), reading, polarity)
        scores = _shares(counts)
        dominant = _dominant(scores, polarity, reading.preferred())
        return EmotionResult(
            language="en",
            dominant=dominant,
            scores=scores,
            polarity=polarity,
            engine=self.engine,
            summary=describe_tone("en", dominant, polarity),
        )


# A sentence ends at . ! or ? followed by a space (not inside 3.5 or e.g.).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


# --- Language and the async front ----------------------------------------------------------------


def normalise_language(language: str) -> str:
    """Accepts "ja", "en" and regional tags such as "ja-JP" or "en_US"."""
    code = language.strip().lower().replace("_", "-").split("-")[0]
    if code not in SUPPORTED_LANGUAGES:
        raise ValueError(
            f"Unsupported language {language!r} for offline emotion analysis; use one of {SUPPORTED_LANGUAGES}"
        )
    return code


T = TypeVar("T")


class _OncePerProcess(Generic[T]):
    """Builds the value on first use, once even when several threads ask at the same moment."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._factory()
        return self._value


# oseti's import and dictionaries take a few seconds: load only the language actually used.
_ANALYSERS: dict[str, _OncePerProcess[JapaneseEmotionAnalyser] | _OncePerProcess[EnglishEmotionAnalyser]] = {
    "ja": _OncePerProcess(JapaneseEmotionAnalyser),
    "en": _OncePerProcess(EnglishEmotionAnalyser),
}


def _analyse_now(text: str, language: str) -> EmotionResult:
    return _ANALYSERS[language].get().analyse(text)


class OfflineEmotionAnalyser:
    """EmotionAnalyser with no network and no credentials. The CPU work runs in a worker thread."""

    engine = "offline:mlask+oseti/vader"

    async def analyse(self, text: str, language: str | None = None) -> EmotionResult:
        _require_text(text)
        # Same detection as the dialogue engines use, so the summary matches the reply language.
        code = normalise_language(language) if language else detect_language(text)
        return await asyncio.to_thread(_analyse_now, text, code)

    async def warm_up(self, languages: tuple[str, ...] = SUPPORTED_LANGUAGES) -> None:
        """Load the dictionaries now (a few seconds for Japanese) instead of on the first message."""
        for language in languages:
            await asyncio.to_thread(_ANALYSERS[normalise_language(language)].get)
