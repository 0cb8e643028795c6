"""What to notice in a watched dialogue: the phrase rules (data/phrases.yaml) quote the clause a
phrase is in and say why it works; the scenario's criteria name what a move does; the summary
is one or two sentences in the dialogue's language."""

from __future__ import annotations

import pytest
from watch_service.conversation import TurnView
from watch_service.notes import build_notes, clause_around, load_phrase_checker
from workplace_content import content

SCENARIO = content().scenario("decline-overtime")


@pytest.mark.parametrize(
    ("text", "language", "kinds", "phrase"),
    [
        ("恐れ入りますが、明日の朝でもよろしいでしょうか。", "ja", {"cushion"}, "恐れ入りますが"),
        ("お手すきの際に、ご確認いただけますか。", "ja", {"cushion", "register"}, "お手すきの際に"),
        (
            "来週月曜の午前中なら時間が取れるので、そこで入力するのはいかがでしょうか",
            "ja",
            {"structure"},
            "そこで入力するのはいかがでしょうか",
        ),
        ("結論から申し上げます。東和物産の案件は失注しました。", "ja", {"structure"}, "結論から申し上げます"),
        ("お気持ちはよくわかります。", "ja", {"empathy"}, "お気持ちはよくわかります"),
        ("Would it be possible to move the meeting to Friday?", "en", {"cushion"}, None),
        ("How about I update the figures now and fix the charts first thing tomorrow?", "en", {"structure"}, None),
        ("Thank you for telling me so early.", "en", {"thanks"}, "Thank you for telling me so early."),
    ],
)
def test_phrases_worth_copying_are_found_with_why(text, language, kinds, phrase) -> None:
    found = load_phrase_checker().phrases(text, language)
    assert kinds <= {kind for _, _, kind in found}, found
    assert all(why for _, why, _ in found)
    if phrase is not None:
        assert phrase in [p for p, _, _ in found], found
    assert len(found) <= 3


def test_a_plain_blunt_line_has_nothing_to_copy() -> None:
    assert load_phrase_checker().phrases("無理です", "ja") == []
    assert load_phrase_checker().phrases("No way", "en") == []


def test_the_clause_of_a_phrase_is_quoted_and_kept_short() -> None:
    text = "明日の朝8時に来て、会議までに仕上げるのはいかがでしょうか"
    start = text.index("いかが")
    assert clause_around(text, start, start + 3, "ja") == "会議までに仕上げるのはいかがでしょうか"
    long = "A" * 10 + "、" + "ところで本当に長い長い長い長い長い長い長い長い長い長い長い文ですがいかがでしょうか"
    assert clause_around(long, long.index("いかが"), long.index("いかが") + 3, "ja").endswith("…")
    sentence = "I'm sorry, but I have a family commitment tonight. Could I finish it tomorrow?"
    assert clause_around(sentence, sentence.index("Could"), sentence.index("Could") + 5, "en") == (
        "Could I finish it tomorrow?"
    )


def test_notes_name_the_criteria_a_model_line_meets_and_the_summary_sums_up() -> None:
    model = SCENARIO.moves["decline_with_reason"].examples.ja[0] + "。"
    proposal = SCENARIO.moves["offer_alternative"].examples.ja[0] + "。"
    turns = [
        (0, "t0", TurnView("a", SCENARIO.opening.ja)),
        (1, "t1", TurnView("b", model, move="decline_with_reason")),
        (2, "t2", TurnView("a", SCENARIO.moves["decline_with_reason"].replies.ja[0], move="decline_with_reason")),
        (3, "t3", TurnView("", "無理です", intervention=True, move="refuse_flatly")),
        (4, "t4", TurnView("b", proposal, move="offer_alternative")),
    ]
    found = build_notes(SCENARIO, turns, language="ja", learner_name="佐藤")
    criteria = [n for n in found.notes if n.kind == "criterion"]
    assert [(n.turn_index, n.turn_id, n.speaker_id) for n in criteria] == [(1, "t1", "b"), (4, "t4", "b")]
    assert "お詫びやクッション言葉で受け止めている" in criteria[0].why and criteria[0].phrase == model
    assert all(n.turn_index in (1, 4) for n in found.notes)  # the character's lines and a blunt "no": none
    assert any(n.kind == "structure" and "いかがでしょうか" in n.phrase for n in found.notes)
    assert found.learning_points == list(SCENARIO.learning_points.ja)
    assert found.summary.startswith(
        "「急な残業の依頼を断る」のお手本では、佐藤さんが「お詫びやクッション言葉で受け止めている」"
    )
    assert found.summary.count("。") <= 2

    english = build_notes(
        SCENARIO,
        [(1, "t1", TurnView("b", SCENARIO.moves["offer_alternative"].examples.en[0] + "?", move="offer_alternative"))],
        language="en",
        learner_name="Misaki",
    )
    assert english.summary.startswith('In this model of "Declining a sudden request for overtime", Misaki hits')
    assert english.notes[0].why.startswith("It does what this scene asks for: offers a concrete alternative")


def test_notes_of_a_dialogue_that_has_just_begun() -> None:
    found = build_notes(SCENARIO, [(0, "t0", TurnView("a", SCENARIO.opening.ja))], language="ja", learner_name="佐藤")
    assert found.notes == [] and "始まったばかり" in found.summary
