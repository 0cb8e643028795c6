"""The watch service's model conversation on its own: who plays the learner's part, the order
of the model learner's moves, who speaks next, and the bridge lines that take up the
learner's words. Pure functions over the shipped catalogue: no engine, no database."""

from __future__ import annotations

import pytest
from watch_service.conversation import (
    Bridges,
    ModelConversation,
    TurnView,
    default_plan,
    finished_sentence,
    first_speaker,
    load_bridges,
    load_closings,
    load_plans,
    model_learner,
    next_speaker,
    pending_intervention,
    plan_for,
    plan_problems,
    quote_of,
    seeded,
    speakers_for,
)
from workplace_content import content

CATALOGUE = content()


def play(scenario_id: str, language: str, watch_id: str = "w-1", limit: int = 30) -> list[TurnView]:
    """The offline model conversation of a scenario, as the worker produces it turn by turn."""
    scenario = CATALOGUE.scenario(scenario_id)
    conversation = ModelConversation.of(scenario)
    turns: list[TurnView] = []
    relation = CATALOGUE.character(scenario.character).relation
    for index in range(limit):
        speaker = next_speaker(turns, first_speaker(scenario))
        if speaker == "a":
            line = conversation.opening(language) if not turns else None
            line = line or conversation.reply_to(turns[-1].move, turns, language)
        elif conversation.closed(turns):
            line = conversation.closing(relation, language, seeded(watch_id, index))
        else:
            line = conversation.learner_line(turns, language, seeded(watch_id, index))
        turns.append(TurnView(speaker, line.text, move=line.move))
        if speaker == "b" and line.ends:
            return turns
    raise AssertionError(f"{scenario_id} did not end within {limit} turns")


def test_every_authored_plan_fits_its_scenario() -> None:
    plans = load_plans()
    assert plans, "data/model_plans.yaml lists no plan"
    for scenario_id, plan in plans.items():
        assert plan_problems(CATALOGUE.scenario(scenario_id), plan) == [], scenario_id


@pytest.mark.parametrize("scenario", CATALOGUE.scenarios, ids=lambda s: s.id)
def test_every_scenario_plays_as_a_model_conversation_to_its_natural_end(scenario) -> None:
    plan = plan_for(scenario)
    assert plan_problems(scenario, plan) == []
    for language in ("ja", "en"):
        turns = play(scenario.id, language)
        said = [t.move for t in turns if t.speaker_id == "b"]
        assert said == [*plan, ""], (scenario.id, language)  # the plan, then the closing line
        said = said[:-1]
        # The model learner makes good moves only, and the character answers each in turn.
        assert all(scenario.moves[m].meets and not scenario.moves[m].misses for m in said)
        answered = [t.move for t in turns if t.speaker_id == "a" and t.move]
        assert answered == said
        assert scenario.moves[answered[-1]].ends
        assert turns[0].speaker_id == ("a" if scenario.opening else "b")
        texts = [t.text for t in turns]
        assert all(texts) and len(set(texts)) == len(texts), "a line said twice"
        if scenario.opening:
            assert texts[0] == scenario.opening.get(language)


def test_decline_overtime_reads_as_authored_in_both_languages() -> None:
    scenario = CATALOGUE.scenario("decline-overtime")
    ja = play("decline-overtime", "ja")
    assert [t.speaker_id for t in ja] == ["a", "b", "a", "b", "a", "b", "a", "b"]
    assert ja[1].text == "申し訳ありません、今日は家族の用事があって19時には出ないといけないんです。"
    assert ja[2].text == scenario.moves["decline_with_reason"].replies.ja[0]
    assert ja[-2].text == scenario.moves["offer_alternative"].replies.ja[0]
    assert ja[-1].text in load_closings().lines["polite"]["ja"]  # the learner owes the manager politeness
    en = play("decline-overtime", "en")
    assert en[1].text == "I'm sorry, but I have a family commitment tonight and need to leave by seven."
    assert en[-3].text.startswith("Could I come in at eight tomorrow")
    assert play("decline-shift-swap", "ja")[-1].text in load_closings().lines["casual"]["ja"]  # a peer


def test_the_same_dialogue_id_always_plays_the_same_lines() -> None:
    assert [t.text for t in play("decline-extra-task", "ja", "w-7")] == [
        t.text for t in play("decline-extra-task", "ja", "w-7")
    ]


def test_the_default_plan_is_the_good_moves_in_file_order_then_the_ending() -> None:
    scenario = CATALOGUE.scenario("decline-overtime")
    assert default_plan(scenario) == ("decline_with_reason", "ask_details", "offer_alternative")
    # An authored plan wins; one that does not fit the scenario is ignored.
    assert plan_for(scenario, {"decline-overtime": ("offer_alternative",)}) == ("offer_alternative",)
    assert plan_for(scenario, {"decline-overtime": ("give_in",)}) == default_plan(scenario)
    assert plan_problems(scenario, ("offer_alternative", "decline_with_reason")) == [
        "decline-overtime: the plan's last move must end the scenario",
        "decline-overtime: 'offer_alternative' ends the scenario before the plan does",
    ]


def test_the_model_learner_is_a_fitting_character_never_named_in_the_scenario() -> None:
    # A manager's scenario: a colleague of the learner's level shows how.
    assert model_learner(CATALOGUE.scenario("decline-overtime"), CATALOGUE).id == "colleague"
    # 佐藤 is the scenario's character there: the next candidate.
    assert model_learner(CATALOGUE.scenario("decline-shift-swap"), CATALOGUE).id != "colleague"
    # Reverse role: the learner is the senior.
    assert model_learner(CATALOGUE.scenario("praise-specifically"), CATALOGUE).id == "senior"
    for scenario in CATALOGUE.scenarios:
        learner = model_learner(scenario, CATALOGUE)
        assert learner.id != scenario.character
        for language in ("ja", "en"):
            name = learner.persona(language).name
            lines = [line for move in scenario.moves.values() for line in move.examples.get(language)]
            assert not any(name in line for line in lines), (scenario.id, name)
    a, b = speakers_for(CATALOGUE.scenario("decline-overtime"), CATALOGUE, "ja")
    assert (a.id, a.display_name, a.character_id) == ("a", "鈴木 課長", "section_manager")
    assert a.persona.startswith("課長（直属の上司）。急いでいて")
    assert (b.id, b.display_name, b.character_id) == ("b", "佐藤 美咲", "colleague")
    assert b.persona == "入社3年目の担当者（お手本）"
    a_en, b_en = speakers_for(CATALOGUE.scenario("decline-overtime"), CATALOGUE, "en")
    assert a_en.display_name == "Section Manager Suzuki" and b_en.display_name == "Misaki Sato"


def test_who_speaks_next() -> None:
    a, b = TurnView("a", "x"), TurnView("b", "y")
    assert next_speaker([], "a") == "a" and next_speaker([], "b") == "b"
    assert next_speaker([a], "a") == "b" and next_speaker([a, b], "a") == "a"
    learner = TurnView("", "z", intervention=True)
    assert next_speaker([a, b, learner], "a") == "a"  # the character answers first
    assert next_speaker([a, learner], "a") == "a"
    assert next_speaker([a, TurnView("", "z", intervention=True, addressed_to="b")], "a") == "b"
    # After the character answered the learner, the model learner takes it up.
    assert next_speaker([a, learner, TurnView("a", "r")], "a") == "b"
    assert pending_intervention([a, learner, TurnView("a", "r")], "b") == learner
    assert pending_intervention([a, learner, TurnView("a", "r")], "a") is None
    assert pending_intervention([a, learner, TurnView("a", "r"), TurnView("b", "s")], "b") is None
    assert first_speaker(CATALOGUE.scenario("ask-senior-when-stuck")) == "b"  # no opening line


@pytest.mark.parametrize(
    ("text", "language", "quote"),
    [
        ("明日の朝やります。", "ja", "明日の朝やります"),
        ("「無理です」", "ja", "無理です"),
        ("明日の朝8時に来て、会議までに仕上げるのはいかがでしょうか", "ja", "明日の朝8時に来て…"),
        (
            "申し訳ありませんが本日はどうしても外せない予定がございまして残業はできかねます",
            "ja",
            "申し訳ありませんが本日はどうしても外せない予定が…",
        ),
        (
            "申し訳ありません、今日は子どもの迎えがあって残れないんです",
            "ja",
            "今日は子どもの迎えがあって残れないんです",
        ),
        (
            "すみません、今日は子どもの迎えがあって残れないんです",
            "ja",
            "すみません、今日は子どもの迎えがあって残れないんです",
        ),
        ("I can do it tomorrow morning.", "en", "I can do it tomorrow morning"),
        (
            "Could I come in at eight tomorrow and have it ready before the meeting?",
            "en",
            "Could I come in at eight tomorrow…",
        ),
        ('  "No way."  ', "en", "No way"),
    ],
)
def test_the_quote_is_the_start_of_the_learners_words(text: str, language: str, quote: str) -> None:
    assert quote_of(text, language) == quote


def test_a_bridge_takes_up_the_learners_words_by_how_the_scenario_reads_them() -> None:
    scenario = CATALOGUE.scenario("decline-overtime")
    conversation = ModelConversation.of(scenario)
    assert Bridges.kind_of(scenario, "offer_alternative") == "good"
    assert Bridges.kind_of(scenario, "refuse_flatly") == "poor"
    assert Bridges.kind_of(scenario, "fallback") == "other" and Bridges.kind_of(scenario, "") == "other"
    bridges = load_bridges()
    for kind in ("good", "poor", "other"):
        for language in ("ja", "en"):
            variants = bridges.lines[kind][language]
            assert len(variants) >= 3 and all("{quote}" in v for v in variants), (kind, language)
    good = TurnView("", "明日の朝に仕上げるのはどうでしょう", intervention=True, move="offer_alternative")
    line = conversation.bridge(good, "ja", seeded("w", 3))
    assert "「明日の朝に仕上げるのはどうでしょう」" in line and line in {
        v.format(quote="明日の朝に仕上げるのはどうでしょう") for v in bridges.lines["good"]["ja"]
    }
    poor = TurnView("", "No way, I'm going home.", intervention=True, move="refuse_flatly")
    assert '"No way, I\'m going home"' in conversation.bridge(poor, "en", seeded("w", 3))
    assert conversation.bridge(poor, "en", seeded("w", 3)) in {
        v.format(quote="No way, I'm going home") for v in bridges.lines["poor"]["en"]
    }


def test_after_the_learner_made_a_move_the_model_learner_does_not_make_it_again() -> None:
    scenario = CATALOGUE.scenario("decline-overtime")
    conversation = ModelConversation.of(scenario)
    turns = [
        TurnView("a", scenario.opening.ja),
        TurnView("", "すみません、今夜は予定があって残れません", intervention=True, move="decline_with_reason"),
        TurnView("a", scenario.moves["decline_with_reason"].replies.ja[0], move="decline_with_reason"),
    ]
    assert conversation.next_move(turns) == "ask_details"
    # A step the learner cut in on before the character answered it is taken again, in other words.
    interrupted = [
        TurnView("a", scenario.opening.ja),
        TurnView(
            "b",
            "申し訳ありません、今日は家族の用事があって19時には出ないといけないんです。",
            move="decline_with_reason",
        ),
        TurnView("", "何時まで残ればいいんですか", intervention=True, move="ask_details"),
        TurnView("a", scenario.moves["ask_details"].replies.ja[0], move="ask_details"),
    ]
    assert conversation.next_move(interrupted) == "offer_alternative"
    assert conversation.next_move(interrupted[:2]) == "ask_details"
    plan_only = ModelConversation(scenario, ("offer_alternative",))
    restated = plan_only.learner_line(
        [TurnView("b", plan_only.learner_line([], "ja", seeded("w", 0)).text, move="offer_alternative")],
        "ja",
        seeded("w", 2),
    )
    assert restated.move == "offer_alternative"
    assert restated.text == scenario.moves["offer_alternative"].examples.ja[1] + "。"
    # A move answered before gets the character's next line the second time.
    assert (
        conversation.reply_to("decline_with_reason", turns, "ja").text
        == (scenario.moves["decline_with_reason"].replies.ja[1])
    )


def test_a_learner_line_gets_its_closing_full_stop() -> None:
    assert finished_sentence("明日の朝やります", "ja") == "明日の朝やります。"
    assert finished_sentence("いかがでしょうか？", "ja") == "いかがでしょうか？"
    assert finished_sentence("I can stay until six", "en") == "I can stay until six."
    assert finished_sentence("Could I?", "en") == "Could I?"
