"""Offline dialogue engine: the default when no Gemini key is set.

It does not generate text. It recognises what the learner is doing (a "move": greeting,
reporting a delay, declining overtime, ...) and answers with an authored line of that move,
in the partner's register and the learner's language. Every line was written by hand, so the
Japanese is natural and the register is right; the price is a finite repertoire, which is why
the engine says plainly what it is (``info.label``). The content (characters, situations,
moves and lines) is a catalogue the serving service owns: see dialogue_catalogue.

How a reply is chosen (deterministic at temperature 0):
1. Recognise the move. The message is embedded with multilingual-e5-small; each move is scored
   by a linear classifier trained on its examples (at build-index time) plus the mean
   similarity to its closest examples, plus its keywords found in the message. A softmax over
   the scores gives a confidence; the top-two margin says how sure the choice is.
2. Use the conversation so far (DialogueState, derived from the history alone, so the engine
   keeps no memory between requests): when the message alone is doubtful, the move the
   partner's last line belongs to and its topic tip the balance (a short answer such as
   「映画を見ました」 to 「週末は何してたの？」); a greeting in the middle of a talk is not
   answered with a second welcome; what the learner already said is not asked again.
3. Doubt is honest: when no move is likely (off-topic, or two moves equally likely and neither
   clear), the partner answers with a kind in-character line that steers the talk back, never
   one that says the learner was unclear.
4. Pick the line: among the move's lines that fit the situation, the time of day, the phase of
   the conversation and the slots found in the learner's words ({thing}), unused ones first,
   closest in meaning and wording to the message.

Embedding the examples and lines takes several seconds on two cores, so the vectors and the
classifier are cached beside the content in embedding_cache.npz (rebuilt with
the serving content's ``build-index`` command, e.g. ``python -m chat_service build-index``); texts missing from the
cache are embedded at first use, and a unit test fails while it is stale.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from workplace_kit.ai.dialogue_catalogue import (
    CACHE_FILE,
    FALLBACK_INTENT,
    LANGUAGES,
    Catalogue,
    CatalogueError,
    Character,
    Intent,
    Language,
    Persona,
    ReplyLine,
    Situation,
    TimeOfDay,
    load_catalogue,
)
from workplace_kit.ai.embeddings import Embedder, get_embedder
from workplace_kit.ai.language import detect_language
from workplace_kit.ai.types import DialogueRequest, EngineInfo, ReplyChunk

__all__ = [
    "CACHE_FILE",
    "FALLBACK_INTENT",
    "LANGUAGES",
    "Catalogue",
    "CatalogueError",
    "Character",
    "DialogueState",
    "Intent",
    "OfflineDialogueEngine",
    "OfflineReply",
    "Persona",
    "ReplyLine",
    "Situation",
    "load_catalogue",
    "split_into_chunks",
    "time_of_day_at",
    "write_embedding_cache",
    "write_vector_cache",
]

log = logging.getLogger(__name__)

# e5 similarities are compressed (unrelated sentences still score ~0.80): a message whose best
# move reaches less than this is off-topic or gibberish.
MATCH_THRESHOLD = 0.845
# A move's similarity = mean similarity of the message to this many closest examples of it.
TOP_EXAMPLES = 3
# Score of a move = classifier logit + SIMILARITY_WEIGHT * similarity + KEYWORD_BONUS if one of
# its keywords is in the message. The similarity term keeps moves with few examples fair.
SIMILARITY_WEIGHT = 50.0
KEYWORD_BONUS = 2.0
# Softmax temperature that turns scores into a confidence (calibrated on bench/conversation_quality).
CONFIDENCE_TEMPERATURE = 1.0
# Below this confidence the message alone does not settle the move: the context may tip it.
CONFIDENT = 0.6
# How much the conversation weighs when the message is doubtful: a bonus for the move of the
# partner's last line when that line asked something, and the centred closeness of that line
# to each move's topic.
ANSWER_BONUS = 1.5
ANSWERED_BONUS = 4.0
CONTEXT_WEIGHT = 4.0
# A message far from every example (below MATCH_THRESHOLD) is off-topic unless the classifier
# is at least this sure of its move; below OFF_TOPIC_FLOOR it is off-topic however sure (a
# classifier over few moves is sure of something for any text).
SURE = 0.7
OFF_TOPIC_FLOOR = 0.83
# A reply of at most this many letters right after the partner's question is its answer.
SHORT_ANSWER_CHARS = 10
SHORT_ANSWER_CONTEXT_WEIGHT = 30.0
# Below this confidence, with a top-two margin under DOUBT_MARGIN, the partner admits doubt.
MIN_CONFIDENCE = 0.3
DOUBT_MARGIN = 0.2
# Classifier training (multinomial logistic regression on the example vectors).
CLASSIFIER_SCALE = 10.0
CLASSIFIER_L2 = 1e-2
CLASSIFIER_STEPS = 400
CLASSIFIER_RATE = 0.5
# Reply lines that reuse the learner's own words rank higher by this much times the share of
# the message's terms they contain; e5 alone ranks lines of one move only loosely.
LEXICAL_WEIGHT = 0.06
# With temperature > 0, the reply is drawn from this many best-ranked unused lines.
RANDOM_TOP_LINES = 2
# Fewer meaningful characters than this is too little to understand ("あ", "?", "ok").
MIN_MEANINGFUL_CHARS = 2
# What follows an opening greeting, up to this many letters, may be a pleasantry that belongs to it.
PLEASANTRY_CHARS = 16
GREETING_INTENT = "greeting"
# When the move is in doubt and the learner asked a question, the partner admits it kindly and
# turns it into talk with this move's lines (if the catalogue has it) instead of "tell me more".
QUESTION_FALLBACK_INTENT = "fallback_question"
# ... but only for questions of opinion or imagination (「どう思います？」, "what would you do?"),
# which a partner can turn back. A question of fact no move fits (「また壊れてません？」, "what
# will the CEO announce?") is one the partner cannot answer offhand: it says so and offers to
# find out, with this move's lines.
UNKNOWN_FACT_INTENT = "question_partner_cannot_answer"
# A doubtful question that asks for the partner's time (「ご相談してもいいですか」, "could we talk
# this week?") or asks them to do something ("could you tell the team...?") is that request,
# not a question to think about: its move answers it.
ASK_TIME_INTENT = "ask_for_time"
ASK_FAVOUR_INTENT = "ask_favour"
ASK_PERMISSION_INTENT = "ask_permission"
ASK_INSTRUCTION_INTENT = "ask_instruction"
# How to do something (「どこに予約すればいいんでしたっけ？」, "What should I do first?"): the
# partner knows their own workplace, so it is an instruction to give, not a fact they lack.
_ASKS_HOW = re.compile(
    r"(?:ば|たら|れば)(?:いい|よい|よろしい)|べき|やり方|方法|どうやって|どうしたら"
    r"|\b(?:how|what|which|where|who|when) (?:\w+ )?(?:do|should|can|shall) i\b",
    re.I,
)
# A yes/no question about the partner's own habits or experience ("Do you play any
# instruments?", 「田中さんはキャンプとかしますか？」): they answer for themselves and ask back.
# A question about the partner that asks what, how or why is one to think about (fallback_question).
PARTNER_HABIT_INTENT = "partner_habit_question"
_ASKS_PERMISSION = re.compile(
    r"ても(?:よろしい|いい|大丈夫|構いません|かまいません)|たほうが(?:いい|よろしい)|ましょうか[？?]?$"
    # "Should I ...?" opens its sentence; "Which branch should I use?" asks how, not whether.
    r"|(?:^|[:;.!?]\s*|\b(?:so|and|also|then|oh)\s+)(?:should|shall|may|can) i\b"
    r"|\b(?:is it (?:ok|okay|alright|all right) if i|mind if i)\b",
    re.I,
)
# "Did you hear ...?", 「聞きました？」, 「〜らしいですよ、知ってました？」: the learner brings news;
# the partner had not heard and reacts to it (a question of who or what is a fact they lack).
HEARD_NEWS_INTENT = "heard_the_news"
_BRINGS_NEWS = re.compile(
    r"聞きました|聞いた[？?]|聞いてます|聞いてる[？?]|らしい(?:です)?(?:よ|ね)?[、。,]?.*知って|知って(?:た|ました)[？?]"
    r"|\b(?:did you hear|have you heard|guess what)\b",
    re.I,
)
_ADDRESSEE = re.compile(r"(?:さん|先輩|部長|課長|主任|さま|様)(?:は|って|も|の)|あなた")
_WH_WORD = re.compile(r"何|なに|なん|どこ|いつ|誰|だれ|どう|どれ|どんな|どの|なぜ|いくら|どのくらい|どれくらい")
_KNOW_OF = re.compile(r"\b(?:do you (?:happen to )?know|have you heard|did you hear|any idea)\b", re.I)
_YOU_YES_NO = re.compile(
    r"^\W*(?:so,? |and |oh,? |by the way,? )?(?:do|did|have|are|were) you\b"
    r"(?! (?:know|think|happen to know|remember|have (?:a|any) idea)\b)",
    re.I,
)
_ASKS_FOR_TIME = re.compile(
    r"相談|お時間|時間(?:を|い|も|あ|と|、)|話せ|お話し|少しいい|ちょっといい|今いい|今大丈夫"
    r"|\b(?:a minute|a moment|a sec(?:ond)?|a word|a quick chat|(?:talk|chat|speak) (?:to|with) you"
    r"|could we (?:talk|chat|meet)|some time|your time)\b",
    re.I,
)
_ASKS_A_FAVOUR = re.compile(
    r"(?:いただけ|もらえ|くれ|頂け)(?:ない|ます|る|ません)|て(?:もらって|いただいて)(?:も)?(?:いい|よろしい|大丈夫)"
    r"|お願い(?:でき|します|したい|してもいい)|頼んで"
    r"|^(?:\W*)(?:could|can|would) you\b(?! think)"
    r"|\b(?:could|can|would) you (?:please |possibly )?"
    r"(?:tell|let|send|check|ask|cover|help|take|pass|do|give|forward|look)"
    r"|\bwould you mind\b",
    re.I,
)
_OPINION_QUESTION = re.compile(
    r"思[うい]|考え|だったら|としたら|なりたい|信じ|意味|好き"
    r"|\b(?:do you think|would you|if you|believe|your (?:take|view|opinion)|what if|meaning|favou?rite)\b"
    r"|\b(?:how|what|which|where|when|why) (?:do|did|would|have|are|were) you\b",
    re.I,
)
# Moves the engine decides on; never recognised from examples.
_DECIDED_MOVES = frozenset({FALLBACK_INTENT, QUESTION_FALLBACK_INTENT, PARTNER_HABIT_INTENT, HEARD_NEWS_INTENT})
# Taken off the greeting's score once the talk has begun, unless the message greets in words.
REGREETING_PENALTY = 3.0
# A greeting that opens a message, after an optional form of address (「部長、お疲れさまです。」,
# "Morning!", "Hi Ken,"): what follows it is what the message is about, and the partner greets
# back before answering that.
_OPENING_ADDRESS = re.compile(
    r"\s*[^、。！？!?,\s]{0,8}?(?:さん|先輩|部長|課長|係長|主任|社長|くん|ちゃん)\s*[、,！!]\s*"
)
_OPENING_GREETING = re.compile(
    r"\s*(?:おはよう(?:ございます)?|こんにちは|こんばんは|お疲れ(?:さま|様)?(?:です)?|おつかれ(?:さま)?(?:です)?"
    r"|(?:good )?(?:morning|afternoon|evening)|hi|hello|hey(?: there)?)(?: [A-Z][a-z]+)?"
    r"(?=[\s〜~ー！!。.、,]|$)[\s〜~ー！!。.、,]*",
    re.I,
)


def split_greeting(message: str) -> tuple[str, str]:
    """(the greeting a message opens with, what follows it); ("", message) when it opens otherwise."""
    address = _OPENING_ADDRESS.match(message)
    greeting = _OPENING_GREETING.match(message, address.end() if address else 0)
    if greeting is None or not greeting.group().strip():
        return "", message
    return greeting.group().strip(), message[greeting.end() :].strip()


# Greetings that name the time of day: the partner answers at the learner's time.
_TIME_GREETINGS: tuple[tuple[re.Pattern[str], TimeOfDay], ...] = (
    (re.compile(r"おはよう|\bgood morning\b|^morning\b", re.I), "morning"),
    (re.compile(r"こんばんは|\bgood evening\b", re.I), "evening"),
    (re.compile(r"こんにちは|\bgood afternoon\b", re.I), "daytime"),
)


QUESTION_KINDS_FILE = Path(__file__).with_name("question_kinds.yaml")


@dataclass(frozen=True)
class QuestionKind:
    """A kind of information a question asks for (time, place, ...) and how a message gives it."""

    id: str
    asked: Mapping[Language, tuple[str, ...]]
    given: Mapping[Language, tuple[re.Pattern[str], ...]]


@lru_cache(maxsize=4)
def load_question_kinds(path: Path = QUESTION_KINDS_FILE) -> tuple[QuestionKind, ...]:
    """Parse question_kinds.yaml; an error names the file and the entry."""
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("kinds"), dict):
        raise CatalogueError(f"{path.name}: expected a mapping 'kinds'")
    kinds = []
    for kind_id, body in raw["kinds"].items():
        where = f"{path.name}:{kind_id}"
        if (
            not isinstance(body, dict)
            or not isinstance(body.get("asked"), dict)
            or not isinstance(body.get("given"), dict)
        ):
            raise CatalogueError(f"{where}: needs 'asked' and 'given', each with ja and en")
        asked: dict[Language, tuple[str, ...]] = {}
        given: dict[Language, tuple[re.Pattern[str], ...]] = {}
        for language in LANGUAGES:
            asked[language] = tuple(str(w).lower() for w in body["asked"].get(language) or ())
            patterns = []
            for position, source in enumerate(body["given"].get(language) or ()):
                try:
                    patterns.append(re.compile(str(source), re.IGNORECASE))
                except re.error as exc:
                    raise CatalogueError(
                        f"{where}.given.{language}[{position}]: bad regular expression ({exc})"
                    ) from exc
            given[language] = tuple(patterns)
        kinds.append(QuestionKind(str(kind_id), asked, given))
    return tuple(kinds)


_SENTENCE = re.compile(r"[^。！？!?]*[。！？!?]?")
# A request to be told asks as a question does: 「理由を教えてください。」, "Tell me why."
_TELL_ME = re.compile(r"(?:教えて|聞かせて)(?:ください|くれ|もらえ|ほしい)|\btell me\b", re.I)


def _asked_kinds(line: str, kinds: tuple[QuestionKind, ...]) -> frozenset[str]:
    """The kinds of information the line's questions ask for."""
    questions = [s for s in _SENTENCE.findall(line) if _QUESTION_END.search(s) or _TELL_ME.search(s)]
    found = set()
    for question in questions:
        lowered = question.lower()
        for kind in kinds:
            for language in LANGUAGES:
                if any(_contains(lowered, word, language) for word in kind.asked[language]):
                    found.add(kind.id)
    return frozenset(found)


def _given_kinds(texts: Iterable[str], kinds: tuple[QuestionKind, ...]) -> frozenset[str]:
    """The kinds of information the learner's words already give."""
    found = set()
    for text in texts:
        for kind in kinds:
            if any(p.search(text) for language in LANGUAGES for p in kind.given[language]):
                found.add(kind.id)
    return frozenset(found)


def _contains(text: str, word: str, language: Language) -> bool:
    """Japanese: substring; English: whole words (text and word in lower case)."""
    if language == "ja":
        return word in text
    return re.search(r"(?<![a-z'])" + re.escape(word) + r"(?![a-z'])", text) is not None


def time_of_day_at(moment: datetime) -> TimeOfDay:
    """Morning until 11:00, daytime until 17:00, evening after (the moment in the learner's zone)."""
    if 4 <= moment.hour < 11:
        return "morning"
    if 11 <= moment.hour < 17:
        return "daytime"
    return "evening"


# ------------------------------------------------------------------------- the vector index


@dataclass(frozen=True)
class _Index:
    example_vectors: np.ndarray  # (n_examples, 384)
    example_intent: np.ndarray  # (n_examples,) index into catalogue.intents
    rows_by_intent: tuple[np.ndarray, ...]  # per intent, its rows in example_vectors
    line_vectors: np.ndarray  # (n_lines, 384): every reply line of every partner and language
    line_rows_by_intent: tuple[np.ndarray, ...]  # per intent, its rows in line_vectors
    text_vectors: Mapping[str, np.ndarray]  # every example and reply line -> (384,)
    weights: np.ndarray  # (384, n_intents): the move classifier
    bias: np.ndarray  # (n_intents,)
    line_owner: Mapping[str, tuple[str, ReplyLine]]  # authored line text -> (intent id, line)
    templates: tuple[tuple[re.Pattern[str], str, ReplyLine], ...]  # lines with placeholders
    asked_kinds: Mapping[str, frozenset[str]]  # line text -> kinds of information its questions ask
    question_kinds: tuple[QuestionKind, ...]
    build_seconds: float


def _classifier_digest(catalogue: Catalogue, model_version: str) -> str:
    """Changes whenever the examples, their moves or the training settings change."""
    parts = [model_version, str((CLASSIFIER_SCALE, CLASSIFIER_L2, CLASSIFIER_STEPS, CLASSIFIER_RATE))]
    for intent in catalogue.intents:
        parts.append(intent.id)
        for language in LANGUAGES:
            parts.extend(intent.examples[language])
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _train_classifier(vectors: np.ndarray, owners: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression by full-batch gradient descent (deterministic, ~1 s)."""
    weights = np.zeros((vectors.shape[1], classes), np.float32)
    bias = np.zeros(classes, np.float32)
    targets = np.eye(classes, dtype=np.float32)[owners]
    for _ in range(CLASSIFIER_STEPS):
        logits = CLASSIFIER_SCALE * (vectors @ weights) + bias
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        gradient = (probabilities - targets) / len(vectors)
        weights -= CLASSIFIER_RATE * (CLASSIFIER_SCALE * vectors.T @ gradient + CLASSIFIER_L2 * weights)
        bias -= CLASSIFIER_RATE * gradient.sum(axis=0)
    return weights, bias


def _example_matrix(catalogue: Catalogue, text_vectors: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    rows, owners = [], []
    for position, intent in enumerate(catalogue.intents):
        for language in LANGUAGES:
            for text in intent.examples[language]:
                rows.append(text_vectors[text])
                owners.append(position)
    return np.stack(rows).astype(np.float32), np.array(owners)


def _normalised(vector: np.ndarray) -> np.ndarray:
    normalised: np.ndarray = vector / max(float(np.linalg.norm(vector)), 1e-12)
    return normalised


def _read_cache(path: Path, model_version: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(text -> vector, classifier arrays) from the cache file; empty when absent or stale."""
    if not path.exists():
        return {}, {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model_version"]) != model_version:
                log.warning("embedding cache %s is for %s, not %s: ignored", path, data["model_version"], model_version)
                return {}, {}
            vectors = {str(t): v.astype(np.float32) for t, v in zip(data["texts"], data["vectors"], strict=True)}
            names = ("classifier_digest", "classifier_weights", "classifier_bias")
            classifier = {name: data[name] for name in names if name in data}
            return vectors, classifier
    except (OSError, KeyError, ValueError) as exc:
        log.warning("embedding cache %s unreadable (%s): ignored", path, exc)
        return {}, {}


def write_embedding_cache(catalogue: Catalogue, embedder: Embedder | None = None) -> int:
    """Embed every authored text, train the move classifier and store both beside the content;
    returns how many texts."""
    embedder = embedder or get_embedder()
    texts = catalogue.all_texts()
    vectors = embedder.embed_passages(texts)
    # The classifier is trained on the vectors as the cache stores them (float16), so a process
    # that reads the cache and one that trains afresh agree.
    stored = vectors.astype(np.float16)
    by_text = {t: _normalised(v.astype(np.float32)) for t, v in zip(texts, stored, strict=True)}
    matrix, owners = _example_matrix(catalogue, by_text)
    weights, bias = _train_classifier(matrix, owners, len(catalogue.intents))
    # float16 halves the file; cosine scores move by < 1e-3.
    np.savez_compressed(
        catalogue.cache_path,
        model_version=np.array(embedder.model_version),
        texts=np.array(texts),
        vectors=stored,
        classifier_digest=np.array(_classifier_digest(catalogue, embedder.model_version)),
        classifier_weights=weights,
        classifier_bias=bias,
    )
    return len(texts)


def write_vector_cache(path: Path, catalogues: Iterable[Catalogue], embedder: Embedder | None = None) -> int:
    """One cache of vectors for several catalogues (their classifiers train when they load);
    returns how many texts."""
    embedder = embedder or get_embedder()
    texts = list(dict.fromkeys(text for catalogue in catalogues for text in catalogue.all_texts()))
    vectors = embedder.embed_passages(texts).astype(np.float16)
    np.savez_compressed(path, model_version=np.array(embedder.model_version), texts=np.array(texts), vectors=vectors)
    return len(texts)


def _template_pattern(text: str) -> re.Pattern[str]:
    """A regex matching the line as rendered, whatever fills its placeholders."""
    pieces = re.split(r"\{[A-Za-z_][A-Za-z0-9_]*\}", text)
    return re.compile(".+?".join(re.escape(piece) for piece in pieces), re.S)


def _build_index(catalogue: Catalogue, embedder: Embedder) -> _Index:
    started = time.perf_counter()
    cached, classifier = _read_cache(catalogue.cache_path, embedder.model_version)
    texts = catalogue.all_texts()
    missing = [t for t in texts if t not in cached]
    if missing:
        log.warning(
            "embedding %d dialogue texts missing from %s; rebuild it with the content's build-index command",
            len(missing),
            catalogue.cache_path,
        )
        cached.update(zip(missing, embedder.embed_passages(missing), strict=True))
    text_vectors = {t: _normalised(cached[t]) for t in texts}
    example_vectors, owners = _example_matrix(catalogue, text_vectors)
    if str(classifier.get("classifier_digest", "")) == _classifier_digest(catalogue, embedder.model_version):
        weights, bias = classifier["classifier_weights"], classifier["classifier_bias"]
    else:
        # A cache shared by several catalogues (the scenario scripts) holds vectors only: a small
        # catalogue's classifier trains in tens of milliseconds.
        if classifier:
            log.warning("the move classifier in %s is stale: training it now", catalogue.cache_path)
        weights, bias = _train_classifier(example_vectors, owners, len(catalogue.intents))
    line_rows, line_owners = [], []
    line_owner: dict[str, tuple[str, ReplyLine]] = {}
    templates: list[tuple[re.Pattern[str], str, ReplyLine]] = []
    for position, intent in enumerate(catalogue.intents):
        for by_language in intent.replies.values():
            for lines in by_language.values():
                for line in lines:
                    line_rows.append(text_vectors[line.text])
                    line_owners.append(position)
                    line_owner.setdefault(line.text, (intent.id, line))
                    if "{" in line.text:
                        templates.append((_template_pattern(line.text), intent.id, line))
    positions = range(len(catalogue.intents))
    kinds = load_question_kinds()
    return _Index(
        example_vectors=example_vectors,
        example_intent=owners,
        rows_by_intent=tuple(np.flatnonzero(owners == p) for p in positions),
        line_vectors=np.stack(line_rows).astype(np.float32),
        line_rows_by_intent=tuple(np.flatnonzero(np.array(line_owners) == p) for p in positions),
        text_vectors=text_vectors,
        weights=weights.astype(np.float32),
        bias=bias.astype(np.float32),
        line_owner=line_owner,
        templates=tuple(templates),
        asked_kinds={text: _asked_kinds(text, kinds) for text in line_owner},
        question_kinds=kinds,
        build_seconds=time.perf_counter() - started,
    )


# ------------------------------------------------------------------ the conversation so far


@dataclass(frozen=True)
class DialogueState:
    """What the conversation so far tells the engine, read from the history alone."""

    exchanges: int  # learner messages before this one
    partner_lines: tuple[str, ...]  # what the partner said, in order (the opener too)
    partner_moves: tuple[str | None, ...]  # the move of each partner line (None: not an authored reply)
    learner_lines: tuple[str, ...] = ()  # what the learner said before this message
    known_slots: Mapping[str, str] = field(default_factory=dict)  # what the learner already told
    last_asked: frozenset[str] = frozenset()  # slots the partner's last line asked for
    last_was_question: bool = False
    time_of_day: TimeOfDay | None = None

    @property
    def phase(self) -> str:
        return "opening" if self.exchanges == 0 else "later"

    @property
    def last_move(self) -> str | None:
        return self.partner_moves[-1] if self.partner_moves else None

    @property
    def greeted(self) -> bool:
        return self.exchanges > 0 or GREETING_INTENT in self.partner_moves


# A question ends with a question mark, or in Japanese with か (「いつになりそうですか。」) or っけ;
# 「そうですか。」 on its own is a reaction, not a question.
_QUESTION_END = re.compile(r"(?:[？?]|(?<!^そうです)(?<!^そうでした)(?<!^そう)(?:か|っけ)[。]?)\s*$")


def _slots_in(text: str, intent: Intent, language: Language) -> dict[str, str]:
    """Phrases the learner's own words give for the intent's slots (first match per slot)."""
    found: dict[str, str] = {}
    for name, by_language in intent.slots.items():
        for pattern in by_language.get(language, ()):
            match = pattern.search(text)
            if match and (value := (match.group(name) or "").strip(" 、。,.!?！？")):
                found[name] = value
                break
    return found


# ------------------------------------------------------------------------------- the engine


@dataclass(frozen=True)
class OfflineReply:
    """What the engine chose, and why (for tests, logs and debugging)."""

    intent: str
    text: str
    language: Language
    similarity: float  # best similarity of the learner's message to the chosen intent's examples
    confidence: float = 0.0  # probability of the chosen move (0 for a forced fallback)
    margin: float = 0.0  # its lead over the second most likely move
    slots: Mapping[str, str] = field(default_factory=dict)


_MEANINGFUL = re.compile(r"[\w\u3040-\u30ff\u3400-\u9fff]")
# A chunk ends after Japanese sentence or clause punctuation, or after English punctuation
# that is followed by a space. The pattern covers every character, so chunks join back exactly.
_CHUNK = re.compile(r".+?(?:[。！？!?、…]+[」』）)]*|[.,!?;:]+(?=\s)|$)\s*", re.S)


def split_into_chunks(text: str) -> list[str]:
    """Split a reply at sentence and clause boundaries, for streaming."""
    pieces = [p for p in _CHUNK.findall(text) if p]
    return pieces if "".join(pieces) == text and pieces else [text]


_JAPANESE_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u9fff々ー]+")
_ENGLISH_WORD = re.compile(r"[a-z']{4,}")  # short words are mostly function words


def _terms(text: str) -> frozenset[str]:
    """Character bigrams of the Japanese and longer words of the English, for lexical overlap."""
    terms = {run[i : i + 2] for run in _JAPANESE_RUN.findall(text) for i in range(max(len(run) - 1, 1))}
    terms.update(_ENGLISH_WORD.findall(text.lower()))
    return frozenset(terms)


_FIRST_SENTENCE = re.compile(r"[^。！？!?]*[。！？!?]*")


def _opens_with_question(text: str) -> bool:
    match = _FIRST_SENTENCE.match(text.strip())
    return match is not None and bool(_QUESTION_END.search(match.group(0)))


def _has_keyword(message: str, keywords: Iterable[str], language: Language) -> bool:
    lowered = message.lower()
    return any(_contains(lowered, keyword.lower(), language) for keyword in keywords)


class _Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:  # leave unknown {placeholders} as written
        return "{" + key + "}"


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = (scores - scores.max()) / CONFIDENCE_TEMPERATURE
    exponentials = np.exp(shifted)
    probabilities: np.ndarray = exponentials / exponentials.sum()
    return probabilities


class OfflineDialogueEngine:
    """Recognises the learner's move and answers with an authored line. Needs no network."""

    info = EngineInfo(
        id="offline-retrieval",
        label="オフライン応答エンジン (multilingual-e5-small による検索型)",
        model="multilingual-e5-small",
    )

    def __init__(self, catalogue: Catalogue, embedder: Embedder | None = None) -> None:
        self._embedder = embedder or get_embedder()
        self._catalogue = catalogue
        self._index: _Index | None = None
        self._index_lock = threading.Lock()
        # Every greeting a partner returns before a line (longest first), to read the line behind it.
        self._greetings = sorted(
            {
                g
                for by_language in catalogue.personas.values()
                for p in by_language.values()
                for g in p.greetings.values()
            },
            key=len,
            reverse=True,
        )

    # The index is shared by every request; built once, on first use.
    def ensure_index(self) -> _Index:
        if self._index is None:
            with self._index_lock:
                if self._index is None:
                    self._index = _build_index(self._catalogue, self._embedder)
                    log.info("offline dialogue index ready in %.2f s", self._index.build_seconds)
        return self._index

    async def warm_up(self) -> float:
        """Build the index and load the model ahead of the first request; returns the index's seconds."""
        seconds = (await asyncio.to_thread(self.ensure_index)).build_seconds
        await self._embedder.aembed_query("warm-up")  # the e5 model loads on its first use
        return seconds

    # -- reading the conversation

    def _move_of(self, index: _Index, text: str) -> tuple[str, ReplyLine] | None:
        """The move and line a partner's turn was (None: not an authored reply)."""
        candidates = [text]
        for greeting in self._greetings:  # a line said after a returned greeting
            if text.startswith(greeting) and len(text) > len(greeting):
                candidates.append(text[len(greeting) :].lstrip())
        for candidate in candidates:
            owner = index.line_owner.get(candidate)
            if owner is not None:
                return owner
            for pattern, intent_id, line in index.templates:
                if pattern.fullmatch(candidate):
                    return intent_id, line
        return None

    def state_of(self, request: DialogueRequest, language: Language) -> DialogueState:
        """The dialogue state the history implies (and the request's time of day)."""
        index = self.ensure_index()
        partner_lines: list[str] = []
        moves: list[str | None] = []
        known: dict[str, str] = {}
        last_line: ReplyLine | None = None
        for turn in request.history:
            if turn.role == "model":
                owner = self._move_of(index, turn.text.strip())
                partner_lines.append(turn.text)
                moves.append(owner[0] if owner else None)
                last_line = owner[1] if owner else None
            else:
                for intent in self._catalogue.intents:
                    for name, value in _slots_in(turn.text, intent, language).items():
                        known.setdefault(name, value)
        time_of_day = request.time_of_day
        if time_of_day is None and request.situation:
            try:
                time_of_day = self._catalogue.situation(request.situation).time_of_day
            except KeyError:
                time_of_day = None
        last_text = partner_lines[-1] if partner_lines else ""
        return DialogueState(
            exchanges=sum(1 for t in request.history if t.role == "user"),
            partner_lines=tuple(partner_lines),
            partner_moves=tuple(moves),
            learner_lines=tuple(t.text for t in request.history if t.role == "user"),
            known_slots=known,
            last_asked=last_line.asks if last_line is not None else frozenset(),
            last_was_question=bool(_QUESTION_END.search(last_text)),
            time_of_day=time_of_day,
        )

    # -- recognising the move

    @staticmethod
    def _top_mean_per_intent(similarities: np.ndarray, rows_by_intent: tuple[np.ndarray, ...]) -> np.ndarray:
        scores = np.empty(len(rows_by_intent), dtype=np.float32)
        for position, rows in enumerate(rows_by_intent):
            best = np.sort(similarities[rows])[-TOP_EXAMPLES:]
            scores[position] = best.mean()
        return scores

    def _similarities(self, index: _Index, vector: np.ndarray) -> np.ndarray:
        """Per move, the mean of the TOP_EXAMPLES highest similarities to its examples.

        The mean of a few rather than the single best: one example that happens to sit close
        (e5 scores everything 0.8+) should not outvote a move that matches consistently."""
        return self._top_mean_per_intent(index.example_vectors @ vector, index.rows_by_intent)

    def _context_scores(self, index: _Index, vector: np.ndarray) -> np.ndarray:
        """Per move, how close the partner's last line is to it (centred)."""
        # Both views: its closeness to the move's reply lines (a partner's turn reads like a
        # reply) and to the learner examples (a question names the topic the answer is about).
        by_lines = self._top_mean_per_intent(index.line_vectors @ vector, index.line_rows_by_intent)
        by_examples = self._similarities(index, vector)
        mean: np.ndarray = (by_lines + by_examples) / 2
        centred: np.ndarray = mean - mean.mean()
        return centred

    def _recognise(
        self, index: _Index, message: str, vector: np.ndarray, language: Language, state: DialogueState
    ) -> tuple[int, float, float, float]:
        """(move position, similarity, confidence, margin); the fallback when in doubt."""
        catalogue = self._catalogue
        ids = [i.id for i in catalogue.intents]
        fallback = ids.index(FALLBACK_INTENT)
        similarities = self._similarities(index, vector)
        scores = CLASSIFIER_SCALE * (vector @ index.weights) + index.bias + SIMILARITY_WEIGHT * similarities
        keyword_hits = [_has_keyword(message, i.keywords.get(language, ()), language) for i in catalogue.intents]
        scores += KEYWORD_BONUS * np.array(keyword_hits, dtype=np.float32)
        for position, move in enumerate(ids):
            if move in _DECIDED_MOVES:
                scores[position] = -np.inf  # a decision, not a move to recognise
        if GREETING_INTENT in ids and state.greeted:
            # A second welcome in the middle of a talk is wrong unless the learner greets again.
            greeting = catalogue.intents[ids.index(GREETING_INTENT)]
            if not _has_keyword(message, greeting.keywords.get(language, ()), language):
                scores[ids.index(GREETING_INTENT)] -= REGREETING_PENALTY
        probabilities = _softmax(scores)
        answering = False  # read as the answer to the partner's question
        # A short reply right after the partner's question is read as its answer even when it
        # looks like another move on its own (「はい、行きました」 to 「週末はどこか行ったの？」).
        short_reply = state.last_was_question and len(_MEANINGFUL.findall(message)) <= SHORT_ANSWER_CHARS
        # So is a reply that gives what the question asked for (a time to "what time?", a place
        # to "where?"), however long: 「七時ごろには出られそうです。このメールを送ったら」.
        answers_it = False
        if state.partner_lines and not _QUESTION_END.search(message):
            asked = _asked_kinds(state.partner_lines[-1], index.question_kinds)
            answers_it = bool(asked & _given_kinds((message,), index.question_kinds))
        short_answer = short_reply or answers_it
        if (probabilities.max() < CONFIDENT or short_answer) and state.partner_lines:
            # The message alone is doubtful: read it as an answer to what the partner just said.
            weight = SHORT_ANSWER_CONTEXT_WEIGHT if short_answer else CONTEXT_WEIGHT
            context = weight * self._context_scores(index, self._embedder.embed_query(state.partner_lines[-1]))
            if state.last_was_question and state.last_move in ids and state.last_move not in _DECIDED_MOVES:
                # Giving exactly what was asked (a time to "when?") outweighs a keyword.
                context[ids.index(state.last_move)] += ANSWERED_BONUS if answers_it else ANSWER_BONUS
            probabilities = _softmax(scores + context)
            answering = state.last_was_question and float(probabilities.max()) >= CONFIDENT
        order = np.argsort(probabilities)[::-1]
        best, second = int(order[0]), int(order[1])
        confidence = float(probabilities[best])
        margin = confidence - float(probabilities[second])
        closest = float(similarities.max())
        # A short answer to the partner's question is on topic through the question.
        off_topic = not answering and (closest < OFF_TOPIC_FLOOR or (closest < MATCH_THRESHOLD and confidence < SURE))
        if off_topic or (confidence < MIN_CONFIDENCE and margin < DOUBT_MARGIN):
            if any(_QUESTION_END.search(part) for part in _SENTENCE.findall(message)):  # a question anywhere in it
                fallback = self._doubtful_question(ids, message, fallback)
            return fallback, float(similarities[fallback]), confidence, margin
        return best, float(similarities[best]), confidence, margin

    @staticmethod
    def _doubtful_question(ids: list[str], message: str, fallback: int) -> int:
        """The move for a question no move clearly fits, by its shape (the ids the catalogue has)."""
        for intent, shape in (
            (ASK_TIME_INTENT, _ASKS_FOR_TIME),
            (ASK_FAVOUR_INTENT, _ASKS_A_FAVOUR),
            (ASK_PERMISSION_INTENT, _ASKS_PERMISSION),
            (ASK_INSTRUCTION_INTENT, _ASKS_HOW),
        ):
            if intent in ids and shape.search(message):
                return ids.index(intent)
        # The last question asked is the one to answer: 「来週締め切りなんです。佐藤さんは最近どうですか？」
        sentences = [part for part in _SENTENCE.findall(message) if part.strip()]
        question = next((part for part in reversed(sentences) if _QUESTION_END.search(part)), message)
        if HEARD_NEWS_INTENT in ids and _BRINGS_NEWS.search(message) and not _WH_WORD.search(question):
            return ids.index(HEARD_NEWS_INTENT)
        if _OPINION_QUESTION.search(question) and QUESTION_FALLBACK_INTENT in ids:
            return ids.index(QUESTION_FALLBACK_INTENT)
        if PARTNER_HABIT_INTENT in ids and (
            _YOU_YES_NO.search(question) or (_ADDRESSEE.search(question) and not _WH_WORD.search(question))
        ):
            return ids.index(PARTNER_HABIT_INTENT)
        # "Do you know ...?" asks for a fact, not about the partner.
        about_partner = bool(_ADDRESSEE.search(question)) or (
            bool(re.search(r"\byou\b", question, re.I)) and not _KNOW_OF.search(question)
        )
        if UNKNOWN_FACT_INTENT in ids and not about_partner:
            return ids.index(UNKNOWN_FACT_INTENT)
        if QUESTION_FALLBACK_INTENT in ids:
            return ids.index(QUESTION_FALLBACK_INTENT)
        return fallback

    def choose_reply(self, request: DialogueRequest) -> OfflineReply:
        """Pick the reply (blocking: it embeds; call from a worker thread in async code)."""
        index = self.ensure_index()
        catalogue = self._catalogue
        language: Language = request.language or detect_language(request.message)
        message = request.message.strip()
        state = self.state_of(request, language)
        fallback_position = [i.id for i in catalogue.intents].index(FALLBACK_INTENT)

        vector = self._embedder.embed_query(message) if message else None
        confidence = margin = similarity = 0.0
        if vector is None or len(_MEANINGFUL.findall(message)) < MIN_MEANINGFUL_CHARS:
            position = fallback_position
        else:
            # 「部長、お疲れさまです。だいぶ暖かくなってきましたね。」 is about the weather: the move is
            # read from what follows an opening greeting (the greeting is returned below), unless
            # that is a short pleasantry the moves do not know (「おはようございます、今日も一日
            # がんばりましょう」 is a greeting as a whole).
            greeting, rest = split_greeting(message)
            reading = None
            if greeting and len(_MEANINGFUL.findall(rest)) >= MIN_MEANINGFUL_CHARS:
                rest_vector = self._embedder.embed_query(rest)
                reading = self._recognise(index, rest, rest_vector, language, state)
                pleasantry = len(_MEANINGFUL.findall(rest)) <= PLEASANTRY_CHARS
                if pleasantry and catalogue.intents[reading[0]].id in _DECIDED_MOVES:
                    reading = None
                else:
                    vector = rest_vector
            if reading is None:
                reading = self._recognise(index, message, vector, language, state)
            position, similarity, confidence, margin = reading
        intent = catalogue.intents[position]
        slots = _slots_in(message, intent, language)
        text = self._choose_line(index, intent, request, language, vector, state, slots)
        text = self._return_greeting(message, intent.id, text, request, language, state)
        return OfflineReply(
            intent=intent.id,
            text=text,
            language=language,
            similarity=similarity,
            confidence=round(confidence, 3),
            margin=round(margin, 3),
            slots=slots,
        )

    # -- choosing the line

    def _return_greeting(
        self,
        message: str,
        intent_id: str,
        text: str,
        request: DialogueRequest,
        language: Language,
        state: DialogueState,
    ) -> str:
        """A message that opens with a greeting and goes on to something else gets the greeting
        back before the answer: 「おはようございます。昨日の件ですが…」 -> 「おはようございます。…」."""
        if intent_id in (GREETING_INTENT, FALLBACK_INTENT) or GREETING_INTENT not in [
            i.id for i in self._catalogue.intents
        ]:
            return text
        keywords = self._catalogue.intent(GREETING_INTENT).keywords.get(language, ())
        opening = re.split(r"[。！？!?.,、]", message, maxsplit=1)[0]
        if not split_greeting(message)[0] and not (opening and _has_keyword(opening, keywords, language)):
            return text
        greetings = self._catalogue.persona(request.partner, language).greetings
        time_of_day = self._time_of_day(message, state) or "daytime"
        greeting = greetings.get(time_of_day, "")
        already = [g for g in greetings.values() if g] + list(keywords)
        head = text[:16].lower()
        if not greeting or any(_contains(head, g.lower().rstrip("!！。. "), language) for g in already):
            return text
        return f"{greeting}{'' if language == 'ja' else ' '}{text}"

    def _time_of_day(self, message: str, state: DialogueState) -> TimeOfDay | None:
        for pattern, time_of_day in _TIME_GREETINGS:
            if pattern.search(message):
                return time_of_day  # the learner's own greeting says what time it is for them
        return state.time_of_day

    def _choose_line(
        self,
        index: _Index,
        intent: Intent,
        request: DialogueRequest,
        language: Language,
        vector: np.ndarray | None,
        state: DialogueState,
        slots: Mapping[str, str],
    ) -> str:
        persona = self._catalogue.persona(request.partner, language)
        known = {**state.known_slots, **slots}
        values = _Placeholders(partner_name=request.persona_name or persona.name, **slots)
        time_of_day = self._time_of_day(request.message, state)

        # What the learner just told (this message and the one before it) is not asked again.
        given = _given_kinds((request.message, *state.learner_lines[-1:]), index.question_kinds)
        learner_words = " ".join((request.message, *state.learner_lines)).lower()

        def usable(line: ReplyLine) -> bool:
            return (
                line.fits(request.situation)
                and (not line.times or time_of_day in line.times)
                and (line.phase is None or line.phase == state.phase)
                and line.needs <= slots.keys()  # only the learner's words of this message fill a line
                and not (line.asks & known.keys())  # never ask what the learner already said
                and not (line.without & known.keys())
                and not (index.asked_kinds.get(line.text, frozenset()) & given)
                # a line about a meeting, a client, slides... only once the learner mentioned one
                and (not line.mentions or any(_contains(learner_words, w.lower(), language) for w in line.mentions))
            )

        every = intent.replies[request.partner][language]
        lines = [line for line in every if usable(line)]
        if not lines:
            # Every line asks something already told: a general line that asks nothing new, else
            # any general line (the loader guarantees one).
            general = [line for line in every if line.is_general]
            lines = [line for line in general if not (index.asked_kinds.get(line.text, frozenset()) & given)] or general

        def render(line: ReplyLine) -> str:
            return line.text.format_map(values)

        def last_said(line: ReplyLine) -> int:
            rendered = render(line)
            return max((i for i, text in enumerate(state.partner_lines) if rendered in text), default=-1)

        unused = [line for line in lines if last_said(line) < 0]
        if not unused:
            # Everything was said already: repeat the line said longest ago.
            return render(min(lines, key=last_said))

        # Lines written for exactly this moment (this situation, time of day or phase, the
        # learner's own words in a slot, a thing this message names) first; within each group, the
        # closest to what the learner said.
        message_terms = _terms(request.message)
        said_now = request.message.lower()

        # A question to the partner ("which pasta do you like?") wants their answer more than an
        # echo of its own words, so there a slot line is not preferred for using them.
        asked_partner = bool(_QUESTION_END.search(request.message))

        def relevance(line: ReplyLine) -> tuple[bool, bool, float]:
            score = float(index.text_vectors[line.text] @ vector) if vector is not None else 0.0
            if message_terms:
                score += LEXICAL_WEIGHT * len(message_terms & _terms(line.text)) / len(message_terms)
            echoes = bool(line.needs) and not asked_partner
            # A line that reacts before it asks comes before one that opens with a question: after
            # a statement the learner wants a reaction, after a question an answer, not a
            # question back (「週末は何してたんですか？」 to 「週末は家で寝てました」).
            reacts_first = not _opens_with_question(line.text)
            names_it = any(_contains(said_now, word.lower(), language) for word in line.mentions)
            return reacts_first, bool(line.situations or line.times or line.phase or echoes or names_it), score

        ranked = sorted(unused, key=relevance, reverse=True)
        if request.temperature <= 0:
            return render(ranked[0])
        rng = random.Random(_stable_seed(request.message, len(request.history)))
        return render(rng.choice(ranked[:RANDOM_TOP_LINES]))

    async def reply(self, request: DialogueRequest) -> OfflineReply:
        return await asyncio.to_thread(self.choose_reply, request)

    async def stream_reply(self, request: DialogueRequest) -> AsyncIterator[ReplyChunk]:
        chosen = await self.reply(request)
        pieces = split_into_chunks(chosen.text)
        for piece in pieces[:-1]:
            yield ReplyChunk(text=piece)
            await asyncio.sleep(0)  # let the transport flush each chunk
        yield ReplyChunk(text=pieces[-1], final=True, finish_reason="STOP")


def dialogue_cli(argv: Iterable[str] | None, catalogue_of: Callable[[Path | None], Catalogue], prog: str) -> None:
    """`build-index` (embed every authored text and train the move classifier into the cache)
    and `ask MESSAGE` (print the reply), for the catalogue `catalogue_of` returns."""
    parser = argparse.ArgumentParser(prog=prog)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-index", help="embed every authored text into the embedding cache")
    build.add_argument(
        "folder", type=Path, nargs="?", help="a content folder (characters.yaml, situations.yaml, intents.yaml)"
    )
    ask = sub.add_parser("ask", help="print the reply to one message")
    ask.add_argument("message")
    ask.add_argument("--folder", type=Path)
    ask.add_argument("--partner", default="colleague")
    ask.add_argument("--situation", default="break")
    args = parser.parse_args(list(argv) if argv is not None else None)
    catalogue = catalogue_of(args.folder.resolve() if args.folder else None)
    if args.command == "build-index":
        started = time.perf_counter()
        count = write_embedding_cache(catalogue)
        print(f"wrote {count} vectors to {catalogue.cache_path} in {time.perf_counter() - started:.1f} s")
    else:
        engine = OfflineDialogueEngine(catalogue)
        request = DialogueRequest(
            system_instruction="", message=args.message, partner=args.partner, situation=args.situation
        )
        chosen = engine.choose_reply(request)
        print(f"[{chosen.intent} {chosen.similarity:.3f}] {chosen.text}")


def _folder_catalogue(folder: Path | None) -> Catalogue:
    if folder is None:
        raise SystemExit("name the content folder (it holds characters.yaml, situations.yaml, intents.yaml)")
    return load_catalogue(folder)


if __name__ == "__main__":
    dialogue_cli(None, _folder_catalogue, "python -m workplace_kit.ai.offline_dialogue")
