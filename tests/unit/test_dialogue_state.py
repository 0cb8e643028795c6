"""The offline engine's conversation state, slots, time of day and doubt, on a small catalogue
written here (the real content is tested in test_offline_dialogue.py), with the real e5 model."""

from __future__ import annotations

import copy
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from workplace_kit.ai.offline_dialogue import (
    CatalogueError,
    OfflineDialogueEngine,
    load_catalogue,
    time_of_day_at,
)
from workplace_kit.ai.types import DialogueRequest, Turn

CHARACTERS = {
    "colleague": {
        "ja": {
            "label": "同僚",
            "name": "佐藤",
            "role": "同僚",
            "register": "丁寧",
            "greetings": {"morning": "おはようございます！", "daytime": "お疲れさまです！"},
        },
        "en": {"label": "Colleague", "name": "Aoi", "role": "colleague", "register": "friendly"},
    },
    "boss": {
        "ja": {"label": "上司", "name": "山本", "role": "部長", "register": "丁寧語"},
        "en": {"label": "Boss", "name": "Ms. Yamamoto", "role": "director", "register": "polite"},
    },
}
SITUATIONS = [
    {"id": "morning", "title_ja": "朝", "title_en": "Morning", "description_ja": "朝。", "time_of_day": "morning"},
    {"id": "anytime", "title_ja": "いつでも", "title_en": "Any time", "description_ja": "いつでも。"},
]


def _same_lines(ja: list, en: list) -> dict:
    return {partner: copy.deepcopy({"ja": ja, "en": en}) for partner in CHARACTERS}


INTENTS = {
    "greeting": {
        "examples": {
            "ja": ["おはようございます", "こんにちは", "お疲れさまです", "はじめまして、よろしくお願いします"],
            "en": ["Good morning", "Hello there", "Hi, nice to meet you", "Good afternoon"],
        },
        "keywords": {"ja": ["おはよう", "こんにちは", "はじめまして"], "en": ["good morning", "hello", "hi"]},
        "replies": _same_lines(
            [
                {"text": "おはようございます！今朝は早いですね。", "times": ["morning"]},
                {"text": "こんばんは。遅くまでお疲れさまです。", "times": ["evening"]},
                {"text": "はじめまして、{partner_name}です。よろしくお願いします。", "phase": "opening"},
                {"text": "あ、またお会いしましたね。", "phase": "later"},
                "どうも、お疲れさまです。",
            ],
            ["Hi there.", {"text": "Good morning! You're early.", "times": ["morning"]}],
        ),
    },
    "weekend": {
        "examples": {
            "ja": [
                "週末は何をしていましたか",
                "週末は映画を見ました",
                "土曜日に釣りに行きました",
                "日曜は家で休んでいました",
            ],
            "en": ["What did you do on the weekend?", "I went hiking on Saturday", "I watched a movie on Sunday"],
        },
        "keywords": {"ja": ["週末", "土曜", "日曜"], "en": ["weekend"]},
        "slots": {
            "activity": {
                "ja": [
                    r"(?:週末|土曜日?|日曜日?)(?:は|に)(?P<activity>[^、。]{1,10}?)(?:に行きました|をしました|を見ました)"
                ],
                "en": [r"\bI went (?P<activity>[a-z]+ing)\b"],
            }
        },
        "replies": _same_lines(
            [
                {"text": "週末は何をしていたんですか？", "asks": ["activity"]},
                {"text": "{activity}ですか、いいですね！どうでした？"},
                "いい週末でしたか？",
                "週末はゆっくりできましたか？",
            ],
            [{"text": "{activity}, nice! Where did you go?"}, "Sounds like a good weekend."],
        ),
    },
    "thanks": {
        "examples": {
            "ja": ["ありがとうございます", "助かりました", "本当にありがとう"],
            "en": ["Thank you so much", "Thanks, that helped", "I appreciate it"],
        },
        "keywords": {"ja": ["ありがとう", "助かりました"], "en": ["thank you", "thanks"]},
        "replies": _same_lines(["どういたしまして。"], ["You're welcome."]),
    },
    "delay": {
        "examples": {
            "ja": [
                "資料が遅れています",
                "提出が間に合いません",
                "報告書が遅れそうです",
                "締め切りに間に合わないかもしれません",
            ],
            "en": ["The report is running late", "I can't make the deadline", "The slides will be late"],
        },
        "keywords": {"ja": ["遅れ", "間に合"], "en": ["late", "deadline"]},
        "replies": _same_lines(
            [
                "いつ頃になりそうですか？",
                {"text": "会議の前に教えてくれて助かります。", "mentions": ["会議"]},
                "わかりました。共有ありがとうございます。",
            ],
            ["When do you think it will be ready?", "Thanks for telling me."],
        ),
    },
    "fallback": {
        "examples": {"ja": ["あいうえお"], "en": ["qwerty"]},
        "replies": _same_lines(["そうなんですね。もう少し聞かせてもらえますか？"], ["I see. Tell me more?"]),
    },
}


def write_content(folder: Path, intents: dict | None = None, situations: list | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (
        ("characters.yaml", CHARACTERS),
        ("situations.yaml", situations or SITUATIONS),
        ("intents.yaml", intents or INTENTS),
    ):
        (folder / name).write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> OfflineDialogueEngine:
    folder = write_content(tmp_path_factory.mktemp("content"))
    return OfflineDialogueEngine(load_catalogue(folder))


def ask(message: str, history: tuple[Turn, ...] = (), **fields) -> DialogueRequest:
    fields.setdefault("temperature", 0)
    fields.setdefault("situation", "anytime")
    fields.setdefault("language", "ja")
    return DialogueRequest(system_instruction="", message=message, history=history, **fields)


def test_greetings_follow_the_time_of_day(engine: OfflineDialogueEngine) -> None:
    # The situation's time: a morning situation gets the morning line.
    assert (
        engine.choose_reply(ask("お疲れさまです", situation="morning")).text == "おはようございます！今朝は早いですね。"
    )
    # The request's time (chat's clock): no morning greeting in the evening.
    evening = engine.choose_reply(ask("お疲れさまです", time_of_day="evening"))
    assert evening.intent == "greeting" and "おはよう" not in evening.text
    # The learner's own greeting says what time it is for them.
    assert "おはよう" in engine.choose_reply(ask("おはようございます", time_of_day="evening")).text
    # Without any time, a time-bound line is never used.
    for message in ("お疲れさまです", "こんにちは", "どうも"):
        reply = engine.choose_reply(ask(message))
        assert "おはよう" not in reply.text and "こんばんは" not in reply.text


def test_time_of_day_at_the_boundaries() -> None:
    assert time_of_day_at(datetime(2026, 12, 2, 4, 0)) == "morning"
    assert time_of_day_at(datetime(2026, 12, 2, 10, 59)) == "morning"
    assert time_of_day_at(datetime(2026, 12, 2, 11, 0)) == "daytime"
    assert time_of_day_at(datetime(2026, 12, 2, 17, 0)) == "evening"
    assert time_of_day_at(datetime(2026, 12, 2, 2, 0)) == "evening"


def test_self_introductions_only_open_a_conversation(engine: OfflineDialogueEngine) -> None:
    first = engine.choose_reply(ask("はじめまして、よろしくお願いします"))
    assert first.text == "はじめまして、佐藤です。よろしくお願いします。"
    history = (Turn("user", "はじめまして、よろしくお願いします"), Turn("model", first.text))
    again = engine.choose_reply(ask("はじめまして", history))
    assert again.intent == "greeting" and "はじめまして" not in again.text


def test_state_reads_moves_and_slots_from_the_history(engine: OfflineDialogueEngine) -> None:
    history = (
        Turn("user", "はじめまして"),
        Turn("model", "はじめまして、佐藤です。よろしくお願いします。"),  # a rendered {partner_name} line
        Turn("user", "週末は釣りに行きました"),
        Turn("model", "週末は何をしていたんですか？"),
    )
    state = engine.state_of(ask("映画です", history), "ja")
    assert state.exchanges == 2 and state.phase == "later" and state.greeted
    assert state.partner_moves == ("greeting", "weekend")
    assert state.known_slots == {"activity": "釣り"}
    assert state.last_asked == {"activity"} and state.last_was_question
    assert engine.state_of(ask("こんにちは"), "ja").phase == "opening"


def test_slots_use_the_learners_words_and_nothing_is_asked_twice(engine: OfflineDialogueEngine) -> None:
    reply = engine.choose_reply(ask("週末は釣りに行きました"))
    assert reply.intent == "weekend" and reply.slots == {"activity": "釣り"}
    assert reply.text == "釣りですか、いいですね！どうでした？"
    english = engine.choose_reply(ask("I went hiking on Saturday, it was great", language="en"))
    assert english.text == "hiking, nice! Where did you go?"
    # The learner already said what they did: the question that asks it is never chosen.
    history = (Turn("user", "週末は釣りに行きました"), Turn("model", reply.text))
    for message in ("週末は楽しかったです", "週末、よかったです"):
        follow_up = engine.choose_reply(ask(message, history))
        assert follow_up.text != "週末は何をしていたんですか？"
    # Without the slot, a line that needs it is never used (no "{activity}" left in a reply).
    plain = engine.choose_reply(ask("週末は楽しかったです"))
    assert plain.intent == "weekend" and "{" not in plain.text and "ですか、いいですね" not in plain.text


def test_a_second_greeting_mid_talk_needs_a_greeting_word(engine: OfflineDialogueEngine) -> None:
    history = (Turn("user", "おはようございます"), Turn("model", "おはようございます！今朝は早いですね。"))
    # 「お疲れさまです」 carries no greeting keyword here: after the opening it is less likely a
    # greeting than the same words opening the talk; a greeting word keeps it one.
    opening = engine.choose_reply(ask("お疲れさまです"))
    later = engine.choose_reply(ask("お疲れさまです", history))
    assert opening.intent == "greeting" and later.confidence < opening.confidence - 0.05
    with_keyword = engine.choose_reply(ask("こんにちは", history))
    assert with_keyword.intent == "greeting" and with_keyword.confidence > later.confidence
    assert with_keyword.text == "あ、またお会いしましたね。"  # the later-phase line, not a new welcome


def test_confidence_is_high_for_clear_moves_and_doubt_falls_back_kindly(engine: OfflineDialogueEngine) -> None:
    clear = engine.choose_reply(ask("本当にありがとうございます、助かりました"))
    assert clear.intent == "thanks" and clear.confidence > 0.6 and clear.margin > 0.3
    for message in ("量子力学の論文を読んでいます", "xyzzy plugh frobnicate"):
        doubtful = engine.choose_reply(ask(message))
        assert doubtful.intent == "fallback", (message, doubtful)
        assert doubtful.text in {"そうなんですね。もう少し聞かせてもらえますか？", "I see. Tell me more?"}


def _with(change) -> dict:
    intents = yaml.safe_load(yaml.safe_dump(INTENTS, allow_unicode=True))
    change(intents)
    return intents


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda i: i["thanks"]["replies"]["boss"]["ja"].append("{item}をありがとう"),
            r"intents.yaml:thanks.replies.boss.ja\[1\]: slot \{item\} is not declared",
        ),
        (
            lambda i: i["weekend"]["slots"]["activity"]["ja"].append("(?P<activity>[a-"),
            r"intents.yaml:weekend.slots.activity.ja\[1\]: not a valid regular expression",
        ),
        (
            lambda i: i["weekend"]["slots"]["activity"]["en"].append("(?P<thing>x)"),
            r"weekend.slots.activity.en\[1\]: needs a named group \(\?P<activity>",
        ),
        (
            lambda i: i["greeting"]["replies"]["colleague"]["ja"].append({"text": "x", "times": ["noon"]}),
            r"greeting.replies.colleague.ja\[5\].times: unknown \['noon'\]",
        ),
        (
            lambda i: i["greeting"]["replies"]["colleague"]["ja"].append({"text": "x", "phase": "middle"}),
            r"greeting.replies.colleague.ja\[5\].phase: 'middle' is not one of opening, later",
        ),
        (
            lambda i: i["thanks"]["replies"]["boss"].__setitem__("en", [{"text": "Thanks", "times": ["evening"]}]),
            r"thanks.replies.boss.en: needs at least one line for every situation, time and phase",
        ),
        (
            lambda i: i["thanks"].__setitem__("keywords", ["ありがとう"]),
            r"intents.yaml:thanks.keywords: expected \{ja: \[...\], en: \[...\]\}",
        ),
    ],
)
def test_content_errors_name_the_file_and_the_field(tmp_path: Path, change, message: str) -> None:
    folder = write_content(tmp_path / "content", intents=_with(change))
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(folder)


def test_a_situation_time_must_be_known(tmp_path: Path) -> None:
    situations = [dict(SITUATIONS[0], time_of_day="noon")]
    folder = write_content(tmp_path / "content", situations=situations)
    with pytest.raises(CatalogueError, match=r"situations.yaml:morning.time_of_day: 'noon' is not one of"):
        load_catalogue(folder)
    shutil.rmtree(folder)


def test_what_the_learner_just_told_is_not_asked_again(engine: OfflineDialogueEngine) -> None:
    # With the general line said, the question is what is left to say...
    history = (Turn("user", "資料が遅れています"), Turn("model", "わかりました。共有ありがとうございます。"))
    asked = engine.choose_reply(ask("報告書も遅れそうです", history))
    assert asked.intent == "delay" and asked.text == "いつ頃になりそうですか？"
    # ...unless the learner just said when.
    for message in ("報告書も遅れそうです、明日の朝になります", "報告書も遅れそうです。15時には出せます"):
        told = engine.choose_reply(ask(message, history))
        assert told.intent == "delay" and told.text != "いつ頃になりそうですか？", message
    english = engine.choose_reply(ask("The report is running late, I'll send it by 3 pm", language="en"))
    assert english.text == "Thanks for telling me."


def test_a_line_about_something_needs_the_learner_to_have_mentioned_it(engine: OfflineDialogueEngine) -> None:
    history: tuple[Turn, ...] = ()
    for message in ("資料が遅れています", "提出が間に合いません", "報告書が遅れそうです"):
        reply = engine.choose_reply(ask(message, history))
        assert "会議" not in reply.text
        history += (Turn("user", message), Turn("model", reply.text))
    assert engine.choose_reply(ask("会議の資料が遅れています")).text == "会議の前に教えてくれて助かります。"


def test_a_greeting_that_opens_a_report_is_returned_first(engine: OfflineDialogueEngine) -> None:
    reply = engine.choose_reply(ask("おはようございます。資料が遅れています", time_of_day="morning"))
    assert reply.intent == "delay" and reply.text.startswith("おはようございます！")
    assert reply.text.removeprefix("おはようございます！") in {
        "いつ頃になりそうですか？",
        "わかりました。共有ありがとうございます。",
    }
    # The returned greeting does not hide which line was said: the state still reads the move.
    history = (Turn("user", "おはようございます。資料が遅れています"), Turn("model", reply.text))
    assert engine.state_of(ask("明日になります", history), "ja").partner_moves == ("delay",)
    # No greeting in the message, none returned; a partner without greetings returns none.
    assert not engine.choose_reply(ask("資料が遅れています")).text.startswith("おはよう")
    assert not engine.choose_reply(ask("おはようございます。資料が遅れています", partner="boss")).text.startswith("お")


def test_question_kinds_file_errors_name_the_entry(tmp_path: Path) -> None:
    from workplace_kit.ai.offline_dialogue import load_question_kinds

    bad = tmp_path / "kinds.yaml"
    bad.write_text("kinds:\n  time:\n    asked: {ja: [いつ], en: [when]}\n    given: {ja: ['(明日'], en: []}\n")
    with pytest.raises(CatalogueError, match=r"kinds.yaml:time.given.ja\[0\]: bad regular expression"):
        load_question_kinds(bad)
    bad.write_text("kinds:\n  time: {asked: {ja: [いつ]}}\n")
    with pytest.raises(CatalogueError, match=r"kinds.yaml:time: needs 'asked' and 'given'"):
        load_question_kinds(bad)
    assert {k.id for k in load_question_kinds()} >= {"time", "place", "reason"}


def test_a_polite_japanese_question_ends_with_ka() -> None:
    from workplace_kit.ai.offline_dialogue import _asked_kinds, _opens_with_question, load_question_kinds

    kinds = load_question_kinds()
    assert _asked_kinds("報告ありがとうございます。新しい提出予定はいつになりそうですか。", kinds) == {"time"}
    assert _asked_kinds("遅れる理由を教えてください。どうしてですか？", kinds) == {"reason"}
    assert _asked_kinds("そうですか。いつも助かっています。", kinds) == frozenset()
    assert _opens_with_question("何時からだっけ？まあいいか。") and not _opens_with_question(
        "そうですか。また教えてください。"
    )


def test_an_answer_to_the_partners_question_stays_on_its_topic(engine: OfflineDialogueEngine) -> None:
    message = "土曜日の午前中になってしまいそうです"
    history = (Turn("user", "資料が遅れています"), Turn("model", "いつ頃になりそうですか？"))
    assert engine.choose_reply(ask(message, history)).intent == "delay"
    # The same words with no question before them are not read as that move.
    assert engine.choose_reply(ask(message)).intent != "delay"
