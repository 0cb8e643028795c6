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
    __slots__ = ("session_id", "user_id", "source_service", "language", "summary", "strengths", "improvements", "emotion_trends", "turn_count", "average_polarity", "engine", "generated_at", "overall", "skills", "criteria", "scenario_id", "end_reason")
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
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    SKILLS_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
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
    overall: float
    skills: _containers.RepeatedCompositeFieldContainer[SkillScore]
    criteria: _containers.RepeatedCompositeFieldContainer[CriterionScore]
    scenario_id: str
    end_reason: str
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., source_service: _Optional[str] = ..., language: _Optional[str] = ..., summary: _Optional[str] = ..., strengths: _Optional[_Iterable[str]] = ..., improvements: _Optional[_Iterable[str]] = ..., emotion_trends: _Optional[_Iterable[_Union[EmotionTrend, _Mapping]]] = ..., turn_count: _Optional[int] = ..., average_polarity: _Optional[float] = ..., engine: _Optional[str] = ..., generated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., overall: _Optional[float] = ..., skills: _Optional[_Iterable[_Union[SkillScore, _Mapping]]] = ..., criteria: _Optional[_Iterable[_Union[CriterionScore, _Mapping]]] = ..., scenario_id: _Optional[str] = ..., end_reason: _Optional[str] = ...) -> None: ...

class Evidence(_message.Message):
    __slots__ = ("turn_index", "quote", "cue", "positive")
    TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    CUE_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_FIELD_NUMBER: _ClassVar[int]
    turn_index: int
    quote: str
    cue: str
    positive: bool
    def __init__(self, turn_index: _Optional[int] = ..., quote: _Optional[str] = ..., cue: _Optional[str] = ..., positive: _Optional[bool] = ...) -> None: ...

class SkillScore(_message.Message):
    __slots__ = ("id", "label", "score", "meaning", "evidence", "advice", "better_phrasing")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MEANING_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    BETTER_PHRASING_FIELD_NUMBER: _ClassVar[int]
    id: str
    label: str
    score: int
    meaning: str
    evidence: _containers.RepeatedCompositeFieldContainer[Evidence]
    advice: str
    better_phrasing: str
    def __init__(self, id: _Optional[str] = ..., label: _Optional[str] = ..., score: _Optional[int] = ..., meaning: _Optional[str] = ..., evidence: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ..., advice: _Optional[str] = ..., better_phrasing: _Optional[str] = ...) -> None: ...

class CriterionScore(_message.Message):
    __slots__ = ("id", "text", "status", "status_label", "score", "evidence", "better_phrasing")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    BETTER_PHRASING_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    status: str
    status_label: str
    score: int
    evidence: _containers.RepeatedCompositeFieldContainer[Evidence]
    better_phrasing: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., status: _Optional[str] = ..., status_label: _Optional[str] = ..., score: _Optional[int] = ..., evidence: _Optional[_Iterable[_Union[Evidence, _Mapping]]] = ..., better_phrasing: _Optional[str] = ...) -> None: ...

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
