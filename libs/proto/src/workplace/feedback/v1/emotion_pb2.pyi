from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EmotionScore(_message.Message):
    __slots__ = ("emotion", "score")
    EMOTION_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    emotion: str
    score: float
    def __init__(self, emotion: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class EmotionAnalysis(_message.Message):
    __slots__ = ("language", "dominant_emotion", "scores", "polarity", "engine", "summary", "card")
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    DOMINANT_EMOTION_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    POLARITY_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    language: str
    dominant_emotion: str
    scores: _containers.RepeatedCompositeFieldContainer[EmotionScore]
    polarity: float
    engine: str
    summary: str
    card: FeedbackCard
    def __init__(self, language: _Optional[str] = ..., dominant_emotion: _Optional[str] = ..., scores: _Optional[_Iterable[_Union[EmotionScore, _Mapping]]] = ..., polarity: _Optional[float] = ..., engine: _Optional[str] = ..., summary: _Optional[str] = ..., card: _Optional[_Union[FeedbackCard, _Mapping]] = ...) -> None: ...

class FeedbackCard(_message.Message):
    __slots__ = ("verdict", "did_well", "to_change", "better_phrasing", "register_expected")
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    DID_WELL_FIELD_NUMBER: _ClassVar[int]
    TO_CHANGE_FIELD_NUMBER: _ClassVar[int]
    BETTER_PHRASING_FIELD_NUMBER: _ClassVar[int]
    REGISTER_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    verdict: str
    did_well: str
    to_change: str
    better_phrasing: str
    register_expected: str
    def __init__(self, verdict: _Optional[str] = ..., did_well: _Optional[str] = ..., to_change: _Optional[str] = ..., better_phrasing: _Optional[str] = ..., register_expected: _Optional[str] = ...) -> None: ...
