"""Deltas gathered for fewer SSE events and gRPC messages, never holding back the first words."""

from __future__ import annotations

from chat_service.domain import DeltaGatherer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_text_goes_out_at_once_then_chunks_are_gathered_until_the_interval_passes():
    clock = Clock()
    gather = DeltaGatherer(0.05, clock)
    assert gather.add("お疲れ") == "お疲れ"
    clock.now += 0.02
    assert gather.add("さまで") is None
    clock.now += 0.02
    assert gather.add("す、") is None
    clock.now += 0.02  # 60 ms since the last delta sent
    assert gather.add("今日") == "さまです、今日"
    assert gather.flush() is None


def test_a_sentence_end_sends_what_is_held_at_once():
    clock = Clock()
    gather = DeltaGatherer(0.05, clock)
    gather.add("はい")
    clock.now += 0.01
    assert gather.add("、承知しました。") == "、承知しました。"
    clock.now += 0.01
    assert gather.add("確認して") is None
    clock.now += 0.01
    assert gather.add("みますね！") == "確認してみますね！"
    assert gather.add("Sure thing? ") == "Sure thing? "


def test_flush_at_the_end_returns_the_rest_and_joined_text_is_unchanged():
    clock = Clock()
    gather = DeltaGatherer(0.05, clock)
    pieces = ["了解", "です", "。", "明日", "の", "件", "ですが"]
    sent = []
    for piece in pieces:
        if (text := gather.add(piece)) is not None:
            sent.append(text)
        clock.now += 0.01
    if (rest := gather.flush()) is not None:
        sent.append(rest)
    assert "".join(sent) == "".join(pieces)
    assert sent == ["了解", "です。", "明日の件ですが"]


def test_zero_interval_sends_every_chunk():
    gather = DeltaGatherer(0.0, Clock())
    assert [gather.add(t) for t in ["a", "b", "c"]] == ["a", "b", "c"]
