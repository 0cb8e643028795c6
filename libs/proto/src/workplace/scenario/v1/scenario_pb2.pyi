import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from workplace.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Difficulty(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIFFICULTY_UNSPECIFIED: _ClassVar[Difficulty]
    DIFFICULTY_BEGINNER: _ClassVar[Difficulty]
    DIFFICULTY_INTERMEDIATE: _ClassVar[Difficulty]
    DIFFICULTY_ADVANCED: _ClassVar[Difficulty]
DIFFICULTY_UNSPECIFIED: Difficulty
DIFFICULTY_BEGINNER: Difficulty
DIFFICULTY_INTERMEDIATE: Difficulty
DIFFICULTY_ADVANCED: Difficulty

class Category(_message.Message):
    __slots__ = ("id", "name_ja", "name_en", "scenario_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_JA_FIELD_NUMBER: _ClassVar[int]
    NAME_EN_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name_ja: str
    name_en: str
    scenario_count: int
    def __init__(self, id: _Optional[str] = ..., name_ja: _Optional[str] = ..., name_en: _Optional[str] = ..., scenario_count: _Optional[int] = ...) -> None: ...

class Scenario(_message.Message):
    __slots__ = ("id", "title_ja", "title_en", "description_ja", "description_en", "category_id", "difficulty", "ai_role", "ai_personality", "user_role", "situation", "learning_points", "feedback_points", "tags", "estimated_minutes", "opening_message", "reverse_role", "character_id", "goal", "criteria", "consent", "language")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_JA_FIELD_NUMBER: _ClassVar[int]
    TITLE_EN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_JA_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_EN_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    AI_ROLE_FIELD_NUMBER: _ClassVar[int]
    AI_PERSONALITY_FIELD_NUMBER: _ClassVar[int]
    USER_ROLE_FIELD_NUMBER: _ClassVar[int]
    SITUATION_FIELD_NUMBER: _ClassVar[int]
    LEARNING_POINTS_FIELD_NUMBER: _ClassVar[int]
    FEEDBACK_POINTS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_MINUTES_FIELD_NUMBER: _ClassVar[int]
    OPENING_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REVERSE_ROLE_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_FIELD_NUMBER: _ClassVar[int]
    CRITERIA_FIELD_NUMBER: _ClassVar[int]
    CONSENT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    title_ja: str
    title_en: str
    description_ja: str
    description_en: str
    category_id: str
    difficulty: Difficulty
    ai_role: str
    ai_personality: str
    user_role: str
    situation: str
    learning_points: _containers.RepeatedScalarFieldContainer[str]
    feedback_points: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    estimated_minutes: int
    opening_message: str
    reverse_role: bool
    character_id: str
    goal: str
    criteria: _containers.RepeatedCompositeFieldContainer[Criterion]
    consent: Consent
    language: str
    def __init__(self, id: _Optional[str] = ..., title_ja: _Optional[str] = ..., title_en: _Optional[str] = ..., description_ja: _Optional[str] = ..., description_en: _Optional[str] = ..., category_id: _Optional[str] = ..., difficulty: _Optional[_Union[Difficulty, str]] = ..., ai_role: _Optional[str] = ..., ai_personality: _Optional[str] = ..., user_role: _Optional[str] = ..., situation: _Optional[str] = ..., learning_points: _Optional[_Iterable[str]] = ..., feedback_points: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., estimated_minutes: _Optional[int] = ..., opening_message: _Optional[str] = ..., reverse_role: _Optional[bool] = ..., character_id: _Optional[str] = ..., goal: _Optional[str] = ..., criteria: _Optional[_Iterable[_Union[Criterion, _Mapping]]] = ..., consent: _Optional[_Union[Consent, _Mapping]] = ..., language: _Optional[str] = ...) -> None: ...

class Criterion(_message.Message):
    __slots__ = ("id", "text")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class Consent(_message.Message):
    __slots__ = ("notice", "help")
    NOTICE_FIELD_NUMBER: _ClassVar[int]
    HELP_FIELD_NUMBER: _ClassVar[int]
    notice: str
    help: str
    def __init__(self, notice: _Optional[str] = ..., help: _Optional[str] = ...) -> None: ...

class ListScenariosRequest(_message.Message):
    __slots__ = ("category_id", "difficulty", "page_size", "page_token", "tag", "language")
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    category_id: str
    difficulty: Difficulty
    page_size: int
    page_token: str
    tag: str
    language: str
    def __init__(self, category_id: _Optional[str] = ..., difficulty: _Optional[_Union[Difficulty, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., tag: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class ListScenariosResponse(_message.Message):
    __slots__ = ("scenarios", "next_page_token", "categories")
    SCENARIOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    scenarios: _containers.RepeatedCompositeFieldContainer[Scenario]
    next_page_token: str
    categories: _containers.RepeatedCompositeFieldContainer[Category]
    def __init__(self, scenarios: _Optional[_Iterable[_Union[Scenario, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., categories: _Optional[_Iterable[_Union[Category, _Mapping]]] = ...) -> None: ...

class GetScenarioRequest(_message.Message):
    __slots__ = ("scenario_id", "language")
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    language: str
    def __init__(self, scenario_id: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class GetScenarioResponse(_message.Message):
    __slots__ = ("scenario",)
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    scenario: Scenario
    def __init__(self, scenario: _Optional[_Union[Scenario, _Mapping]] = ...) -> None: ...

class SearchScenariosRequest(_message.Message):
    __slots__ = ("query", "limit", "category_id", "difficulty", "user_id", "language")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    query: str
    limit: int
    category_id: str
    difficulty: Difficulty
    user_id: str
    language: str
    def __init__(self, query: _Optional[str] = ..., limit: _Optional[int] = ..., category_id: _Optional[str] = ..., difficulty: _Optional[_Union[Difficulty, str]] = ..., user_id: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class ScenarioMatch(_message.Message):
    __slots__ = ("scenario", "score")
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    scenario: Scenario
    score: float
    def __init__(self, scenario: _Optional[_Union[Scenario, _Mapping]] = ..., score: _Optional[float] = ...) -> None: ...

class SearchScenariosResponse(_message.Message):
    __slots__ = ("matches",)
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    matches: _containers.RepeatedCompositeFieldContainer[ScenarioMatch]
    def __init__(self, matches: _Optional[_Iterable[_Union[ScenarioMatch, _Mapping]]] = ...) -> None: ...

class StartSessionRequest(_message.Message):
    __slots__ = ("scenario_id", "user_id", "language", "consent_given")
    SCENARIO_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    CONSENT_GIVEN_FIELD_NUMBER: _ClassVar[int]
    scenario_id: str
    user_id: str
    language: str
    consent_given: bool
    def __init__(self, scenario_id: _Optional[str] = ..., user_id: _Optional[str] = ..., language: _Optional[str] = ..., consent_given: _Optional[bool] = ...) -> None: ...

class StartSessionResponse(_message.Message):
    __slots__ = ("session_id", "scenario", "opening_message", "opening_turn_id", "started_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    OPENING_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OPENING_TURN_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    scenario: Scenario
    opening_message: str
    opening_turn_id: str
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., scenario: _Optional[_Union[Scenario, _Mapping]] = ..., opening_message: _Optional[str] = ..., opening_turn_id: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class StreamReplyRequest(_message.Message):
    __slots__ = ("session_id", "user_id", "message", "temperature")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    message: str
    temperature: float
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., message: _Optional[str] = ..., temperature: _Optional[float] = ...) -> None: ...

class StreamReplyResponse(_message.Message):
    __slots__ = ("started", "delta", "done")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    started: ReplyStarted
    delta: ReplyDelta
    done: ReplyDone
    def __init__(self, started: _Optional[_Union[ReplyStarted, _Mapping]] = ..., delta: _Optional[_Union[ReplyDelta, _Mapping]] = ..., done: _Optional[_Union[ReplyDone, _Mapping]] = ...) -> None: ...

class ReplyStarted(_message.Message):
    __slots__ = ("session_id", "user_turn_id", "engine", "cached")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_TURN_ID_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_turn_id: str
    engine: _common_pb2.EngineInfo
    cached: bool
    def __init__(self, session_id: _Optional[str] = ..., user_turn_id: _Optional[str] = ..., engine: _Optional[_Union[_common_pb2.EngineInfo, _Mapping]] = ..., cached: _Optional[bool] = ...) -> None: ...

class ReplyDelta(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class ReplyDone(_message.Message):
    __slots__ = ("session_id", "user_turn_id", "reply_turn_id", "text", "finish_reason", "cached", "turn_index", "move", "session_ended", "end_reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_TURN_ID_FIELD_NUMBER: _ClassVar[int]
    REPLY_TURN_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    MOVE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ENDED_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_turn_id: str
    reply_turn_id: str
    text: str
    finish_reason: str
    cached: bool
    turn_index: int
    move: str
    session_ended: bool
    end_reason: str
    def __init__(self, session_id: _Optional[str] = ..., user_turn_id: _Optional[str] = ..., reply_turn_id: _Optional[str] = ..., text: _Optional[str] = ..., finish_reason: _Optional[str] = ..., cached: _Optional[bool] = ..., turn_index: _Optional[int] = ..., move: _Optional[str] = ..., session_ended: _Optional[bool] = ..., end_reason: _Optional[str] = ...) -> None: ...

class EndSessionRequest(_message.Message):
    __slots__ = ("session_id", "user_id", "reason")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    reason: str
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EndSessionResponse(_message.Message):
    __slots__ = ("session_id", "turn_count", "ended_at", "already_ended")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TURN_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_ENDED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    turn_count: int
    ended_at: _timestamp_pb2.Timestamp
    already_ended: bool
    def __init__(self, session_id: _Optional[str] = ..., turn_count: _Optional[int] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., already_ended: _Optional[bool] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("session_id", "user_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class SessionTurn(_message.Message):
    __slots__ = ("turn_id", "role", "text", "move", "created_at")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    MOVE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    role: _common_pb2.Role
    text: str
    move: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, turn_id: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., text: _Optional[str] = ..., move: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetSessionResponse(_message.Message):
    __slots__ = ("session_id", "scenario", "turns", "started_at", "ended_at", "end_reason", "language")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SCENARIO_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    END_REASON_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    scenario: Scenario
    turns: _containers.RepeatedCompositeFieldContainer[SessionTurn]
    started_at: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    end_reason: str
    language: str
    def __init__(self, session_id: _Optional[str] = ..., scenario: _Optional[_Union[Scenario, _Mapping]] = ..., turns: _Optional[_Iterable[_Union[SessionTurn, _Mapping]]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_reason: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...
