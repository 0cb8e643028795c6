"""Conversation quality of today's offline engines, measured on the labelled set in this folder.

    .venv/bin/python bench/conversation_quality/run.py [--json out.json]

Dialogue (messages.yaml, conversations.yaml): intent accuracy, relevance, fallback rate, clear
sentences called unclear, repeats and re-greetings. Emotion (sentences.yaml): polarity and
emotion accuracy with confusion tables. Latency per reply and per analysis. Deterministic:
replies at temperature 0. Prints figures only; it sets no thresholds and always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from chat_service.app import CONTENT
from feedback_service.emotion.offline import OfflineEmotionAnalyser
from feedback_service.emotion.tone_summary import tone_of
from workplace_content import content
from workplace_content.dialogue import free_chat_cast
from workplace_kit.ai.offline_dialogue import FALLBACK_INTENT, Catalogue, OfflineDialogueEngine, load_catalogue
from workplace_kit.ai.types import DialogueRequest, Turn
from workplace_kit.emotions import EMOTIONS

HERE = Path(__file__).resolve().parent
POLARITIES = ("positive", "neutral", "negative")
# A reply of this intent after a conversation's first turn greets (or introduces) the partner again.
GREETING_INTENTS = frozenset({"greeting"})
HESITATION_INTENT = "hesitation"


# The sets' times of day -> the engine's ("afternoon" is what the labels say).
TIMES_OF_DAY = {"morning": "morning", "afternoon": "daytime", "daytime": "daytime", "evening": "evening"}
# A reply that greets for another time of day than the learner's: (time, words that greet otherwise).
WRONG_TIME_GREETINGS = {
    "morning": ("こんばんは", "good evening", "お疲れさまでした"),
    "daytime": ("おはよう", "good morning", "こんばんは", "good evening"),
    "evening": ("おはよう", "good morning", "morning!"),
}
SET_DIR = HERE


def load_set(name: str) -> Any:
    return yaml.safe_load((SET_DIR / name).read_text(encoding="utf-8"))


def greets_at_wrong_time(text: str, time_of_day: str | None) -> bool:
    lowered = text.lower()
    return time_of_day is not None and any(w in lowered for w in WRONG_TIME_GREETINGS[time_of_day])


@dataclass
class ReplyOutcome:
    item: str
    language: str
    expected: str
    missing_intent: bool
    got: str
    text: str
    relevant: bool
    unclear: bool
    seconds: float
    wrong_time: bool = False
    confidence: float = 0.0


def percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latency_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2), "n": len(ms)}


def says_unclear(text: str, language: str, markers: dict[str, list[str]]) -> bool:
    lowered = text.lower()
    return any(marker.lower() in lowered for marker in markers[language])


def chat_like_request(
    catalogue: Catalogue, item: dict[str, Any], text: str, history: tuple[Turn, ...] = ()
) -> DialogueRequest:
    """The request chat makes for a set's item (partner, situation, language, time of day), at
    temperature 0 so the figures repeat."""
    language = item["language"]
    return DialogueRequest(
        system_instruction="",
        message=text,
        history=history,
        partner=item["partner"],
        situation=item["situation"],
        language=language,
        temperature=0,
        persona_name=catalogue.persona(item["partner"], language).name,
        time_of_day=TIMES_OF_DAY.get(item.get("time_of_day") or ""),  # type: ignore[arg-type]
    )


class DialogueBench:
    def __init__(self, catalogue: Catalogue, unclear_markers: dict[str, list[str]]) -> None:
        self.catalogue = catalogue
        self.unclear_markers = unclear_markers
        started = time.perf_counter()
        self.engine = OfflineDialogueEngine(catalogue)
        self.engine.ensure_index()
        self.index_seconds = time.perf_counter() - started

    def ask(self, item: dict[str, Any], text: str, history: tuple[Turn, ...] = ()) -> tuple[str, str, float, float]:
        request = chat_like_request(self.catalogue, item, text, history)
        started = time.perf_counter()
        chosen = self.engine.choose_reply(request)
        return chosen.intent, chosen.text, time.perf_counter() - started, chosen.confidence

    def outcome(
        self,
        item_id: str,
        item: dict[str, Any],
        label: dict[str, Any],
        got: str,
        text: str,
        s: float,
        confidence: float,
    ) -> ReplyOutcome:
        language = item["language"]
        cues = label.get("cues") or []
        relevant = got == label["intent"] or any(cue.lower() in text.lower() for cue in cues)
        return ReplyOutcome(
            item=item_id,
            language=language,
            expected=label["intent"],
            missing_intent=bool(label.get("missing_intent")),
            got=got,
            text=text,
            relevant=relevant,
            unclear=got == FALLBACK_INTENT and says_unclear(text, language, self.unclear_markers),
            seconds=s,
            wrong_time=greets_at_wrong_time(text, TIMES_OF_DAY.get(item.get("time_of_day") or "")),
            confidence=confidence,
        )

    def run_messages(self, messages: Iterable[dict[str, Any]]) -> list[ReplyOutcome]:
        outcomes = []
        for item in messages:
            got, text, seconds, confidence = self.ask(item, item["text"])
            outcomes.append(self.outcome(item["id"], item, item, got, text, seconds, confidence))
        return outcomes

    def run_conversation(self, conversation: dict[str, Any]) -> list[ReplyOutcome]:
        history: list[Turn] = []
        outcomes = []
        for number, turn in enumerate(conversation["turns"], start=1):
            got, text, seconds, confidence = self.ask(conversation, turn["text"], tuple(history))
            item_id = f"{conversation['id']}#{number}"
            outcomes.append(self.outcome(item_id, conversation, turn, got, text, seconds, confidence))
            history += [Turn(role="user", text=turn["text"]), Turn(role="model", text=text)]
        return outcomes


def intent_figures(outcomes: list[ReplyOutcome]) -> dict[str, Any]:
    def accuracy(selected: list[ReplyOutcome]) -> dict[str, Any]:
        right = sum(o.got == o.expected for o in selected)
        return {"correct": right, "n": len(selected), "percent": percent(right, len(selected))}

    return {
        "overall": accuracy(outcomes),
        "by_language": {lang: accuracy([o for o in outcomes if o.language == lang]) for lang in ("ja", "en")},
        "existing_intents_only": accuracy([o for o in outcomes if not o.missing_intent]),
        "missing_intent_share": percent(sum(o.missing_intent for o in outcomes), len(outcomes)),
        "relevance_percent": percent(sum(o.relevant for o in outcomes), len(outcomes)),
        "fallback_percent": percent(sum(o.got == FALLBACK_INTENT for o in outcomes), len(outcomes)),
        "clear_called_unclear": sum(o.unclear for o in outcomes),
        # Every message in the sets is clear: a "take your time" reply to one is patronising.
        "clear_taken_as_hesitation": sum(o.got == HESITATION_INTENT for o in outcomes),
        "wrong_time_greetings": sum(o.wrong_time for o in outcomes),
        "calibration": calibration(outcomes),
    }


def calibration(outcomes: list[ReplyOutcome]) -> list[dict[str, Any]]:
    """Accuracy per band of the engine's confidence: a calibrated engine is right more often
    when it is surer (fallback replies left out)."""
    bands = [(0.0, 0.4), (0.4, 0.6), (0.6, 0.8), (0.8, 1.01)]
    rows = []
    for low, high in bands:
        chosen = [o for o in outcomes if o.got != FALLBACK_INTENT and low <= o.confidence < high]
        right = sum(o.got == o.expected for o in chosen)
        rows.append(
            {"band": f"{low:.1f}-{min(high, 1.0):.1f}", "n": len(chosen), "percent": percent(right, len(chosen))}
        )
    return rows


def conversation_figures(by_conversation: dict[str, list[ReplyOutcome]]) -> dict[str, Any]:
    turns = sum(len(o) for o in by_conversation.values())
    repeats = regreetings = conversations_with_repeat = conversations_with_regreeting = 0
    for outcomes in by_conversation.values():
        texts = [o.text for o in outcomes]
        repeated = sum(text in texts[:i] for i, text in enumerate(texts))
        regreeted = sum(o.got in GREETING_INTENTS for o in outcomes[1:])
        repeats += repeated
        regreetings += regreeted
        conversations_with_repeat += repeated > 0
        conversations_with_regreeting += regreeted > 0
    later_turns = turns - len(by_conversation)
    return {
        "conversations": len(by_conversation),
        "turns": turns,
        "repeat_percent": percent(repeats, turns),
        "repeats": repeats,
        "conversations_with_a_repeat": conversations_with_repeat,
        "regreeting_percent": percent(regreetings, later_turns),
        "regreetings": regreetings,
        "conversations_with_a_regreeting": conversations_with_regreeting,
    }


async def analyse_all(sentences: list[dict[str, Any]]) -> tuple[list[tuple[str, float, float]], float]:
    """(dominant, polarity, seconds) per sentence, and the seconds loading the dictionaries took."""
    analyser = OfflineEmotionAnalyser()
    started = time.perf_counter()
    await analyser.warm_up()
    warm_up = time.perf_counter() - started
    results = []
    for sentence in sentences:
        started = time.perf_counter()
        result = await analyser.analyse(sentence["text"], sentence["language"])
        results.append((result.dominant, result.polarity, time.perf_counter() - started))
    return results, warm_up


def confusion(pairs: list[tuple[str, str]], labels: Sequence[str]) -> dict[str, dict[str, int]]:
    counts = Counter(pairs)
    used = [label for label in labels if any(label in pair for pair in pairs)]
    return {gold: {pred: counts[(gold, pred)] for pred in used} for gold in used}


def format_confusion(title: str, table: dict[str, dict[str, int]]) -> str:
    labels = list(table)
    width = max(len(label) for label in labels) + 1
    lines = [
        f"  {title} (rows: expected, columns: analyser)",
        "  " + " " * width + "".join(f"{lb[:5]:>6}" for lb in labels),
    ]
    for gold in labels:
        lines.append(f"  {gold:<{width}}" + "".join(f"{table[gold][pred]:>6}" for pred in labels))
    return "\n".join(lines)


def emotion_figures(sentences: list[dict[str, Any]], results: list[tuple[str, float, float]]) -> dict[str, Any]:
    polarity_pairs = [(s["polarity"], tone_of(r[1])) for s, r in zip(sentences, results, strict=True)]
    emotion_pairs = [(s["emotion"], r[0]) for s, r in zip(sentences, results, strict=True)]

    def accuracy(pairs: list[tuple[str, str]], language: str | None = None) -> dict[str, Any]:
        chosen = [p for p, s in zip(pairs, sentences, strict=True) if language in (None, s["language"])]
        right = sum(gold == pred for gold, pred in chosen)
        return {"correct": right, "n": len(chosen), "percent": percent(right, len(chosen))}

    hard_kinds = sorted({s["hard"] for s in sentences if s.get("hard")})
    by_hard = {}
    for kind in hard_kinds:
        rows = [i for i, s in enumerate(sentences) if s.get("hard") == kind]
        by_hard[kind] = {
            "n": len(rows),
            "polarity_correct": sum(polarity_pairs[i][0] == polarity_pairs[i][1] for i in rows),
            "emotion_correct": sum(emotion_pairs[i][0] == emotion_pairs[i][1] for i in rows),
        }
    return {
        "polarity": {
            "overall": accuracy(polarity_pairs),
            "by_language": {lang: accuracy(polarity_pairs, lang) for lang in ("ja", "en")},
            "confusion": confusion(polarity_pairs, POLARITIES),
        },
        "emotion": {
            "overall": accuracy(emotion_pairs),
            "by_language": {lang: accuracy(emotion_pairs, lang) for lang in ("ja", "en")},
            "confusion": confusion(emotion_pairs, EMOTIONS),
        },
        "hard_cases": by_hard,
        "politeness_labels": dict(Counter(s["politeness"] for s in sentences)),
    }


def accuracy_line(figure: dict[str, Any]) -> str:
    return f"{figure['percent']:5.1f}% ({figure['correct']}/{figure['n']})"


def print_report(report: dict[str, Any]) -> None:
    single, conv, emo = report["single_messages"], report["conversations"], report["emotion"]
    print("== Dialogue: single messages (offline retrieval engine, temperature 0)")
    print(f"  messages                       {single['overall']['n']}")
    print(f"  intent accuracy                {accuracy_line(single['overall'])}")
    for lang in ("ja", "en"):
        print(f"    {lang}                           {accuracy_line(single['by_language'][lang])}")
    print(f"    on intents that exist today  {accuracy_line(single['existing_intents_only'])}")
    print(f"  labelled with a missing intent {single['missing_intent_share']:5.1f}%")
    print(f"  relevant replies               {single['relevance_percent']:5.1f}%")
    print(f"  fallback replies               {single['fallback_percent']:5.1f}%")
    print(f"  clear sentence called unclear  {single['clear_called_unclear']}")
    print(f"  clear sentence as hesitation   {single['clear_taken_as_hesitation']}")
    print(f"  greeting for the wrong time    {single['wrong_time_greetings']}")
    bands = ", ".join(f"{row['band']}: {row['percent']:.0f}% of {row['n']}" for row in single["calibration"])
    print(f"  accuracy by confidence         {bands}")
    print("== Dialogue: six-turn conversations")
    print(f"  conversations / turns          {conv['conversations']} / {conv['turns']}")
    print(f"  intent accuracy in context     {accuracy_line(conv['intents']['overall'])}")
    print(f"  relevant replies               {conv['intents']['relevance_percent']:5.1f}%")
    print(f"  fallback replies               {conv['intents']['fallback_percent']:5.1f}%")
    print(f"  clear sentence called unclear  {conv['intents']['clear_called_unclear']}")
    print(f"  clear sentence as hesitation   {conv['intents']['clear_taken_as_hesitation']}")
    print(f"  greeting for the wrong time    {conv['intents']['wrong_time_greetings']}")
    print(
        f"  repeats                        {conv['repeat_percent']:5.1f}% of turns "
        f"({conv['repeats']}; in {conv['conversations_with_a_repeat']} conversations)"
    )
    print(
        f"  re-greetings                   {conv['regreeting_percent']:5.1f}% of turns 2-6 "
        f"({conv['regreetings']}; in {conv['conversations_with_a_regreeting']} conversations)"
    )
    print("== Emotion: labelled sentences (offline analysers)")
    print(f"  sentences                      {emo['polarity']['overall']['n']}")
    print(f"  polarity accuracy              {accuracy_line(emo['polarity']['overall'])}")
    for lang in ("ja", "en"):
        print(f"    {lang}                           {accuracy_line(emo['polarity']['by_language'][lang])}")
    print(f"  emotion accuracy               {accuracy_line(emo['emotion']['overall'])}")
    for lang in ("ja", "en"):
        print(f"    {lang}                           {accuracy_line(emo['emotion']['by_language'][lang])}")
    print("  hard cases (polarity / emotion correct of n)")
    for kind, figure in emo["hard_cases"].items():
        print(f"    {kind:<28} {figure['polarity_correct']}/{figure['n']} / {figure['emotion_correct']}/{figure['n']}")
    print(format_confusion("polarity", emo["polarity"]["confusion"]))
    print(format_confusion("emotion", emo["emotion"]["confusion"]))
    labels = ", ".join(f"{k} {v}" for k, v in sorted(emo["politeness_labels"].items()))
    print(f"  politeness labels kept for the register checker: {sum(emo['politeness_labels'].values())} ({labels})")
    print("== Latency")
    reply, analysis = report["latency"]["reply"], report["latency"]["analysis"]
    print(f"  reply     p50 {reply['p50_ms']:7.1f} ms  p95 {reply['p95_ms']:7.1f} ms  (n={reply['n']})")
    print(f"  analysis  p50 {analysis['p50_ms']:7.1f} ms  p95 {analysis['p95_ms']:7.1f} ms  (n={analysis['n']})")
    setup = report["latency"]["setup_seconds"]
    print(
        f"  setup: dialogue index (cached vectors) {setup['dialogue_index']:.1f} s, "
        f"emotion dictionaries {setup['emotion']:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write every figure and each reply to this file")
    parser.add_argument(
        "--content",
        type=Path,
        default=CONTENT,
        help="the free-chat content folder to measure (characters: the shared catalogue)",
    )
    parser.add_argument("--sets", type=Path, default=HERE, help="the folder holding the labelled sets")
    args = parser.parse_args(argv)
    global SET_DIR
    SET_DIR = args.sets

    messages_set = load_set("messages.yaml")
    conversations = load_set("conversations.yaml")["conversations"]
    sentences = load_set("sentences.yaml")["sentences"]

    catalogue = load_catalogue(args.content.resolve(), free_chat_cast(content()))
    dialogue = DialogueBench(catalogue, messages_set["unclear_markers"])
    singles = dialogue.run_messages(messages_set["messages"])
    by_conversation = {c["id"]: dialogue.run_conversation(c) for c in conversations}
    conversation_turns = [o for outcomes in by_conversation.values() for o in outcomes]

    analyses, emotion_setup = asyncio.run(analyse_all(sentences))

    report: dict[str, Any] = {
        "single_messages": intent_figures(singles),
        "conversations": {**conversation_figures(by_conversation), "intents": intent_figures(conversation_turns)},
        "emotion": emotion_figures(sentences, analyses),
        "latency": {
            "reply": latency_ms([o.seconds for o in singles + conversation_turns]),
            "analysis": latency_ms([seconds for _, _, seconds in analyses]),
            "setup_seconds": {"dialogue_index": round(dialogue.index_seconds, 2), "emotion": round(emotion_setup, 2)},
        },
    }
    print_report(report)
    if args.json:
        details = {
            "replies": [vars(o) for o in singles + conversation_turns],
            "analyses": [
                {**s, "got_emotion": dominant, "got_polarity": tone_of(polarity), "polarity_score": polarity}
                for s, (dominant, polarity, _) in zip(sentences, analyses, strict=True)
            ],
        }
        args.json.write_text(json.dumps({**report, **details}, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
