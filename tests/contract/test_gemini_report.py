"""The Gemini coaching report end to end: the real google-genai client against the Gemini
stand-in, structured output with a schema, merged over the offline analysis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from feedback_service.coaching.gemini_report import GeminiReportWriter
from feedback_service.coaching.report import LearnerTurn, build_report
from gemini_standin import Fail, GeminiStandIn, Reply
from workplace_content import content
from workplace_kit.ai.types import AIUnavailableError
from workplace_kit.config import ServiceSettings

PRO = "gemini-2.5-pro"
SCENARIO = content().scenario("decline-overtime")
TURNS = [
    LearnerTurn(0, "無理です。", "refuse_flatly", "too_direct"),
    LearnerTurn(1, "明日の朝8時に来て、9時半までに仕上げるのはいかがでしょうか。", "offer_alternative", "ok"),
]


@pytest.fixture(scope="module")
def standin() -> Iterator[GeminiStandIn]:
    with GeminiStandIn() as server:
        yield server


@pytest.fixture
async def writer(standin: GeminiStandIn) -> AsyncIterator[GeminiReportWriter]:
    standin.reset()
    settings = ServiceSettings(
        gemini_api_keys=["key-a"],
        gemini_base_url=standin.base_url,
        gemini_api_version="v1beta",
        gemini_model_flash="gemini-2.5-flash",
        gemini_model_pro=PRO,
        gemini_retry_attempts=2,
        gemini_retry_initial_delay_s=0.01,
        gemini_retry_max_delay_s=0.02,
        gemini_timeout_s=5.0,
    )
    writer = GeminiReportWriter(settings)
    yield writer
    await writer.aclose()


async def test_gemini_scores_with_evidence_from_the_learners_own_turns(standin, writer) -> None:
    standin.script(
        Reply.json(
            {
                "summary": "代案は具体的でしたが、最初の断り方が直接的すぎました。",
                "strengths": ["具体的な代案を出せた"],
                "try_next": ["断る前にお詫びを一言添える"],
                "skills": [
                    {
                        "id": "empathy",
                        "score": 2,
                        "evidence_turns": [0, 7],
                        "better_phrasing": "申し訳ありません、今夜は…",
                    },
                    {"id": "assertiveness", "score": 4, "evidence_turns": [1]},
                ],
                "criteria": [
                    {"id": "alternative", "status": "met", "evidence_turns": [1]},
                    {"id": "cushion", "status": "missed", "evidence_turns": [0]},
                ],
            }
        )
    )
    report = await writer.write(TURNS, "ja", SCENARIO)

    assert report.engine == f"gemini:{PRO}" and report.summary.startswith("代案は具体的")
    skills = {s.id: s for s in report.skills}
    assert skills["empathy"].score == 2 and skills["empathy"].meaning == "配慮が足りない"
    # Evidence is quoted from the stored turns; an index that is not a learner turn is dropped.
    assert [e.quote for e in skills["empathy"].evidence] == ["無理です。"]
    assert skills["empathy"].better_phrasing == "申し訳ありません、今夜は…"
    assert skills["assertiveness"].score == 4 and not skills["assertiveness"].better_phrasing
    criteria = {c.id: c for c in report.criteria}
    assert criteria["alternative"].status == "met" and criteria["alternative"].score == 5
    assert criteria["cushion"].status == "missed"

    [sent] = standin.requests
    assert sent.path == f"/v1beta/models/{PRO}:generateContent"
    assert sent.body["generationConfig"]["responseMimeType"] == "application/json"
    assert sent.body["generationConfig"]["temperature"] == 0
    instruction = sent.body["systemInstruction"]["parts"][0]["text"]
    assert "代わりの案（時間・範囲・担当）を具体的に出している" in instruction and "配慮が足りない" in instruction
    assert '"turn_index": 0' in sent.body["contents"][0]["parts"][0]["text"]


async def test_what_gemini_gets_wrong_keeps_the_offline_reading(standin, writer) -> None:
    """A score outside 1-5, an unknown status or a skill left out keep the offline analysis's
    reading; an answer that is not the schema at all is refused."""
    offline = build_report(TURNS, "ja", SCENARIO)
    standin.script(
        Reply.json(
            {
                "summary": "ok",
                "skills": [{"id": "clarity", "score": 9, "evidence_turns": [1]}],
                "criteria": [{"id": "reason", "status": "sometimes"}],
            }
        )
    )
    report = await writer.write(TURNS, "ja", SCENARIO)
    assert report.skills == offline.skills and report.criteria == offline.criteria
    standin.script(Reply.json({"verdict": "nice"}))
    with pytest.raises(AIUnavailableError):
        await writer.write(TURNS, "ja", SCENARIO)


async def test_an_outage_raises_for_the_offline_fallback(standin, writer) -> None:
    standin.script(Fail(503), Fail(503), Fail(503), Fail(503))
    with pytest.raises(AIUnavailableError):
        await writer.write(TURNS, "ja", SCENARIO)
