"""The offline coaching report of a session: a score per skill dimension and per scenario
criterion, each with the learner's own turns as evidence, what the score means, and one
concrete better phrasing; a summary and what to try next.

Explained, not guessed: every score comes from cues found in the learner's words
(report_rules.yaml), from each turn's register check, and from the scenario moves the learner
made (a scenario's moves say which of its criteria they meet or miss). The same conversation
always gets the same report; a conversation with more of the good cues and fewer of the poor
ones scores higher.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from workplace_content import Scenario

RULES_PATH = Path(__file__).with_name("report_rules.yaml")
ENGINE = "offline:rules"
QUOTE_CHARS = 80
MAX_EVIDENCE = 3
NOT_SHOWN, NEUTRAL, TOP, BOTTOM = 2, 3, 5, 1
BAD_VERDICTS = {"too_casual": 1, "too_direct": 1, "rude": 2, "too_formal": 0}


@dataclass(frozen=True)
class LearnerTurn:
    turn_index: int
    text: str
    move: str = ""  # the scenario move the turn made ("" in free chat)
    verdict: str = ""  # the register check's verdict (ok, too_casual, too_direct, rude, too_formal)
    better_phrasing: str = ""  # the register check's better phrasing of this turn


@dataclass(frozen=True)
class Evidence:
    turn_index: int
    quote: str
    cue: str
    positive: bool


@dataclass(frozen=True)
class SkillScore:
    id: str
    label: str
    score: int  # 1..5
    meaning: str  # the rubric's words for this score
    evidence: tuple[Evidence, ...]
    advice: str = ""
    better_phrasing: str = ""


@dataclass(frozen=True)
class CriterionScore:
    id: str
    text: str
    status: str  # met, partly, missed, not_shown
    status_label: str
    score: int  # 1..5
    evidence: tuple[Evidence, ...]
    better_phrasing: str = ""


@dataclass(frozen=True)
class CoachingReport:
    language: str
    overall: float  # mean of the scores, 1..5
    skills: tuple[SkillScore, ...]
    criteria: tuple[CriterionScore, ...]
    summary: str
    strengths: tuple[str, ...]
    try_next: tuple[str, ...]
    turn_count: int
    engine: str = ENGINE
    scenario_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Cue:
    id: str
    labels: dict[str, str]
    negative: bool
    words: dict[str, tuple[str, ...]]
    pattern: re.Pattern[str] | None

    def found_in(self, text: str, language: str) -> bool:
        if self.pattern is not None and self.pattern.search(text):
            return True
        lowered = text.lower()
        for word in self.words.get(language, ()):
            if language == "en":
                if re.search(rf"(?<![a-z']){re.escape(word)}(?![a-z'])", lowered):
                    return True
            elif word in text:
                return True
        return False


@functools.cache
def rules() -> dict[str, Any]:
    raw = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    dimensions = {}
    for dim_id, body in raw["dimensions"].items():
        cues = tuple(
            _Cue(
                id=cue_id,
                labels=cue["label"],
                negative=bool(cue.get("negative")),
                words={
                    lang: tuple(str(w).lower() if lang == "en" else str(w) for w in cue.get(lang, ()))
                    for lang in ("ja", "en")
                },
                pattern=re.compile(cue["pattern"], re.IGNORECASE) if cue.get("pattern") else None,
            )
            for cue_id, cue in (body.get("cues") or {}).items()
        )
        for lang in ("ja", "en"):
            if len(body["rubric"][lang]) != 5:
                raise ValueError(f"{RULES_PATH.name}: {dim_id}.rubric.{lang} needs five levels (scores 1-5)")
        dimensions[dim_id] = {**body, "cues": cues}
    return {"dimensions": dimensions, "criteria_rubric": raw["criteria_rubric"]}


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_CHARS else text[: QUOTE_CHARS - 1] + "…"


def _clamp(score: int) -> int:
    return max(BOTTOM, min(TOP, score))


def _cue_skill(
    dim_id: str, body: dict[str, Any], turns: Sequence[LearnerTurn], language: str
) -> tuple[int, list[Evidence]]:
    found: dict[str, list[Evidence]] = {}
    for cue in body["cues"]:
        for turn in turns:
            # A rude turn earns no credit: 「は？」 is not a question, nor "Whatever" a reply.
            if not cue.negative and turn.verdict == "rude":
                continue
            if cue.found_in(turn.text, language):
                found.setdefault(cue.id, []).append(
                    Evidence(turn.turn_index, _quote(turn.text), cue.labels[language], not cue.negative)
                )
    if not found:
        return NOT_SHOWN, []
    by_id = {cue.id: cue for cue in body["cues"]}
    positive = sum(1 for cue_id in found if not by_id[cue_id].negative)
    negative = sum(1 for cue_id in found if by_id[cue_id].negative)
    score = _clamp(NEUTRAL + positive - negative)
    # One piece of evidence per cue kind first (the first turn that showed it), then the rest.
    evidence = [items[0] for items in found.values()] + [e for items in found.values() for e in items[1:]]
    evidence.sort(key=lambda e: e.positive if score <= NEUTRAL else not e.positive)
    return score, evidence


def _register_skill(turns: Sequence[LearnerTurn], language: str) -> tuple[int, list[Evidence], str]:
    checked = [t for t in turns if t.verdict]
    if not checked:
        return NOT_SHOWN, [], ""
    ok = [t for t in checked if t.verdict == "ok"]
    bad = [t for t in checked if BAD_VERDICTS.get(t.verdict, 0)]
    labels = {
        "ja": {
            "ok": "相手に合った言葉づかい",
            "too_casual": "くだけすぎ",
            "too_direct": "直接的すぎる",
            "rude": "失礼な言い方",
            "too_formal": "かたすぎる",
        },
        "en": {
            "ok": "right register",
            "too_casual": "too casual",
            "too_direct": "too direct",
            "rude": "rude",
            "too_formal": "too formal",
        },
    }[language]
    share = len(ok) / len(checked)
    score = NEUTRAL + (2 if share == 1 and len(checked) >= 2 else 1 if share >= 0.75 else 0)
    score -= sum(BAD_VERDICTS[v] for v in {t.verdict for t in bad})
    evidence = [
        Evidence(t.turn_index, _quote(t.text), labels.get(t.verdict, t.verdict), t.verdict == "ok") for t in checked
    ]
    evidence.sort(key=lambda e: e.positive)  # the turns to fix first
    better = next((t.better_phrasing for t in bad if t.better_phrasing), "")
    return _clamp(score), evidence, better


def _model_line(scenario: Scenario | None, language: str, criterion: str | None = None) -> str:
    """A good response in this scenario, in the learner's language: an example of the move that
    meets the criterion (or of the move that ends the scenario meeting the most criteria)."""
    if scenario is None:
        return ""
    moves = [m for m in scenario.moves.values() if (criterion in m.meets if criterion else m.meets) and not m.misses]
    if not moves:
        return ""
    best = max(moves, key=lambda m: (m.ends, len(m.meets)))
    return best.examples.get(language)[0]


def _criteria(scenario: Scenario | None, turns: Sequence[LearnerTurn], language: str) -> list[CriterionScore]:
    if scenario is None:
        return []
    words = rules()["criteria_rubric"][language]
    scores = {"met": TOP, "partly": NEUTRAL, "missed": BOTTOM, "not_shown": NOT_SHOWN}
    results = []
    for criterion in scenario.criteria:
        met = [t for t in turns if t.move in scenario.moves and criterion.id in scenario.moves[t.move].meets]
        missed = [t for t in turns if t.move in scenario.moves and criterion.id in scenario.moves[t.move].misses]
        status = "met" if met and not missed else "partly" if met else "missed" if missed else "not_shown"
        evidence = [Evidence(t.turn_index, _quote(t.text), words["met"], True) for t in met] + [
            Evidence(t.turn_index, _quote(t.text), words["missed"], False) for t in missed
        ]
        results.append(
            CriterionScore(
                id=criterion.id,
                text=criterion.text.get(language),
                status=status,
                status_label=words[status],
                score=scores[status],
                evidence=tuple(evidence[:MAX_EVIDENCE]),
                better_phrasing="" if status == "met" else _model_line(scenario, language, criterion.id),
            )
        )
    return results


def build_report(turns: Sequence[LearnerTurn], language: str, scenario: Scenario | None = None) -> CoachingReport:
    """The report of the learner's turns (in turn order) of one session."""
    language = language if language in ("ja", "en") else "ja"
    turns = sorted(turns, key=lambda t: t.turn_index)
    skills = []
    model_line = _model_line(scenario, language)
    for dim_id, body in rules()["dimensions"].items():
        better = ""
        if body.get("from_register"):
            score, evidence, better = _register_skill(turns, language)
        else:
            score, evidence = _cue_skill(dim_id, body, turns, language)
        if score <= NEUTRAL and not better:
            better = model_line
        # No sign at all is "not shown yet", not the rubric's 2 ("the point is blurred").
        meaning = (
            rules()["criteria_rubric"][language]["not_shown"] if not evidence else body["rubric"][language][score - 1]
        )
        skills.append(
            SkillScore(
                id=dim_id,
                label=body["label"][language],
                score=score,
                meaning=meaning,
                evidence=tuple(evidence[:MAX_EVIDENCE]),
                advice=body["advice"][language] if score <= NEUTRAL else "",
                better_phrasing=better if score <= NEUTRAL else "",
            )
        )
    criteria = _criteria(scenario, turns, language)
    all_scores = [s.score for s in skills] + [c.score for c in criteria]
    overall = round(sum(all_scores) / len(all_scores), 2) if turns else 0.0
    ranked = sorted(skills, key=lambda s: (-s.score, s.id))
    strengths = tuple(
        f"{s.label}: {next((e.cue for e in s.evidence if e.positive), s.meaning)}" for s in ranked[:2] if s.score >= 4
    )
    weakest = min(skills, key=lambda s: (s.score, s.id))
    try_next = [weakest.advice or rules()["dimensions"][weakest.id]["advice"][language]]
    open_criteria = sorted((c for c in criteria if c.status != "met"), key=lambda c: c.score)
    try_next += [
        (f"次の課題：{c.text}" if language == "ja" else f"Next time: {c.text[:1].lower()}{c.text[1:]}.")
        for c in open_criteria
    ][:3]
    title = scenario.title.get(language) if scenario else ("雑談練習" if language == "ja" else "Free chat")
    if language == "ja":
        summary = f"{title}（{len(turns)}ターン）: 総合 {overall:.1f} / 5。"
        if strengths:
            summary += f"よかった点は{ranked[0].label}。"
        summary += f"次は{weakest.label}を伸ばしましょう。"
    else:
        summary = f"{title} ({len(turns)} turns): overall {overall:.1f} / 5."
        if strengths:
            summary += f" Your strongest skill: {ranked[0].label.lower()}."
        summary += f" Next, work on {weakest.label.lower()}."
    return CoachingReport(
        language=language,
        overall=overall,
        skills=tuple(skills),
        criteria=tuple(criteria),
        summary=summary,
        strengths=strengths,
        try_next=tuple(try_next),
        turn_count=len(turns),
        scenario_id=scenario.id if scenario else "",
    )
