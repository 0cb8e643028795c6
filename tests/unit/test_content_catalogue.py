"""The shared catalogue (workplace_content): what ships is complete, and a broken file is
refused with its file and field named."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml
from scenario_service.settings import VECTOR_CACHE
from workplace_content import CONTENT_ROOT, ContentError, content, load_content
from workplace_content.__main__ import main as content_cli
from workplace_content.dialogue import scenario_script
from workplace_kit.ai import offline_dialogue as od
from workplace_kit.ai.embeddings import get_embedder

MODEL = "scenarios/declining/decline-overtime.yaml"


def test_the_catalogue_has_every_set_the_product_offers() -> None:
    catalogue = content()
    assert len(catalogue.scenarios) >= 50
    per_category = Counter(s.category for s in catalogue.scenarios)
    assert all(per_category[c.id] >= 3 for c in catalogue.categories), per_category
    assert {s.difficulty for s in catalogue.scenarios} == {"beginner", "intermediate", "advanced"}
    for scenario in catalogue.scenarios:
        category = catalogue.category(scenario.category)
        assert (scenario.consent is not None) == category.needs_consent, scenario.id
        assert scenario.reverse_role == (scenario.category == "reverse_role"), scenario.id
    assert [c.id for c in catalogue.free_chat_characters] == ["colleague", "senior", "boss"]


def test_every_scenario_becomes_a_script_the_engine_can_play() -> None:
    catalogue = content()
    for scenario in catalogue.scenarios:
        script = scenario_script(scenario, catalogue)
        engine_moves = (
            {"fallback"} if catalogue.category(scenario.category).chit_chat_fits else {"fallback", "off_topic"}
        )
        assert {i.id for i in script.intents} == {*scenario.moves, *engine_moves}
        assert script.partners == (scenario.character,)


def test_the_scenario_vector_cache_holds_every_text() -> None:
    catalogue = content()
    cached, _ = od._read_cache(VECTOR_CACHE, get_embedder().model_version)
    missing = {t for s in catalogue.scenarios for t in scenario_script(s, catalogue).all_texts()} - set(cached)
    assert not missing, (
        f"{len(missing)} scenario texts are not in {VECTOR_CACHE.name}; run `python -m scenario_service build-index`"
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "catalogue"
    shutil.copytree(CONTENT_ROOT, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


def edit(root: Path, name: str, change) -> None:
    path = root / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        (MODEL, lambda d: d["moves"]["give_in"].pop("replies"), f"{MODEL}: moves.give_in.replies: Field required"),
        (MODEL, lambda d: d["title"].pop("en"), f"{MODEL}: title.en: Field required"),
        (MODEL, lambda d: d.__setitem__("difficulty", "easy"), f"{MODEL}: difficulty: Input should be"),
        (MODEL, lambda d: d.__setitem__("character", "ghost"), f"{MODEL}: character: no characters/ghost.yaml"),
        (MODEL, lambda d: d.__setitem__("colour", "red"), f"{MODEL}: colour: Extra inputs are not permitted"),
        (
            MODEL,
            lambda d: d["moves"]["give_in"].__setitem__("misses", ["patience"]),
            f"{MODEL}: moves.give_in.misses: no criterion 'patience'",
        ),
        (
            MODEL,
            lambda d: d["moves"]["give_in"]["examples"].__setitem__("ja", ["はい"]),
            "examples.ja: at least 3 examples",
        ),
        (
            MODEL,
            lambda d: [m.pop("ends", None) for m in d["moves"].values()],
            "at least one move must have `ends: true`",
        ),
        (
            MODEL,
            lambda d: d.__setitem__("category", "harassment"),
            f"{MODEL}: consent: required in category 'harassment'",
        ),
        (
            MODEL,
            lambda d: d["moves"].__setitem__("off_topic", d["moves"]["give_in"]),
            f"{MODEL}: moves.off_topic: the name is reserved",
        ),
        (
            "characters/boss.yaml",
            lambda d: d["voice"].__setitem__("gender", "robot"),
            "characters/boss.yaml: voice.gender",
        ),
        (
            "characters/boss.yaml",
            lambda d: d["ja"].pop("speaking_style"),
            "characters/boss.yaml: ja.speaking_style: Field required",
        ),
    ],
)
def test_a_broken_file_is_named_with_its_field(copy: Path, name: str, change, message: str) -> None:
    edit(copy, name, change)
    with pytest.raises(ContentError) as refused:
        load_content(copy)
    assert any(message in problem for problem in refused.value.problems), refused.value.problems


def test_every_problem_is_reported_at_once_and_the_check_command_says_so(copy: Path, capsys) -> None:
    edit(copy, MODEL, lambda d: d["title"].pop("ja"))
    edit(copy, "free_chat/partners.yaml", lambda d: d.__setitem__("partners", ["colleague", "nobody"]))
    (copy / "scenarios" / "declining" / "broken.yaml").write_text("title: [unclosed\n", encoding="utf-8")
    assert content_cli(["check", str(copy)]) == 1
    report = capsys.readouterr().err
    assert f"{MODEL}: title.ja: Field required" in report
    assert "free_chat/partners.yaml: partners: no characters/nobody.yaml" in report
    assert "scenarios/declining/broken.yaml: cannot read" in report
    assert content_cli(["check"]) == 0
