import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from workplace.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Speaker(_message.Message):
    __slots__ = ("id", "display_name", "persona", "engine", "character_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    PERSONA_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    persona: str
    engine: _common_pb2.EngineInfo
    character_id: str
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., persona: _Optional[str] = ..., engine: _Optional[_Union[_common_pb2.EngineInfo, _Mapping]] = ..., character_id: _Optional[str] = ...) -> None: ...

class StartWatchRequest(_message.Message):
    __slots__ = ("user_id", "topic", "situation", "language", "max_turns", "speakers", "pace_seconds")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    SITUATION_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    PACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    topic: str
    situation: str
    language: str
    max_turns: int
    speakers: _containers.RepeatedCompositeFieldContainer[Speaker]
    pace_seconds: float
    def __init__(self, user_id: _Optional[str] = ..., topic: _Optional[str] = ..., situation: _Optional[str] = ..., language: _Optional[str] = ..., max_turns: _Optional[int] = ..., speakers: _Optional[_Iterable[_Union[Speaker, _Mapping]]] = ..., pace_seconds: _Optional[float] = ...) -> None: ...

class StartWatchResponse(_message.Message):
    __slots__ = ("watch_id", "speakers", "max_turns", "started_at", "scenario_id", "title", "pace_seconds")
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    SPEAKERS_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    PACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    watch_id: str
    speakers: _containers.RepeatedCompositeFieldContainer[Speaker]
    max_turns: int
    started_at: _timestamp_pb2.Timestamp
    scenario_id: str
    title: str
    pace_seconds: float
    def __init__(self, watch_id: _Optional[str] = ..., speakers: _Optional[_Iterable[_Union[Speaker, _Mapping]]] = ..., max_turns: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., scenario_id: _Optional[str] = ..., title: _Optional[str] = ..., pace_seconds: _Optional[float] = ...) -> None: ...

class StreamWatchRequest(_message.Message):
    __slots__ = ("watch_id", "after_turn_index")
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    watch_id: str
    after_turn_index: int
    def __init__(self, watch_id: _Optional[str] = ..., after_turn_index: _Optional[int] = ...) -> None: ...

class StreamWatchResponse(_message.Message):
    __slots__ = ("turn_started", "turn_delta", "turn_completed", "ended", "state")
    TURN_STARTED_FIELD_NUMBER: _ClassVar[int]
    TURN_DELTA_FIELD_NUMBER: _ClassVar[int]
    TURN_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    turn_started: TurnStarted
    turn_delta: TurnDelta
    turn_completed: TurnCompleted
    ended: WatchEnded
    state: WatchState
    def __init__(self, turn_started: _Optional[_Union[TurnStarted, _Mapping]] = ..., turn_delta: _Optional[_Union[TurnDelta, _Mapping]] = ..., turn_completed: _Optional[_Union[TurnCompleted, _Mapping]] = ..., ended: _Optional[_Union[WatchEnded, _Mapping]] = ..., state: _Optional[_Union[WatchState, _Mapping]] = ...) -> None: ...

class WatchState(_message.Message):
    __slots__ = ("paused", "pace_seconds")
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    PACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    paused: bool
    pace_seconds: float
    def __init__(self, paused: _Optional[bool] = ..., pace_seconds: _Optional[float] = ...) -> None: ...

class TurnStarted(_message.Message):
    __slots__ = ("turn_id", "turn_index", "speaker_id")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_ID_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    turn_index: int
    speaker_id: str
    def __init__(self, turn_id: _Optional[str] = ..., turn_index: _Optional[int] = ..., speaker_id: _Optional[str] = ...) -> None: ...

class TurnDelta(_message.Message):
    __slots__ = ("turn_id", "text")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    text: str
    def __init__(self, turn_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class TurnCompleted(_message.Message):
    __slots__ = ("turn_id", "turn_index", "speaker_id", "text", "intervention", "created_at")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    INTERVENTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    turn_index: int
    speaker_id: str
    text: str
    intervention: bool
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, turn_id: _Optional[str] = ..., turn_index: _Optional[int] = ..., speaker_id: _Optional[str] = ..., text: _Optional[str] = ..., intervention: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WatchEnded(_message.Message):
    __slots__ = ("reason", "turn_count")
    REASON_FIELD_NUMBER: _ClassVar[int]
    TURN_COUNT_FIELD_NUMBER: _ClassVar[int]
    reason: str
    turn_count: int
    def __init__(self, reason: _Optional[str] = ..., turn_count: _Optional[int] = ...) -> None: ...

class InterveneRequest(_message.Message):
    __slots__ = ("watch_id", "user_id", "message", "target_speaker_id")
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_SPEAKER_ID_FIELD_NUMBER: _ClassVar[int]
    watch_id: str
    user_id: str
    message: str
    target_speaker_id: str
    def __init__(self, watch_id: _Optional[str] = ..., user_id: _Optional[str] = ..., message: _Optional[str] = ..., target_speaker_id: _Optional[str] = ...) -> None: ...

class InterveneResponse(_message.Message):
    __slots__ = ("turn_id", "turn_index")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    turn_index: int
    def __init__(self, turn_id: _Optional[str] = ..., turn_index: _Optional[int] = ...) -> None: ...

class StopWatchRequest(_message.Message):
    __slots__ = ("watch_id", "user_id")
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    watch_id: str
    user_id: str
    def __init__(self, watch_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class StopWatchResponse(_message.Message):
    __slots__ = ("watch_id", "turn_count", "stopped_at", "already_stopped")
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_COUNT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_AT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_STOPPED_FIELD_NUMBER: _ClassVar[int]
    watch_id: str
    turn_count: int
    stopped_at: _timestamp_pb2.Timestamp
    already_stopped: bool
    def __init__(self, watch_id: _Optional[str] = ..., turn_count: _Optional[int] = ..., stopped_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., already_stopped: _Optional[bool] = ...) -> None: ...

class ControlWatchRequest(_message.Message):
    __slots__ = ("watch_id", "user_id", "paused", "pace_seconds")
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    PACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    watch_id: str
    user_id: str
    paused: bool
    pace_seconds: float
    def __init__(self, watch_id: _Optional[str] = ..., user_id: _Optional[str] = ..., paused: _Optional[bool] = ..., pace_seconds: _Optional[float] = ...) -> None: ...

class ControlWatchResponse(_message.Message):
    __slots__ = ("watch_id", "paused", "pace_seconds", "ended")
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    PACE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    watch_id: str
    paused: bool
    pace_seconds: float
    ended: bool
    def __init__(self, watch_id: _Optional[str] = ..., paused: _Optional[bool] = ..., pace_seconds: _Optional[float] = ..., ended: _Optional[bool] = ...) -> None: ...

class GetWatchNotesRequest(_message.Message):
    __slots__ = ("watch_id", "user_id")
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    watch_id: str
    user_id: str
    def __init__(self, watch_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class WatchNote(_message.Message):
    __slots__ = ("turn_id", "turn_index", "speaker_id", "phrase", "why", "kind")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    SPEAKER_ID_FIELD_NUMBER: _ClassVar[int]
    PHRASE_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    turn_index: int
    speaker_id: str
    phrase: str
    why: str
    kind: str
    def __init__(self, turn_id: _Optional[str] = ..., turn_index: _Optional[int] = ..., speaker_id: _Optional[str] = ..., phrase: _Optional[str] = ..., why: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class GetWatchNotesResponse(_message.Message):
    __slots__ = ("watch_id", "notes", "learning_points", "summary")
    WATCH_ID_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    LEARNING_POINTS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    watch_id: str
    notes: _containers.RepeatedCompositeFieldContainer[WatchNote]
    learning_points: _containers.RepeatedScalarFieldContainer[str]
    summary: str
    def __init__(self, watch_id: _Optional[str] = ..., notes: _Optional[_Iterable[_Union[WatchNote, _Mapping]]] = ..., learning_points: _Optional[_Iterable[str]] = ..., summary: _Optional[str] = ...) -> None: ...
