"""The offline coaching report: scores come from the conversation (the same one scores the
same, a better one scores higher), each with the learner's own turns as evidence."""

from __future__ import annotations

import pytest
from feedback_service.coaching.report import LearnerTurn, build_report
from workplace_content import content

SCENARIO = content().scenario("decline-overtime")


def turns(*items: tuple[str, str, str]) -> list[LearnerTurn]:
    return [LearnerTurn(n, text, move, verdict) for n, (text, move, verdict) in enumerate(items)]


GOOD_JA = turns(
    (
        "お忙しいところ申し訳ありません。今夜は家族の用事があるので、19時には出なければならないんです。",
        "decline_with_reason",
        "ok",
    ),
    ("なるほど、明日の10時の会議に必要ということですね。何ページくらいありますか？", "ask_details", "ok"),
    ("でしたら、明日の朝8時に来て、9時半までに仕上げるのはいかがでしょうか。", "offer_alternative", "ok"),
)
POOR_JA = turns(
    ("無理です。", "refuse_flatly", "too_direct"),
    ("は？自分でやればいいじゃないですか", "rude", "rude"),
    ("わかりました、やります", "give_in", "ok"),
)
GOOD_EN = turns(
    ("I'm sorry, but I have a family commitment tonight, so I need to leave by seven.", "decline_with_reason", "ok"),
    ("I see. So you mean the meeting is at ten tomorrow? How many slides are there?", "ask_details", "ok"),
    ("How about I come in at 8 tomorrow and finish it by 9:30?", "offer_alternative", "ok"),
)
POOR_EN = turns(("No way, not my job.", "refuse_flatly", "too_direct"), ("Whatever, do it yourself.", "rude", "rude"))


@pytest.mark.parametrize(("good", "poor", "language"), [(GOOD_JA, POOR_JA, "ja"), (GOOD_EN, POOR_EN, "en")])
def test_a_better_conversation_scores_higher_on_every_count(good, poor, language) -> None:
    better, worse = build_report(good, language, SCENARIO), build_report(poor, language, SCENARIO)
    assert better.overall > worse.overall + 1
    for high, low in zip(better.skills, worse.skills, strict=True):
        assert high.score > low.score or high.score == low.score == 5, (high, low)
    assert {c.id: c.status for c in better.criteria} == {
        "cushion": "met",
        "reason": "met",
        "alternative": "met",
        "clear_answer": "met",
    }
    # A flat "no" is at least a clear answer; the rest was missed.
    assert {c.id: c.status for c in worse.criteria if c.id != "clear_answer"} == {
        "cushion": "missed",
        "reason": "missed",
        "alternative": "missed",
    }
    politeness = {s.id: s for s in worse.skills}["politeness"]
    assert politeness.score == 1 and not politeness.evidence[0].positive


def test_the_same_conversation_gets_the_same_report() -> None:
    assert build_report(GOOD_JA, "ja", SCENARIO) == build_report(list(reversed(GOOD_JA)), "ja", SCENARIO)


def test_every_score_cites_the_learners_own_words_and_says_what_it_means() -> None:
    report = build_report(POOR_JA, "ja", SCENARIO)
    texts = {t.text for t in POOR_JA}
    for skill in report.skills:
        assert skill.meaning and 1 <= skill.score <= 5
        assert all(e.quote in texts for e in skill.evidence)
        if skill.score <= 3:
            assert skill.advice and skill.better_phrasing
    alternative = {c.id: c for c in report.criteria}["alternative"]
    assert alternative.status == "missed" and alternative.evidence[0].quote == "無理です。"
    # The better phrasing is a good response in this very scenario, not a generic tip.
    assert alternative.better_phrasing in SCENARIO.moves["offer_alternative"].examples.ja
    assert report.try_next and "代わりの案" in " ".join(report.try_next)
    assert report.summary.startswith("急な残業の依頼を断る（3ターン）")


def test_free_chat_is_reported_on_the_skills_alone() -> None:
    report = build_report(
        turns(
            ("おはようございます！週末は何をしていたんですか？", "", "ok"),
            ("なるほど、いいですね。ありがとうございます", "", "ok"),
        ),
        "ja",
    )
    assert report.criteria == () and report.scenario_id == ""
    skills = {s.id: s.score for s in report.skills}
    assert skills["listening"] >= 4 and skills["politeness"] == 5
    assert report.summary.startswith("雑談練習")


def test_a_skill_with_no_sign_at_all_is_not_shown_yet_rather_than_bad() -> None:
    report = build_report(turns(("はい", "", "ok")), "ja")
    structure = {s.id: s for s in report.skills}["structure"]
    assert structure.score == 2 and structure.meaning == "まだ見られなかった" and structure.evidence == ()
