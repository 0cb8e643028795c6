"""The catalogue as the dialogue engine reads it: characters as a cast, a scenario as a script.

A scenario's moves become the engine's intents (examples, keywords, the character's replies);
its fallback lines the engine's fallback; its opening the situation's opener. The engine then
recognises the learner's move and answers in character exactly as in free chat.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from workplace_kit.ai.dialogue_catalogue import (
    FALLBACK_INTENT,
    LANGUAGES,
    Cast,
    Catalogue,
    Character,
    Persona,
    Situation,
    parse_intents,
)

from . import model
from .catalogue import ContentCatalogue

# What a learner types that is no move at all (gibberish, a bare "yes"): the fallback's examples,
# so that the move classifier has somewhere to put them. Shared by every scenario.
FALLBACK_EXAMPLES = {
    "ja": ("ほげほげ", "あああああ", "ｆｓｄｆｊｋ", "ｑｗｅｒｔｙ", "はい", "うーん"),
    "en": ("asdfgh jkl", "qwerty zxcv", "blah blah", "zzzz", "Yes", "hmm"),
}


# Chit-chat that leaves the scenario's topic (the weather in the middle of a deadline talk): a
# move of its own, answered with the scenario's fallback lines, which steer back. Not in the
# categories where chit-chat is the point (categories.yaml: chit_chat_fits).
OFF_TOPIC_MOVE = "off_topic"
OFF_TOPIC_EXAMPLES = {
    "ja": (
        "今日はいい天気ですね",
        "昨日のサッカーの試合、見ました？",
        "お腹すきましたね、お昼何にしようかな",
        "最近どんなドラマ見てます？",
        "好きな食べ物は何ですか？",
        "新しいスマホ買ったんですよ",
        "宝くじ当たらないかなあ",
        "週末どこか出かけました？",
        "駅前に新しいカフェができたらしいですよ",
        "最近ジムに通い始めたんです",
    ),
    "en": (
        "Nice weather today, isn't it?",
        "Did you watch the football last night?",
        "I'm starving, what should I get for lunch?",
        "Seen any good shows lately?",
        "What's your favourite food?",
        "I just got a new phone",
        "I wish I'd win the lottery",
        "Did you go anywhere this weekend?",
        "There's a new cafe near the station",
        "I started going to the gym recently",
    ),
}


def cast_of(characters: Iterable[model.Character]) -> Cast:
    kit_characters = []
    personas: dict[str, dict[str, Persona]] = {}
    for character in characters:
        personas[character.id] = {}
        for language in LANGUAGES:
            p = character.persona(language)
            personas[character.id][language] = Persona(
                partner=character.id,
                language=language,
                name=p.name,
                full_name=p.full_name,
                role=p.role,
                register=p.speaking_style,
                style_notes=" ".join(part for part in (p.personality, p.style_notes) if part),
                greetings=p.greetings.model_dump(mode="json"),
            )
        kit_characters.append(Character(character.id, {lang: character.persona(lang).label for lang in LANGUAGES}))
    return Cast(tuple(kit_characters), personas)  # type: ignore[arg-type]


def free_chat_cast(content: ContentCatalogue) -> Cast:
    """The free-chat partners (free_chat/partners.yaml), in picker order."""
    return cast_of(content.free_chat_characters)


def scenario_script(scenario: model.Scenario, content: ContentCatalogue, cache_file: Path | None = None) -> Catalogue:
    """One scenario as a catalogue the offline engine plays: one character, one situation."""
    character = content.character(scenario.character)
    cast = cast_of([character])
    raw: dict[str, Any] = {}
    for move_id, move in scenario.moves.items():
        raw[move_id] = {
            "examples": move.examples.model_dump(mode="json"),
            "keywords": move.keywords.model_dump(mode="json") if move.keywords else {},
            "replies": {character.id: move.replies.model_dump(mode="json")},
        }
    if not content.category(scenario.category).chit_chat_fits:
        raw[OFF_TOPIC_MOVE] = {
            "examples": {lang: list(texts) for lang, texts in OFF_TOPIC_EXAMPLES.items()},
            "replies": {character.id: scenario.fallback.model_dump(mode="json")},
        }
    raw[FALLBACK_INTENT] = {
        "examples": {lang: list(texts) for lang, texts in FALLBACK_EXAMPLES.items()},
        "replies": {character.id: scenario.fallback.model_dump(mode="json")},
    }
    intents = parse_intents(raw, (character.id,), source=f"scenarios/{scenario.category}/{scenario.id}.yaml")
    situation = Situation(
        id=scenario.id,
        title_ja=scenario.title.ja,
        title_en=scenario.title.en,
        description_ja=scenario.situation.ja,
        description_en=scenario.situation.en,
        time_of_day=scenario.time_of_day,
    )
    opening = scenario.opening.model_dump(mode="json") if scenario.opening else {}
    return Catalogue(
        folder=content.root / "scenarios" / scenario.category,
        characters=cast.characters,
        situations=(situation,),
        openers={scenario.id: {character.id: opening}},
        personas=cast.personas,
        intents=intents,
        cache_file=cache_file,
    )
