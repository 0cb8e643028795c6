import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from workplace.feedback.v1 import emotion_pb2 as _emotion_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USER_EVENT_KIND_UNSPECIFIED: _ClassVar[UserEventKind]
    USER_EVENT_KIND_CREATED: _ClassVar[UserEventKind]
    USER_EVENT_KIND_MIGRATED: _ClassVar[UserEventKind]
    USER_EVENT_KIND_DELETED: _ClassVar[UserEventKind]
USER_EVENT_KIND_UNSPECIFIED: UserEventKind
USER_EVENT_KIND_CREATED: UserEventKind
USER_EVENT_KIND_MIGRATED: UserEventKind
USER_EVENT_KIND_DELETED: UserEventKind

class ConversationTurn(_message.Message):
    __slots__ = ("event_id", "session_id", "user_id", "source_service", "user_turn_id", "reply_turn_id", "turn_index", "learner_text", "reply_text", "language", "partner", "situation", "occurred_at", "engine_id", "move")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    USER_TURN_ID_FIELD_NUMBER: _ClassVar[int]
    REPLY_TURN_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEARNER_TEXT_FIELD_NUMBER: _ClassVar[int]
    REPLY_TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    SITUATION_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    MOVE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    session_id: str
    user_id: str
    source_service: str
    user_turn_id: str
    reply_turn_id: str
    turn_index: int
    learner_text: str
    reply_text: str
    language: str
    partner: str
    situation: str
    occurred_at: _timestamp_pb2.Timestamp
    engine_id: str
    move: str
    def __init__(self, event_id: _Optional[str] = ..., session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., source_service: _Optional[str] = ..., user_turn_id: _Optional[str] = ..., reply_turn_id: _Optional[str] = ..., turn_index: _Optional[int] = ..., learner_text: _Optional[str] = ..., reply_text: _Optional[str] = ..., language: _Optional[str] = ..., partner: _Optional[str] = ..., situation: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., engine_id: _Optional[str] = ..., move: _Optional[str] = ...) -> None: ...

class FeedbackReady(_message.Message):
    __slots__ = ("event_id", "session_id", "user_id", "turn_id", "analysis", "occurred_at")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    session_id: str
    user_id: str
    turn_id: str
    analysis: _emotion_pb2.EmotionAnalysis
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., turn_id: _Optional[str] = ..., analysis: _Optional[_Union[_emotion_pb2.EmotionAnalysis, _Mapping]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SessionEnded(_message.Message):
    __slots__ = ("event_id", "session_id", "user_id", "source_service", "scenario_id", "turn_count", "reason", "started_at", "occurred_at", "language")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SERVICE_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_COUNT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    session_id: str
    user_id: str
    source_service: str
    scenario_id: str
    turn_count: int
    reason: str
    started_at: _timestamp_pb2.Timestamp
    occurred_at: _timestamp_pb2.Timestamp
    language: str
    def __init__(self, event_id: _Optional[str] = ..., session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., source_service: _Optional[str] = ..., scenario_id: _Optional[str] = ..., turn_count: _Optional[int] = ..., reason: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., language: _Optional[str] = ...) -> None: ...

class UserEvent(_message.Message):
    __slots__ = ("event_id", "kind", "user_id", "guest", "legacy_session_id", "preferred_language", "occurred_at")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    GUEST_FIELD_NUMBER: _ClassVar[int]
    LEGACY_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    kind: UserEventKind
    user_id: str
    guest: bool
    legacy_session_id: str
    preferred_language: str
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., kind: _Optional[_Union[UserEventKind, str]] = ..., user_id: _Optional[str] = ..., guest: _Optional[bool] = ..., legacy_session_id: _Optional[str] = ..., preferred_language: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LegacyChatHistory(_message.Message):
    __slots__ = ("event_id", "user_id", "session_id", "partner", "situation", "exchanges", "occurred_at")
    class Exchange(_message.Message):
        __slots__ = ("learner_text", "reply_text", "occurred_at")
        LEARNER_TEXT_FIELD_NUMBER: _ClassVar[int]
        REPLY_TEXT_FIELD_NUMBER: _ClassVar[int]
        OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
        learner_text: str
        reply_text: str
        occurred_at: _timestamp_pb2.Timestamp
        def __init__(self, learner_text: _Optional[str] = ..., reply_text: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    SITUATION_FIELD_NUMBER: _ClassVar[int]
    EXCHANGES_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    user_id: str
    session_id: str
    partner: str
    situation: str
    exchanges: _containers.RepeatedCompositeFieldContainer[LegacyChatHistory.Exchange]
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., partner: _Optional[str] = ..., situation: _Optional[str] = ..., exchanges: _Optional[_Iterable[_Union[LegacyChatHistory.Exchange, _Mapping]]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TtsRequest(_message.Message):
    __slots__ = ("event_id", "request_id", "text", "language", "voice", "speed", "mime_type", "session_id", "turn_id", "user_id", "occurred_at", "character_id")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_ID_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    request_id: str
    text: str
    language: str
    voice: str
    speed: float
    mime_type: str
    session_id: str
    turn_id: str
    user_id: str
    occurred_at: _timestamp_pb2.Timestamp
    character_id: str
    def __init__(self, event_id: _Optional[str] = ..., request_id: _Optional[str] = ..., text: _Optional[str] = ..., language: _Optional[str] = ..., voice: _Optional[str] = ..., speed: _Optional[float] = ..., mime_type: _Optional[str] = ..., session_id: _Optional[str] = ..., turn_id: _Optional[str] = ..., user_id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., character_id: _Optional[str] = ...) -> None: ...

class TtsReady(_message.Message):
    __slots__ = ("event_id", "request_id", "session_id", "turn_id", "user_id", "audio_key", "mime_type", "sample_rate_hz", "duration_ms", "voice", "engine", "error", "occurred_at")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_KEY_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    request_id: str
    session_id: str
    turn_id: str
    user_id: str
    audio_key: str
    mime_type: str
    sample_rate_hz: int
    duration_ms: int
    voice: str
    engine: str
    error: str
    occurred_at: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., request_id: _Optional[str] = ..., session_id: _Optional[str] = ..., turn_id: _Optional[str] = ..., user_id: _Optional[str] = ..., audio_key: _Optional[str] = ..., mime_type: _Optional[str] = ..., sample_rate_hz: _Optional[int] = ..., duration_ms: _Optional[int] = ..., voice: _Optional[str] = ..., engine: _Optional[str] = ..., error: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchTurnRequest(_message.Message):
    __slots__ = ("event_id", "watch_id", "user_id", "turn_index", "speaker_id", "language", "intervention_text", "occurred_at", "generation", "not_before")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    INTERVENTION_TEXT_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    watch_id: str
    user_id: str
    turn_index: int
    speaker_id: str
    language: str
    intervention_text: str
    occurred_at: _timestamp_pb2.Timestamp
    generation: int
    not_before: _timestamp_pb2.Timestamp
    def __init__(self, event_id: _Optional[str] = ..., watch_id: _Optional[str] = ..., user_id: _Optional[str] = ..., turn_index: _Optional[int] = ..., speaker_id: _Optional[str] = ..., language: _Optional[str] = ..., intervention_text: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., generation: _Optional[int] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
