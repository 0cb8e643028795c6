import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from workplace.feedback.v1 import emotion_pb2 as _emotion_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TurnAnalysis(_message.Message):
    __slots__ = ("turn_id", "session_id", "user_id", "learner_text", "analysis", "analysed_at", "source_service")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LEARNER_TEXT_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    ANALYSED_AT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    session_id: str
    user_id: str
    learner_text: str
    analysis: _emotion_pb2.EmotionAnalysis
    analysed_at: _timestamp_pb2.Timestamp
    source_service: str
    def __init__(self, turn_id: _Optional[str] = ..., session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., learner_text: _Optional[str] = ..., analysis: _Optional[_Union[_emotion_pb2.EmotionAnalysis, _Mapping]] = ..., analysed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., source_service: _Optional[str] = ...) -> None: ...

class GetTurnAnalysisRequest(_message.Message):
    __slots__ = ("turn_id",)
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    def __init__(self, turn_id: _Optional[str] = ...) -> None: ...

class GetTurnAnalysisResponse(_message.Message):
    __slots__ = ("analysis",)
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    analysis: TurnAnalysis
    def __init__(self, analysis: _Optional[_Union[TurnAnalysis, _Mapping]] = ...) -> None: ...

class ListSessionAnalysesRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class ListSessionAnalysesResponse(_message.Message):
    __slots__ = ("analyses",)
    ANALYSES_FIELD_NUMBER: _ClassVar[int]
    analyses: _containers.RepeatedCompositeFieldContainer[TurnAnalysis]
    def __init__(self, analyses: _Optional[_Iterable[_Union[TurnAnalysis, _Mapping]]] = ...) -> None: ...

class EmotionTrendPoint(_message.Message):
    __slots__ = ("turn_id", "turn_index", "score")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    turn_index: int
    score: float
    def __init__(self, turn_id: _Optional[str] = ..., turn_index: _Optional[int] = ..., score: _Optional[float] = ...) -> None: ...

class EmotionTrend(_message.Message):
    __slots__ = ("emotion", "points", "average")
    EMOTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_FIELD_NUMBER: _ClassVar[int]
    emotion: str
    points: _containers.RepeatedCompositeFieldContainer[EmotionTrendPoint]
    average: float
    def __init__(self, emotion: _Optional[str] = ..., points: _Optional[_Iterable[_Union[EmotionTrendPoint, _Mapping]]] = ..., average: _Optional[float] = ...) -> None: ...

class SessionReport(_message.Message):
    __slots__ = ("session_id", "user_id", "source_service", "language", "summary", "strengths", "improvements", "emotion_trends", "turn_count", "average_polarity", "engine", "generated_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    STRENGTHS_FIELD_NUMBER: _ClassVar[int]
    IMPROVEMENTS_FIELD_NUMBER: _ClassVar[int]
    EMOTION_TRENDS_FIELD_NUMBER: _ClassVar[int]
    TURN_COUNT_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_POLARITY_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    GENERATED_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    source_service: str
    language: str
    summary: str
    strengths: _containers.RepeatedScalarFieldContainer[str]
    improvements: _containers.RepeatedScalarFieldContainer[str]
    emotion_trends: _containers.RepeatedCompositeFieldContainer[EmotionTrend]
    turn_count: int
    average_polarity: float
    engine: str
    generated_at: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., source_service: _Optional[str] = ..., language: _Optional[str] = ..., summary: _Optional[str] = ..., strengths: _Optional[_Iterable[str]] = ..., improvements: _Optional[_Iterable[str]] = ..., emotion_trends: _Optional[_Iterable[_Union[EmotionTrend, _Mapping]]] = ..., turn_count: _Optional[int] = ..., average_polarity: _Optional[float] = ..., engine: _Optional[str] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetReportRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetReportResponse(_message.Message):
    __slots__ = ("report",)
    REPORT_FIELD_NUMBER: _ClassVar[int]
    report: SessionReport
    def __init__(self, report: _Optional[_Union[SessionReport, _Mapping]] = ...) -> None: ...

class Strength(_message.Message):
    __slots__ = ("name", "score", "evidence", "label")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    score: int
    evidence: str
    label: str
    def __init__(self, name: _Optional[str] = ..., score: _Optional[int] = ..., evidence: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class GetStrengthsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetStrengthsResponse(_message.Message):
    __slots__ = ("user_id", "strengths", "session_count", "analysed_at", "engine")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STRENGTHS_FIELD_NUMBER: _ClassVar[int]
    SESSION_COUNT_FIELD_NUMBER: _ClassVar[int]
    ANALYSED_AT_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    strengths: _containers.RepeatedCompositeFieldContainer[Strength]
    session_count: int
    analysed_at: _timestamp_pb2.Timestamp
    engine: str
    def __init__(self, user_id: _Optional[str] = ..., strengths: _Optional[_Iterable[_Union[Strength, _Mapping]]] = ..., session_count: _Optional[int] = ..., analysed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., engine: _Optional[str] = ...) -> None: ...
