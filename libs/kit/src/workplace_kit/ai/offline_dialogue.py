"""Offline dialogue engine: the default when no Gemini key is set.

It does not generate text. It retrieves: the learner's message is embedded with
multilingual-e5-small and compared with authored example utterances to find what the
learner is doing (greeting, talking about the weekend, apologising, ...); the partner then
answers with an authored line for that intent, in the partner's register (colleague, senior,
boss) and the learner's language. Every line was written by hand, so the Japanese is natural
and the register is right; the price is a finite repertoire, which is why the engine says
plainly what it is (``info.label``).

The engine holds no content. The characters, situations and lines are content files owned by
the service that serves them (today services/chat/src/chat_service/content/), read by
``load_catalogue(folder)`` and handed to the engine:
    characters.yaml   who the partners are (ids, names, role, register) per language
    situations.yaml   the free-chat situations and each partner's opening line
    intents.yaml      what a learner may say (examples) and each partner's replies
Embedding the ~200 examples and ~350 reply lines takes several seconds on two cores, so the
vectors are cached beside them in embedding_cache.npz (rebuilt with
``python -m workplace_kit.ai.offline_dialogue build-index FOLDER``); texts missing from the
cache (lines edited since) are embedded at first use, and a unit test fails while it is stale.
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
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml

from workplace_kit.ai.embeddings import Embedder, get_embedder
from workplace_kit.ai.language import detect_language
from workplace_kit.ai.types import DialogueRequest, EngineInfo, Partner, ReplyChunk

log = logging.getLogger(__name__)

Language = Literal["ja", "en"]
LANGUAGES: tuple[Language, ...] = ("ja", "en")
FALLBACK_INTENT = "fallback"
CACHE_FILE = "embedding_cache.npz"

# e5 similarities are compressed (unrelated sentences still score ~0.80), so the threshold
# sits just above what gibberish and off-topic text reach against the examples.
MATCH_THRESHOLD = 0.845
# Intent score = mean similarity of the message to this many closest examples of the intent.
TOP_EXAMPLES = 3
# How much the partner's last line pulls the choice of intent towards its topic; weaker than
# the learner's own message, enough to settle a short answer such as "映画を見ました".
CONTEXT_WEIGHT = 0.5
# Reply lines that reuse the learner's own words ("おはよう" -> "おはようございます！...") rank
# higher by this much times the share of the message's terms they contain; e5 alone ranks
# lines of one intent only loosely.
LEXICAL_WEIGHT = 0.06
# With temperature > 0, the reply is drawn from this many best-ranked unused lines.
RANDOM_TOP_LINES = 2
# Fewer meaningful characters than this is too little to understand ("あ", "?", "ok").
MIN_MEANINGFUL_CHARS = 2


class CatalogueError(ValueError):
    """The authored dialogue data is malformed; the message says where."""


@dataclass(frozen=True)
class Situation:
    id: str
    title_ja: str
    title_en: str
    description_ja: str
    description_en: str = ""

    def title(self, language: Language) -> str:
        return self.title_ja if language == "ja" else self.title_en


@dataclass(frozen=True)
class Persona:
    partner: Partner
    language: Language
    name: str  # fills {partner_name}
    full_name: str
    role: str
    register: str  # how the partner speaks: for writers, and for an LLM's system instruction
    style_notes: str


@dataclass(frozen=True)
class ReplyLine:
    text: str
    situations: frozenset[str] = frozenset()  # empty: every situation

    def fits(self, situation: str) -> bool:
        return not self.situations or situation in self.situations


@dataclass(frozen=True)
class Intent:
    id: str
    examples: Mapping[Language, tuple[str, ...]]
    replies: Mapping[Partner, Mapping[Language, tuple[ReplyLine, ...]]]


@dataclass(frozen=True)
class Character:
    """A partner the learner can talk to, with its label in each language (for pickers)."""

    id: str
    labels: Mapping[Language, str]


@dataclass(frozen=True)
class Catalogue:
    folder: Path  # where the content files (and the embedding cache) are
    characters: tuple[Character, ...]
    situations: tuple[Situation, ...]
    openers: Mapping[str, Mapping[Partner, Mapping[Language, str]]]
    personas: Mapping[Partner, Mapping[Language, Persona]]
    intents: tuple[Intent, ...]

    @property
    def partners(self) -> tuple[Partner, ...]:
        return tuple(c.id for c in self.characters)

    @property
    def cache_path(self) -> Path:
        return self.folder / CACHE_FILE

    def situation(self, situation_id: str) -> Situation:
        for situation in self.situations:
            if situation.id == situation_id:
                return situation
        known = ", ".join(s.id for s in self.situations)
        raise KeyError(f"unknown situation {situation_id!r} (known: {known})")

    def persona(self, partner: Partner, language: Language = "ja") -> Persona:
        """Name, role and speaking style of a partner in one language."""
        if partner not in self.personas:
            raise KeyError(f"unknown partner {partner!r} (known: {', '.join(self.personas)})")
        if language not in LANGUAGES:
            raise KeyError(f"unknown language {language!r} (known: ja, en)")
        return self.personas[partner][language]

    def opening_line(self, situation_id: str, partner: Partner, language: Language = "ja") -> str:
        """What the partner says first in a situation ("" if none is authored)."""
        self.situation(situation_id)  # raises for an unknown id
        return self.openers[situation_id][partner].get(language, "")

    def intent(self, intent_id: str) -> Intent:
        for intent in self.intents:
            if intent.id == intent_id:
                return intent
        raise KeyError(intent_id)

    def all_texts(self) -> list[str]:
        """Every text the index embeds (examples and reply lines), without duplicates."""
        seen: dict[str, None] = {}
        for intent in self.intents:
            for language in LANGUAGES:
                for text in intent.examples[language]:
                    seen.setdefault(text, None)
            for by_language in intent.replies.values():
                for lines in by_language.values():
                    for line in lines:
                        seen.setdefault(line.text, None)
        return list(seen)


# ---------------------------------------------------------------- loading the authored data


def _read_yaml(folder: Path, name: str) -> Any:
    path = folder / name
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogueError(f"cannot read {path}: {exc}") from exc


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise CatalogueError(f"{where}: missing '{key}'")
    return mapping[key]


def _parse_line(raw: Any, where: str) -> ReplyLine:
    if isinstance(raw, str):
        return ReplyLine(raw.strip())
    if isinstance(raw, dict):
        situations = raw.get("situations") or []
        return ReplyLine(str(_require(raw, "text", where)).strip(), frozenset(map(str, situations)))
    raise CatalogueError(f"{where}: a reply must be a string or a mapping with 'text'")


def _parse_intents(raw: Any, partners: tuple[Partner, ...]) -> tuple[Intent, ...]:
    if not isinstance(raw, dict) or not raw:
        raise CatalogueError("intents.yaml: expected a mapping of intent id -> definition")
    intents = []
    for intent_id, body in raw.items():
        where = f"intents.yaml:{intent_id}"
        examples_raw = _require(body, "examples", where)
        replies_raw = _require(body, "replies", where)
        examples: dict[Language, tuple[str, ...]] = {}
        for language in LANGUAGES:
            texts = _require(examples_raw, language, f"{where}.examples")
            if not texts:
                raise CatalogueError(f"{where}.examples.{language}: no examples")
            examples[language] = tuple(str(t).strip() for t in texts)
        replies: dict[Partner, dict[Language, tuple[ReplyLine, ...]]] = {}
        unknown = set(replies_raw) - set(partners) if isinstance(replies_raw, dict) else set()
        if unknown:
            raise CatalogueError(f"{where}.replies: no such character {sorted(unknown)} in characters.yaml")
        for partner in partners:
            by_language = _require(replies_raw, partner, f"{where}.replies")
            replies[partner] = {}
            for language in LANGUAGES:
                lines_where = f"{where}.replies.{partner}.{language}"
                raw_lines = _require(by_language, language, f"{where}.replies.{partner}")
                lines = tuple(_parse_line(r, lines_where) for r in raw_lines)
                if not any(not line.situations for line in lines):
                    raise CatalogueError(f"{lines_where}: needs at least one line for every situation")
                replies[partner][language] = lines
        intents.append(Intent(str(intent_id), examples, replies))
    if FALLBACK_INTENT not in {i.id for i in intents}:
        raise CatalogueError(f"intents.yaml: the '{FALLBACK_INTENT}' intent is required")
    return tuple(intents)


@lru_cache(maxsize=8)
def load_catalogue(folder: Path) -> Catalogue:
    """Parse characters.yaml, situations.yaml and intents.yaml in `folder` (once per process).
    Every error names the file and the field that is wrong."""
    folder = Path(folder)
    characters_raw = _read_yaml(folder, "characters.yaml")
    if not isinstance(characters_raw, dict) or not characters_raw:
        raise CatalogueError("characters.yaml: expected a mapping of character id -> languages")
    characters: list[Character] = []
    personas: dict[Partner, dict[Language, Persona]] = {}
    for partner, by_language in characters_raw.items():
        partner = str(partner)
        personas[partner] = {}
        labels: dict[Language, str] = {}
        for language in LANGUAGES:
            p = _require(by_language, language, f"characters.yaml:{partner}")
            where = f"characters.yaml:{partner}.{language}"
            personas[partner][language] = Persona(
                partner=partner,
                language=language,
                name=str(_require(p, "name", where)),
                full_name=str(p.get("full_name", p["name"])),
                role=str(_require(p, "role", where)),
                register=str(_require(p, "register", where)),
                style_notes=str(p.get("style_notes", "")),
            )
            labels[language] = str(_require(p, "label", where))
        characters.append(Character(partner, labels))
    partners = tuple(c.id for c in characters)

    situations_raw = _read_yaml(folder, "situations.yaml")
    if not isinstance(situations_raw, list):
        raise CatalogueError("situations.yaml: expected a list")
    situations = []
    openers: dict[str, dict[Partner, dict[Language, str]]] = {}
    for s in situations_raw:
        where = f"situations.yaml:{s.get('id', '?') if isinstance(s, dict) else '?'}"
        situation = Situation(
            id=str(_require(s, "id", where)),
            title_ja=str(_require(s, "title_ja", where)),
            title_en=str(_require(s, "title_en", where)),
            description_ja=str(_require(s, "description_ja", where)),
            description_en=str(s.get("description_en", "")),
        )
        situations.append(situation)
        raw_openers = s.get("openers") or {}
        unknown = set(raw_openers) - set(partners)
        if unknown:
            raise CatalogueError(f"{where}.openers: no such character {sorted(unknown)} in characters.yaml")
        openers[situation.id] = {
            partner: {lang: str(text) for lang, text in raw_openers.get(partner, {}).items()} for partner in partners
        }
    intents = _parse_intents(_read_yaml(folder, "intents.yaml"), partners)
    return Catalogue(folder, tuple(characters), tuple(situations), openers, personas, intents)


# ------------------------------------------------------------------------- the vector index


@dataclass(frozen=True)
class _Index:
    example_vectors: np.ndarray  # (n_examples, 384)
    example_intent: np.ndarray  # (n_examples,) index into catalogue.intents
    rows_by_intent: tuple[np.ndarray, ...]  # per intent, its rows in example_vectors
    line_vectors: np.ndarray  # (n_lines, 384): every reply line of every partner and language
    line_rows_by_intent: tuple[np.ndarray, ...]  # per intent, its rows in line_vectors
    text_vectors: Mapping[str, np.ndarray]  # every example and reply line -> (384,)
    build_seconds: float


def _read_cache(path: Path, model_version: str) -> dict[str, np.ndarray]:
    if not path.exists():
        return {}
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["model_version"]) != model_version:
                log.warning("embedding cache %s is for %s, not %s: ignored", path, data["model_version"], model_version)
                return {}
            return {str(t): v.astype(np.float32) for t, v in zip(data["texts"], data["vectors"], strict=True)}
    except (OSError, KeyError, ValueError) as exc:
        log.warning("embedding cache %s unreadable (%s): ignored", path, exc)
        return {}


def write_embedding_cache(catalogue: Catalogue, embedder: Embedder | None = None) -> int:
    """Embed every authored text and store the vectors beside the content; returns how many."""
    embedder = embedder or get_embedder()
    texts = catalogue.all_texts()
    path = catalogue.cache_path
    vectors = embedder.embed_passages(texts)
    # float16 halves the file; cosine scores move by < 1e-3.
    np.savez_compressed(
        path,
        model_version=np.array(embedder.model_version),
        texts=np.array(texts),
        vectors=vectors.astype(np.float16),
    )
    return len(texts)


def _build_index(catalogue: Catalogue, embedder: Embedder) -> _Index:
    started = time.perf_counter()
    cached = _read_cache(catalogue.cache_path, embedder.model_version)
    texts = catalogue.all_texts()
    missing = [t for t in texts if t not in cached]
    if missing:
        log.warning(
            "embedding %d dialogue texts missing from %s; run "
            "`python -m workplace_kit.ai.offline_dialogue build-index %s` to refresh it",
            len(missing),
            catalogue.cache_path,
            catalogue.folder,
        )
        cached.update(zip(missing, embedder.embed_passages(missing), strict=True))
    text_vectors = {t: cached[t] / max(float(np.linalg.norm(cached[t])), 1e-12) for t in texts}
    rows, owners = [], []
    for position, intent in enumerate(catalogue.intents):
        for language in LANGUAGES:
            for text in intent.examples[language]:
                rows.append(text_vectors[text])
                owners.append(position)
    line_rows, line_owners = [], []
    for position, intent in enumerate(catalogue.intents):
        for by_language in intent.replies.values():
            for lines in by_language.values():
                for line in lines:
                    line_rows.append(text_vectors[line.text])
                    line_owners.append(position)
    positions = range(len(catalogue.intents))
    return _Index(
        example_vectors=np.stack(rows).astype(np.float32),
        example_intent=np.array(owners),
        rows_by_intent=tuple(np.flatnonzero(np.array(owners) == p) for p in positions),
        line_vectors=np.stack(line_rows).astype(np.float32),
        line_rows_by_intent=tuple(np.flatnonzero(np.array(line_owners) == p) for p in positions),
        text_vectors=text_vectors,
        build_seconds=time.perf_counter() - started,
    )


# ------------------------------------------------------------------------------- the engine


@dataclass(frozen=True)
class OfflineReply:
    """What the engine chose, and why (for tests, logs and debugging)."""

    intent: str
    text: str
    language: Language
    similarity: float  # best similarity of the learner's message to the chosen intent's examples


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


class _Placeholders(dict[str, str]):
    def __missing__(self, key: str) -> str:  # leave unknown {placeholders} as written
        return "{" + key + "}"


def _stable_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


class OfflineDialogueEngine:
    """Retrieval over authored lines, chosen with multilingual-e5-small. Needs no network."""

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

    @staticmethod
    def _top_mean_per_intent(similarities: np.ndarray, rows_by_intent: tuple[np.ndarray, ...]) -> np.ndarray:
        scores = np.empty(len(rows_by_intent), dtype=np.float32)
        for position, rows in enumerate(rows_by_intent):
            best = np.sort(similarities[rows])[-TOP_EXAMPLES:]
            scores[position] = best.mean()
        return scores

    def _intent_scores(self, index: _Index, vector: np.ndarray) -> np.ndarray:
        """Per intent, the mean of the TOP_EXAMPLES highest similarities to its examples.

        The mean of a few rather than the single best: one example that happens to sit close
        (e5 scores everything 0.8+) should not outvote an intent that matches consistently."""
        return self._top_mean_per_intent(index.example_vectors @ vector, index.rows_by_intent)

    def _context_scores(self, index: _Index, vector: np.ndarray) -> np.ndarray:
        """Per intent, how close the partner's last line is to it."""
        # Both views: its closeness to the intent's reply lines (a partner's turn reads like a
        # reply) and to the learner examples (a question names the topic the answer is about).
        by_lines = self._top_mean_per_intent(index.line_vectors @ vector, index.line_rows_by_intent)
        by_examples = self._intent_scores(index, vector)
        mean: np.ndarray = (by_lines + by_examples) / 2
        return mean

    def choose_reply(self, request: DialogueRequest) -> OfflineReply:
        """Pick the reply (blocking: it embeds; call from a worker thread in async code)."""
        index = self.ensure_index()
        catalogue = self._catalogue
        language: Language = request.language or detect_language(request.message)
        message = request.message.strip()
        intent_ids = [i.id for i in catalogue.intents]
        fallback_position = intent_ids.index(FALLBACK_INTENT)

        message_vector = self._embedder.embed_query(message) if message else None
        if message_vector is None or len(_MEANINGFUL.findall(message)) < MIN_MEANINGFUL_CHARS:
            position, similarity = fallback_position, 0.0
        else:
            message_scores = self._intent_scores(index, message_vector)
            combined = message_scores.copy()
            last_model_turn = next((t.text for t in reversed(request.history) if t.role == "model"), "")
            if last_model_turn.strip():
                context_scores = self._context_scores(index, self._embedder.embed_query(last_model_turn))
                # Centred, so the context only shifts intents relative to each other.
                combined += CONTEXT_WEIGHT * (context_scores - context_scores.mean())
            position = int(np.argmax(combined))
            similarity = float(message_scores[position])
            if float(message_scores.max()) < MATCH_THRESHOLD:
                position = fallback_position
                similarity = float(message_scores[fallback_position])

        intent = catalogue.intents[position]
        text = self._choose_line(index, intent, request, language, message_vector)
        return OfflineReply(intent=intent.id, text=text, language=language, similarity=similarity)

    def _choose_line(
        self,
        index: _Index,
        intent: Intent,
        request: DialogueRequest,
        language: Language,
        message_vector: np.ndarray | None,
    ) -> str:
        persona = self._catalogue.persona(request.partner, language)
        values = _Placeholders(partner_name=request.persona_name or persona.name)
        lines = [line for line in intent.replies[request.partner][language] if line.fits(request.situation)]
        said = [t.text for t in request.history if t.role == "model"]

        def render(line: ReplyLine) -> str:
            return line.text.format_map(values)

        def last_said(line: ReplyLine) -> int:
            rendered = render(line)
            return max((i for i, text in enumerate(said) if rendered in text), default=-1)

        unused = [line for line in lines if last_said(line) < 0]
        if not unused:
            # Everything was said already: repeat the line said longest ago.
            return render(min(lines, key=last_said))

        # Lines closest to what the learner said first; situation-specific lines get a nudge
        # because they were written for exactly this moment.
        message_terms = _terms(request.message)

        def relevance(line: ReplyLine) -> float:
            score = float(index.text_vectors[line.text] @ message_vector) if message_vector is not None else 0.0
            if message_terms:
                score += LEXICAL_WEIGHT * len(message_terms & _terms(line.text)) / len(message_terms)
            return score + (0.02 if line.situations else 0.0)

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


def _main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workplace_kit.ai.offline_dialogue")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-index", help=f"embed every authored text into FOLDER/{CACHE_FILE}")
    build.add_argument("folder", type=Path, help="the content folder (characters.yaml, situations.yaml, intents.yaml)")
    ask = sub.add_parser("ask", help="print the reply to one message")
    ask.add_argument("folder", type=Path)
    ask.add_argument("message")
    ask.add_argument("--partner", default="colleague")
    ask.add_argument("--situation", default="break")
    args = parser.parse_args(list(argv) if argv is not None else None)
    catalogue = load_catalogue(args.folder.resolve())
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


if __name__ == "__main__":
    _main()
