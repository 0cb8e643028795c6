"""The conversation-quality set (bench/conversation_quality) is well-formed: every label is one the
engines know, or is marked as an intent that does not exist yet. No accuracy thresholds here."""

from __future__ import annotations

from pathlib import Path

import yaml
from chat_service.app import chat_catalogue
from workplace_kit.emotions import EMOTIONS

SET = Path(__file__).resolve().parents[2] / "bench" / "conversation_quality"
CATALOGUE = chat_catalogue()
INTENTS = {intent.id for intent in CATALOGUE.intents}
SITUATIONS = {situation.id for situation in CATALOGUE.situations}
LANGUAGES = {"ja", "en"}
TIMES = {"morning", "afternoon", "evening"}


def load(name: str):
    return yaml.safe_load((SET / name).read_text(encoding="utf-8"))


def check_intent(label: dict, where: str) -> None:
    if label.get("missing_intent"):
        assert label["intent"] not in INTENTS, f"{where}: {label['intent']} exists; drop missing_intent"
    else:
        assert label["intent"] in INTENTS, f"{where}: unknown intent {label['intent']} (mark missing_intent: true)"


def check_setting(item: dict, where: str) -> None:
    assert item["language"] in LANGUAGES, where
    assert item["partner"] in CATALOGUE.partners, where
    assert item["situation"] in SITUATIONS, where
    assert item["time_of_day"] in TIMES, where


def test_messages_are_labelled_with_known_or_missing_intents() -> None:
    data = load("messages.yaml")
    messages = data["messages"]
    assert len(messages) >= 60
    assert len({m["id"] for m in messages}) == len(messages)
    for m in messages:
        check_setting(m, m["id"])
        check_intent(m, m["id"])
        assert m["register"] in {"keigo", "polite", "casual", "rude"}, m["id"]
        assert isinstance(m["text"], str) and m["text"].strip(), m["id"]
        assert m["cues"] and all(isinstance(cue, str) and cue for cue in m["cues"]), m["id"]
    assert {m["language"] for m in messages} == LANGUAGES
    assert {m["partner"] for m in messages} == set(CATALOGUE.partners)
    assert set(data["unclear_markers"]) == LANGUAGES


def test_conversations_have_six_learner_turns() -> None:
    conversations = load("conversations.yaml")["conversations"]
    assert len(conversations) >= 6
    for c in conversations:
        check_setting(c, c["id"])
        assert len(c["turns"]) == 6, c["id"]
        for number, turn in enumerate(c["turns"], start=1):
            assert isinstance(turn["text"], str) and turn["text"].strip(), (c["id"], number)
            check_intent(turn, f"{c['id']}#{number}")
    assert {c["language"] for c in conversations} == LANGUAGES


def test_sentences_carry_valid_polarity_emotion_and_politeness() -> None:
    sentences = load("sentences.yaml")["sentences"]
    assert len(sentences) >= 80
    for s in sentences:
        assert s["language"] in LANGUAGES, s
        assert isinstance(s["text"], str) and s["text"].strip(), s
        assert s["polarity"] in {"positive", "neutral", "negative"}, s
        assert s["emotion"] in EMOTIONS, s
        assert s["politeness"] in {"polite", "casual", "rude"}, s
        assert s.get("hard", "polite_refusal") in {
            "polite_refusal",
            "apology",
            "thanks",
            "sarcasm",
            "neutral_trigger",
            "rude",
        }, s
    assert {s["language"] for s in sentences} == LANGUAGES
    assert len({s["text"] for s in sentences}) == len(sentences)
