"""The register checker, the feedback card, and the card's way through the domain, the proto, the
HTTP answer and the web page's card."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from feedback_service.coaching.card import FeedbackCard, build_card
from feedback_service.coaching.register import RegisterChecker, level_of, load_rules
from feedback_service.coaching.register_ja import masu_stem, te_form
from feedback_service.domain import FeedbackService, to_proto
from feedback_service.emotion.types import EmotionResult
from feedback_service.http_api import to_out
from feedback_service.repository import TurnAnalysis
from feedback_service.settings import FeedbackSettings
from jinja2 import Environment, FileSystemLoader, select_autoescape
from web_service.ui_text import TEXT
from web_service.views import feedback_view
from workplace.events.v1 import events_pb2
from workplace_kit.bus import Envelope, Handled

WEB_TEMPLATES = Path(__file__).resolve().parents[2] / "services" / "web" / "src" / "web_service" / "templates"


@pytest.fixture(scope="module")
def checker() -> RegisterChecker:
    return RegisterChecker()


# --------------------------------------------------------------------------- Japanese


@pytest.mark.parametrize(
    ("text", "better"),
    [
        ("明日休みたいんだけど", "明日お休みをいただきたいのですが、よろしいでしょうか。"),
        ("資料送って", "資料をお送りいただけますか。"),
        ("これ、確認して", "これ、ご確認いただけますか。"),
        ("昨日の件、もう終わったよ", "昨日の件、もう終わりました。"),
        ("部長も行く？", "部長もいらっしゃいますか？"),
        ("今日の会議、出れない", "今日の会議、出られません。"),
        ("ありがとう！", "ありがとうございます！"),
        ("了解っす", "承知しました。"),
    ],
)
def test_casual_japanese_to_the_boss_is_too_casual_with_a_keigo_phrasing(checker, text, better):
    check = checker.check(text, "ja", "boss")
    assert check.verdict == "too_casual"
    assert check.better_phrasing == better
    assert check.register_expected == "丁寧語・尊敬語・謙譲語"
    assert check.reasons and all(r.endswith("。") for r in check.reasons)


def test_the_reason_quotes_the_learners_words_and_the_suggestion(checker):
    check = checker.check("資料送って", "ja", "boss")
    assert "「資料送って」" in check.reasons[0] and "お送りいただけますか" in check.reasons[0]


@pytest.mark.parametrize(
    "text",
    [
        "明日お休みをいただきたいのですが、よろしいでしょうか。",
        "申し訳ありません、会議に少し遅れます。",
        "お疲れ様です。報告書を提出しました。",
        "急ぎの案件が一件入ったので、先に対応します。",  # plain before ので is fine in polite speech
        "お返事が遅くなり、失礼いたしました。",
    ],
)
def test_polite_japanese_to_the_boss_is_ok(checker, text):
    check = checker.check(text, "ja", "boss")
    assert check.verdict == "ok", check
    assert check.better_phrasing == "" and check.reasons == ()
    assert check.strengths  # keigo or です・ます noticed


def test_a_colleague_may_be_spoken_to_casually_but_not_with_heavy_keigo(checker):
    assert checker.check("資料送ってくれる？", "ja", "colleague").verdict == "ok"
    assert checker.check("今日のお昼、ラーメン行かない？", "ja", "colleague").verdict == "ok"
    check = checker.check("恐れ入りますが、ペンをお貸しいただけますでしょうか。", "ja", "colleague")
    assert check.verdict == "too_formal"
    assert check.better_phrasing == "ペンを貸してもらえますか？"
    assert "同僚" in check.reasons[0]
    # The same words to the boss are just right.
    assert checker.check("恐れ入りますが、ペンをお貸しいただけますでしょうか。", "ja", "boss").verdict == "ok"


def test_a_senior_expects_desu_masu_but_no_honorifics(checker):
    check = checker.check("先輩、これどうやるの？", "ja", "senior")
    assert check.verdict == "too_casual" and check.better_phrasing == "先輩、これどうやるんですか？"
    assert checker.check("先輩、昨日はありがとうございました。", "ja", "senior").verdict == "ok"


@pytest.mark.parametrize(
    ("text", "partner"),
    [
        ("は？", "boss"),
        ("うるさいな、後でやるって言ってるだろ。", "colleague"),
        ("自分でやれよ", "boss"),
        ("ほんと使えないな。", "senior"),
    ],
)
def test_rudeness_is_flagged_whoever_the_partner_is(checker, text, partner):
    check = checker.check(text, "ja", partner)
    assert check.verdict == "rude" and check.reasons


def test_ha_to_the_boss_gets_a_way_to_ask_again(checker):
    assert "もう一度" in checker.check("は？何それ", "ja", "boss").better_phrasing
    assert checker.check("自分でやれよ", "ja", "boss").better_phrasing == "自分でやっていただけますか。"


def test_ganbare_is_encouragement_not_a_command(checker):
    assert checker.check("明日のプレゼン、頑張れ！", "ja", "colleague").verdict == "ok"


@pytest.mark.parametrize(
    ("base", "ctype", "stem", "te"),
    [
        ("送る", "五段・ラ行", "送り", "送って"),
        ("押す", "五段・サ行", "押し", "押して"),
        ("行く", "五段・カ行促音便", "行き", "行って"),
        ("書く", "五段・カ行イ音便", "書き", "書いて"),
        ("飲む", "五段・マ行", "飲み", "飲んで"),
        ("見る", "一段", "見", "見て"),
        ("する", "サ変・スル", "し", "して"),
        ("来る", "カ変・来ル", "来", "来て"),
        ("いらっしゃる", "五段・ラ行特殊", "いらっしゃい", "いらっしゃって"),
    ],
)
def test_conjugation_from_the_base_form(base, ctype, stem, te):
    assert masu_stem(base, ctype) == stem
    assert te_form(base, ctype) == te


# --------------------------------------------------------------------------- English


def test_a_bare_command_to_the_boss_is_too_casual_and_could_you_is_ok(checker):
    check = checker.check("Send me the report.", "en", "boss")
    assert check.verdict == "too_casual"
    assert check.better_phrasing == "Could you send me the report when you have a moment?"
    assert "Could you" in check.reasons[0]
    ok = checker.check("Could you send me the report when you have a moment?", "en", "boss")
    assert ok.verdict == "ok" and ok.strengths and "could you" in ok.strengths[0]
    assert checker.check("Please send me the file.", "en", "boss").verdict == "ok"
    # To a teammate the bare command is fine.
    assert checker.check("Send me the file when you get a chance.", "en", "colleague").verdict == "ok"


@pytest.mark.parametrize(
    ("text", "better"),
    [
        ("I need you to check this.", "Could you check this when you have a moment?"),
        ("Nope, can't do it.", "I'm afraid I can't do it."),
        ("I'm gonna be late.", "I'm going to be late."),
        ("Hey, wanna grab lunch?", "Would you like to grab lunch?"),
    ],
)
def test_direct_or_slangy_english_to_the_boss_gets_a_softer_phrasing(checker, text, better):
    check = checker.check(text, "en", "boss")
    assert check.verdict == "too_casual" and check.better_phrasing == better


def test_english_rudeness_and_over_formality(checker):
    assert checker.check("Are you stupid? I told you this yesterday.", "en", "colleague").verdict == "rude"
    assert checker.check("Whatever. Not my problem.", "en", "boss").verdict == "rude"
    check = checker.check(
        "I would be most grateful if you could kindly pass me the stapler at your earliest convenience.",
        "en",
        "colleague",
    )
    assert check.verdict == "too_formal" and check.better_phrasing == "Could you pass me the stapler?"


def test_partners_map_to_levels_and_unknown_roles_are_treated_as_superiors():
    rules = load_rules()
    assert [level_of(p, rules) for p in ("colleague", "senior", "boss", "client", "取引先", "")] == [
        "peer",
        "senior",
        "superior",
        "superior",
        "superior",
        "superior",
    ]


# --------------------------------------------------------------------------- the card


def emotion(language: str = "ja", dominant: str = "neutral") -> EmotionResult:
    return EmotionResult(language, dominant, {}, 0.0, "offline:test", "落ち着いた、感情を抑えた発言です。")


def test_card_for_a_casual_message_says_what_to_change_and_what_to_say(checker):
    card = build_card(emotion(), checker.check("資料送って", "ja", "boss"))
    assert card.verdict == "too_casual"
    assert card.did_well == "用件が短く、はっきり伝わります。"  # from the feeling: no keigo to praise
    assert "依頼の形" in card.to_change
    assert card.better_phrasing == "資料をお送りいただけますか。"
    assert card.register_expected == "丁寧語・尊敬語・謙譲語"


def test_card_for_a_message_in_the_right_register_praises_it_and_changes_nothing(checker):
    card = build_card(emotion("ja", "liking"), checker.check("ありがとうございます、助かりました。", "ja", "boss"))
    assert card.verdict == "ok" and card.to_change == "" and card.better_phrasing == ""
    assert "敬語" in card.did_well
    en = build_card(emotion("en", "joy"), checker.check("Good morning! How was your weekend?", "en", "boss"))
    assert en.verdict == "ok" and en.did_well == "Your positive feeling comes through clearly."


def test_card_from_a_model_answer_is_checked():
    assert FeedbackCard.from_dict({"verdict": "friendly"}) is None
    card = FeedbackCard.from_dict(
        {
            "verdict": "ok",
            "did_well": " Good\n  tone. ",
            "to_change": "x",
            "better_phrasing": "y",
            "register_expected": "e",
        }
    )
    assert card == FeedbackCard("ok", "Good tone.", "", "", "e")  # nothing to change when ok


# --------------------------------------------------------------------------- domain, proto, HTTP, web


@dataclass
class MemoryRepository:
    analyses: dict[uuid.UUID, TurnAnalysis] = field(default_factory=dict)
    events: list[events_pb2.FeedbackReady] = field(default_factory=list)
    handled: set[str] = field(default_factory=set)

    async def already_handled(self, consumer: str, event_id: str) -> bool:
        return event_id in self.handled

    async def record_handled(self, consumer: str, event_id: str) -> None:
        self.handled.add(event_id)

    async def exists(self, turn_id: uuid.UUID) -> bool:
        return turn_id in self.analyses

    async def store(self, analysis: TurnAnalysis, *, consumer: str, event_id: str, event, ordering_key: str):
        self.handled.add(event_id)
        self.analyses[analysis.turn_id] = analysis
        self.events.append(event)
        return analysis


class NeutralAnalyser:
    engine = "offline:test"

    async def analyse(self, text: str, language: str | None = None) -> EmotionResult:
        return emotion(language or "ja")


async def test_a_turn_to_the_boss_gets_its_card_in_the_event_the_store_and_the_http_answer():
    repository = MemoryRepository()
    service = FeedbackService(FeedbackSettings(), repository, NeutralAnalyser(), lambda: None)  # type: ignore[arg-type]
    event = events_pb2.ConversationTurn(
        event_id=str(uuid.uuid4()),
        session_id=str(uuid.uuid4()),
        user_id="u1",
        source_service="chat",
        user_turn_id=str(uuid.uuid4()),
        learner_text="明日休みたいんだけど",
        language="ja",
        partner="boss",
    )
    envelope = Envelope("m1", event.event_id, {}, 1, datetime.now(UTC), event.session_id)
    assert await service.handle_turn(event, envelope) is Handled.OK

    (ready,) = repository.events
    wire = events_pb2.FeedbackReady.FromString(ready.SerializeToString())
    assert wire.analysis.card.verdict == "too_casual"
    assert wire.analysis.card.better_phrasing == "明日お休みをいただきたいのですが、よろしいでしょうか。"
    assert wire.analysis.summary == "落ち着いた、感情を抑えた発言です。"  # the tone line stays

    (stored,) = repository.analyses.values()
    body = json.loads(to_out(stored).model_dump_json())
    assert body["card"] == {
        "verdict": "too_casual",
        "did_well": "用件が短く、はっきり伝わります。",
        "to_change": stored.result.card.to_change if stored.result.card else "",
        "better_phrasing": "明日お休みをいただきたいのですが、よろしいでしょうか。",
        "register_expected": "丁寧語・尊敬語・謙譲語",
    }


def test_an_analysis_from_before_cards_has_no_card_anywhere():
    old = emotion()
    assert not to_proto(old).HasField("card")
    analysis = TurnAnalysis(uuid.uuid4(), uuid.uuid4(), "u1", "chat", 0, "やあ", old, datetime.now(UTC))
    assert to_out(analysis).card is None
    assert feedback_view("t1", "やあ", to_proto(old))["coaching"] is None


def render_card(view: dict, lang: str = "ja") -> str:
    env = Environment(loader=FileSystemLoader(WEB_TEMPLATES), autoescape=select_autoescape(["html"]))
    return env.get_template("_feedback_card.html").render(card=view, t=TEXT[lang])


def test_the_web_card_shows_the_coaching_in_japanese_and_escapes_the_learners_words():
    result = EmotionResult(
        "ja",
        "neutral",
        {},
        0.0,
        "offline:mlask+oseti",
        "落ち着いた発言です。",
        card=FeedbackCard(
            "too_casual",
            "用件ははっきりしています。",
            "です・ますで話しましょう。",
            "<b>資料</b>をお送りいただけますか。",
            "丁寧語",
        ),
    )
    html = render_card(feedback_view("t1", "<b>資料</b>送って", to_proto(result)))
    assert (
        "くだけすぎ" in html
        and "よかった点：" in html
        and "直すとよい点：" in html
        and "こう言ってみましょう：" in html
    )
    assert "&lt;b&gt;資料&lt;/b&gt;をお送りいただけますか。" in html and "<b>" not in html
    assert 'lang="ja"' in html
    english = render_card(feedback_view("t1", "Send it", to_proto(result), "en"), "en")
    assert "Too casual" in english and "Try this:" in english


@pytest.mark.parametrize(
    ("text", "language", "verdict"),
    [
        ("その資料、今日中に送って（笑）", "ja", "too_casual"),
        ("資料送ってw", "ja", "too_casual"),
        ("資料送って😊", "ja", "too_casual"),
        ("承知しました（確認済み）", "ja", "ok"),
        ("Send me the report (asap)", "en", "too_casual"),
        ("I will send it now", "en", "ok"),  # a word ending in w is not an aside
    ],
)
def test_a_closing_aside_does_not_hide_the_register(text: str, language: str, verdict: str) -> None:
    assert RegisterChecker().check(text, language, "boss").verdict == verdict


# --------------------------------------------------------------------------- too_direct: refusals, leave


@pytest.mark.parametrize(
    ("text", "noun", "better"),
    [
        ("残業はできません。", "残業", "申し訳ありませんが、残業は難しいです。明日の朝でもよろしいでしょうか。"),
        ("この仕事はできません。", "この仕事", "申し訳ありませんが、この仕事は難しいです。"),
        ("部長、参加できません。", "参加", "部長、申し訳ありませんが、参加は難しいです。"),
        ("今日の飲み会には行けません。", "飲み会", None),
    ],
)
def test_a_blunt_refusal_to_the_boss_is_too_direct_with_a_cushioned_phrasing_that_keeps_its_noun(
    checker, text, noun, better
):
    check = checker.check(text, "ja", "boss")
    assert check.verdict == "too_direct", check
    assert check.better_phrasing.startswith(("申し訳ありませんが、", "部長、申し訳ありませんが、"))
    assert noun in check.better_phrasing and "できません" not in check.better_phrasing
    assert "行けません" not in check.better_phrasing
    if better is not None:
        assert check.better_phrasing == better
    # what to add, named: the cushion, and the reason and alternative that are missing
    assert "クッション言葉" in check.reasons[0] and "理由" in check.reasons[0] and "代案" in check.reasons[0]
    assert "「申し訳ありませんが」" in check.reasons[0]


def test_muri_desu_to_the_boss_becomes_muzukashii_and_the_card_says_what_to_add(checker):
    check = checker.check("無理です。", "ja", "boss")
    assert check.verdict == "too_direct"
    assert check.better_phrasing == "申し訳ありませんが、今回は難しいです。"
    card = build_card(emotion(), check)
    assert card.verdict == "too_direct" and "クッション言葉" in card.to_change
    assert card.better_phrasing == "申し訳ありませんが、今回は難しいです。"
    assert "断れています" not in card.did_well  # nothing softened: no praise for softening
    # a cushion does not make 無理 soft to a boss; the advice is then about the word
    cushioned = checker.check("すみません、無理です。", "ja", "boss")
    assert cushioned.verdict == "too_direct" and "難しいです" in cushioned.reasons[0]
    assert cushioned.better_phrasing == "すみません、今回は難しいです。"


def test_a_reason_without_a_cushion_is_still_too_direct_to_the_boss_and_keeps_the_reason(checker):
    check = checker.check("今日は用事があるので、残業はできません。", "ja", "boss")
    assert check.verdict == "too_direct"
    assert check.better_phrasing == "申し訳ありませんが、今日は用事があるので、残業は難しいです。"
    assert "理由" not in check.reasons[0].split("言い切ると")[1]  # the reason was given: not asked for


@pytest.mark.parametrize(
    ("text", "praise"),
    [
        ("申し訳ありません、今日は外せない用事があって残業は難しいです。", ["申し訳ありません", "理由"]),
        ("すみませんが、今日は残業ができません。明日の朝でもよろしいでしょうか。", ["すみません", "代案"]),
        ("あいにくその日は出張で、会議には出られません。", ["あいにく", "理由"]),
    ],
)
def test_a_cushioned_refusal_to_the_boss_is_ok_and_the_card_praises_the_cushion(checker, text, praise):
    check = checker.check(text, "ja", "boss")
    assert check.verdict == "ok", check
    card = build_card(emotion(), check)
    assert "クッション言葉" in card.did_well and all(p in card.did_well for p in praise), card.did_well


def test_a_bare_refusal_is_fine_to_a_colleague_and_needs_one_softener_for_a_senior(checker):
    for text in ("無理です。", "残業はできないよ。", "明日休みます。"):
        assert checker.check(text, "ja", "colleague").verdict == "ok", text
    senior = checker.check("できません。", "ja", "senior")
    assert senior.verdict == "too_direct" and senior.better_phrasing == "すみません、今回は難しいです。"
    assert "先輩" in senior.reasons[0]
    assert checker.check("すみません、今日は予定があるので手伝えません。", "ja", "senior").verdict == "ok"
    assert checker.check("来週の金曜日は休みます。", "ja", "senior").verdict == "ok"  # a senior does not grant leave


@pytest.mark.parametrize(
    ("text", "better"),
    [
        ("明日休みます", "明日お休みをいただけますでしょうか。"),
        ("来週から休みます。", "来週からお休みをいただけますでしょうか。"),
        ("今日は早退します。", "今日は早退させていただけますでしょうか。"),
    ],
)
def test_announcing_leave_to_the_boss_is_too_direct_and_becomes_a_request(checker, text, better):
    check = checker.check(text, "ja", "boss")
    assert check.verdict == "too_direct" and check.better_phrasing == better
    assert "お願いする形" in check.reasons[0]


@pytest.mark.parametrize(
    "text",
    [
        "明日お休みをいただけますでしょうか。",
        "申し訳ありません、熱があるので今日は休みます。",  # a sick day: cushion and reason
        "パソコンが起動できません。",  # a problem report, not a refusal
        "ログインできません。",
        "週末はゆっくり休みます。",  # rest, not leave
        "毎朝の満員電車が本当に嫌です。",  # a dislike, not a refusal
    ],
)
def test_requests_reports_and_dislikes_are_not_too_direct(checker, text):
    assert checker.check(text, "ja", "boss").verdict == "ok"


def test_rudeness_and_casual_words_keep_priority_over_directness(checker):
    assert checker.check("そんなのやるわけないだろ。", "ja", "boss").verdict == "rude"
    assert checker.check("今週はちょっと忙しいから無理", "ja", "boss").verdict == "too_casual"
    assert checker.check("残業はできない。", "ja", "boss").verdict == "too_casual"
    assert checker.check("No. I won't do it, it's not my problem.", "en", "boss").verdict == "rude"
    assert checker.check("Nope, can't do it.", "en", "boss").verdict == "too_casual"


def test_a_word_inside_another_is_not_an_insult(checker):
    # あいにくその holds くそ across two words
    assert checker.check("あいにくその日は出張で、会議には出られません。", "ja", "boss").verdict == "ok"


@pytest.mark.parametrize(
    ("text", "better"),
    [
        ("I can't.", "I'm afraid I can't. Could we find another way?"),
        ("No, I won't do that.", "I'm afraid I won't be able to do that. Could we find another way?"),
        ("No. I can't do overtime today.", "I'm afraid I can't do overtime today. Could I finish it tomorrow morning?"),
        ("I'm taking Friday off.", "Would it be possible to take Friday off?"),
        ("I'm leaving early today.", "Would it be all right if I left early today?"),
    ],
)
def test_blunt_english_to_the_boss_is_too_direct_with_a_hedged_phrasing(checker, text, better):
    check = checker.check(text, "en", "boss")
    assert check.verdict == "too_direct" and check.better_phrasing == better
    assert check.reasons and ("softener" in check.reasons[0] or "ask your manager" in check.reasons[0])


def test_cushioned_english_refusals_are_ok_and_praised_and_reports_are_not_refusals(checker):
    check = checker.check(
        "I'm sorry, I have a prior commitment tonight, could I finish it tomorrow morning?", "en", "boss"
    )
    assert check.verdict == "ok"
    did_well = build_card(emotion("en"), check).did_well
    assert '"sorry"' in did_well and "reason" in did_well and "alternative" in did_well
    for text in (
        "I can't find the file you mentioned.",
        "I can't wait to start the new project!",
        "We can't ship until QA signs off.",  # a constraint, not a refusal
        "I'm off to the client meeting now.",  # going out, not a day off
    ):
        assert checker.check(text, "en", "boss").verdict == "ok", text
    assert checker.check("I can't.", "en", "colleague").verdict == "ok"
    assert checker.check("I'm taking Friday off.", "en", "colleague").verdict == "ok"
    senior = checker.check("I can't.", "en", "senior")
    assert senior.verdict == "too_direct" and senior.better_phrasing.startswith("Sorry, I can't.")


def test_the_web_card_labels_too_direct_in_both_languages():
    result = EmotionResult(
        "ja",
        "neutral",
        {},
        0.0,
        "offline:mlask+oseti",
        "落ち着いた発言です。",
        card=FeedbackCard(
            "too_direct",
            "丁寧です。",
            "クッション言葉を添えましょう。",
            "申し訳ありませんが、今回は難しいです。",
            "丁寧語",
        ),
    )
    view = feedback_view("t1", "無理です。", to_proto(result))
    assert view["coaching"] is not None and view["coaching"]["verdict"] == "too_direct"
    html = render_card(view)
    assert "ストレートすぎ" in html and "verdict-too_direct" in html
    assert "Too direct" in render_card(feedback_view("t1", "I can't.", to_proto(result), "en"), "en")
    assert FeedbackCard.from_dict({"verdict": "too_direct", "did_well": "x"}) is not None


def test_warui_is_an_apology_only_on_its_own() -> None:
    checker = RegisterChecker()
    described = checker.check("体調が悪いので、今日は早退させてください", "ja", "boss")
    assert described.verdict == "ok" and "申し訳ありませんので" not in described.better_phrasing
    apologised = checker.check("悪い、遅れた", "ja", "boss")
    assert apologised.verdict == "too_casual" and apologised.better_phrasing.startswith("申し訳ありません")
