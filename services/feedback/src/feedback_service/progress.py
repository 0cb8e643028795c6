"""The learner's progress from their coaching reports: the journal (every ended session with its
scores), strengths over time, and two attempts side by side."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from workplace_content import content

from .coaching.report import rules
from .repository import StoredReport

FREE_CHAT_TITLE = {"ja": "雑談練習", "en": "Free chat"}


def title_of(report: StoredReport, language: str) -> str:
    if report.scenario_id:
        try:
            return content().scenario(report.scenario_id).title.get(language)
        except KeyError:
            return report.scenario_id  # a scenario the catalogue no longer has
    return FREE_CHAT_TITLE.get(language, FREE_CHAT_TITLE["ja"])


def skill_labels(language: str) -> dict[str, str]:
    return {dim_id: body["label"][language] for dim_id, body in rules()["dimensions"].items()}


@dataclass(frozen=True)
class JournalEntry:
    session_id: str
    source_service: str
    scenario_id: str
    title: str
    started_at: datetime | None
    ended_at: datetime
    duration_s: int | None
    turn_count: int
    overall: float
    skills: dict[str, int]
    end_reason: str


def journal_entry(report: StoredReport, language: str) -> JournalEntry:
    duration = int((report.ended_at - report.started_at).total_seconds()) if report.started_at else None
    return JournalEntry(
        session_id=str(report.session_id),
        source_service=report.source_service,
        scenario_id=report.scenario_id,
        title=title_of(report, language),
        started_at=report.started_at,
        ended_at=report.ended_at,
        duration_s=duration,
        turn_count=report.turn_count,
        overall=round(report.overall, 2),
        skills=dict(report.scores.get("skills", {})),
        end_reason=report.end_reason,
    )


def journal_csv(entries: list[JournalEntry], language: str) -> str:
    """The journal as CSV (UTF-8 with a BOM, so that spreadsheet programs read Japanese right)."""
    labels = skill_labels(language)
    header = (
        ["日時", "練習", "種類", "時間(分)", "ターン数", "総合", *labels.values(), "セッションID"]
        if language == "ja"
        else ["ended at", "practice", "kind", "minutes", "turns", "overall", *labels.values(), "session id"]
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for e in entries:
        writer.writerow(
            [
                e.ended_at.isoformat(timespec="minutes"),
                e.title,
                e.source_service,
                "" if e.duration_s is None else round(e.duration_s / 60, 1),
                e.turn_count,
                e.overall,
                *(e.skills.get(dim_id, "") for dim_id in labels),
                e.session_id,
            ]
        )
    return "\ufeff" + out.getvalue()


@dataclass(frozen=True)
class SkillTrend:
    id: str
    label: str
    average: float  # over every report, 1..5
    latest: int
    points: list[tuple[datetime, int, str]]  # (ended at, score, session id), oldest first


@dataclass(frozen=True)
class Strengths:
    session_count: int
    skills: list[SkillTrend]  # strongest first
    top: list[str]  # skill ids
    weakest: str  # skill id, "" without reports
    advice: str
    practice_query: str  # what to search the catalogue for (the weakest skill and missed criteria)
    recent_scenario_ids: list[str] = field(default_factory=list)  # practised lately: not suggested again


def strengths(reports: list[StoredReport], language: str) -> Strengths:
    """Trends per skill from the learner's reports (any order in; oldest first out)."""
    labels = skill_labels(language)
    ordered = sorted(reports, key=lambda r: r.ended_at)
    trends = []
    for dim_id, label in labels.items():
        points = [
            (r.ended_at, int(r.scores["skills"][dim_id]), str(r.session_id))
            for r in ordered
            if dim_id in r.scores.get("skills", {})
        ]
        if points:
            average = round(sum(p[1] for p in points) / len(points), 2)
            trends.append(SkillTrend(dim_id, label, average, points[-1][1], points))
    trends.sort(key=lambda t: (-t.average, t.id))
    if not trends:
        return Strengths(0, [], [], "", "", "")
    weakest = min(trends, key=lambda t: (t.average, t.id))
    advice = rules()["dimensions"][weakest.id]["advice"][language]
    missed = []
    for report in ordered[-3:]:
        if report.scenario_id:
            try:
                scenario = content().scenario(report.scenario_id)
            except KeyError:
                continue
            criteria = {c.id: c.text.get(language) for c in scenario.criteria}
            missed += [
                criteria[c] for c, score in report.scores.get("criteria", {}).items() if score <= 2 and c in criteria
            ]
    query = " ".join([weakest.label, advice, *dict.fromkeys(missed)])
    return Strengths(
        session_count=len(reports),
        skills=trends,
        top=[t.id for t in trends[:2] if t.average >= 3.5],
        weakest=weakest.id,
        advice=advice,
        practice_query=query[:480],
        recent_scenario_ids=list(dict.fromkeys(r.scenario_id for r in reversed(ordered[-3:]) if r.scenario_id)),
    )


@dataclass(frozen=True)
class Change:
    id: str
    label: str
    before: int | None
    after: int | None

    @property
    def delta(self) -> int | None:
        return None if self.before is None or self.after is None else self.after - self.before


def compare(before: StoredReport, after: StoredReport, language: str) -> tuple[list[Change], list[Change]]:
    """Per skill and per scenario criterion: the score in each attempt."""
    labels = skill_labels(language)
    skills = [
        Change(dim_id, label, before.scores.get("skills", {}).get(dim_id), after.scores.get("skills", {}).get(dim_id))
        for dim_id, label in labels.items()
    ]
    criteria_text: dict[str, str] = {}
    for report in (before, after):
        if report.scenario_id:
            try:
                criteria_text |= {c.id: c.text.get(language) for c in content().scenario(report.scenario_id).criteria}
            except KeyError:
                pass
    ids = list(dict.fromkeys([*before.scores.get("criteria", {}), *after.scores.get("criteria", {})]))
    criteria = [
        Change(
            c,
            criteria_text.get(c, c),
            before.scores.get("criteria", {}).get(c),
            after.scores.get("criteria", {}).get(c),
        )
        for c in ids
    ]
    return skills, criteria
