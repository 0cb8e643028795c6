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

class Partner(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTNER_UNSPECIFIED: _ClassVar[Partner]
    PARTNER_COLLEAGUE: _ClassVar[Partner]
    PARTNER_SENIOR: _ClassVar[Partner]
    PARTNER_BOSS: _ClassVar[Partner]
PARTNER_UNSPECIFIED: Partner
PARTNER_COLLEAGUE: Partner
PARTNER_SENIOR: Partner
PARTNER_BOSS: Partner

class StreamReplyRequest(_message.Message):
    __slots__ = ("session_id", "user_id", "message", "partner", "situation", "language", "temperature", "partner_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    SITUATION_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    message: str
    partner: Partner
    situation: str
    language: str
    temperature: float
    partner_id: str
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., message: _Optional[str] = ..., partner: _Optional[_Union[Partner, str]] = ..., situation: _Optional[str] = ..., language: _Optional[str] = ..., temperature: _Optional[float] = ..., partner_id: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("session_id", "user_turn_id", "reply_turn_id", "text", "finish_reason", "cached")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_TURN_ID_FIELD_NUMBER: _ClassVar[int]
    REPLY_TURN_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_turn_id: str
    reply_turn_id: str
    text: str
    finish_reason: str
    cached: bool
    def __init__(self, session_id: _Optional[str] = ..., user_turn_id: _Optional[str] = ..., reply_turn_id: _Optional[str] = ..., text: _Optional[str] = ..., finish_reason: _Optional[str] = ..., cached: _Optional[bool] = ...) -> None: ...

class GetHistoryRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class GetHistoryResponse(_message.Message):
    __slots__ = ("session_id", "partner", "situation", "messages", "partner_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_FIELD_NUMBER: _ClassVar[int]
    SITUATION_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    partner: Partner
    situation: str
    messages: _containers.RepeatedCompositeFieldContainer[ChatMessage]
    partner_id: str
    def __init__(self, session_id: _Optional[str] = ..., partner: _Optional[_Union[Partner, str]] = ..., situation: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[ChatMessage, _Mapping]]] = ..., partner_id: _Optional[str] = ...) -> None: ...

class ChatMessage(_message.Message):
    __slots__ = ("turn_id", "role", "text", "created_at", "engine_id")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    ENGINE_ID_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    role: _common_pb2.Role
    text: str
    created_at: _timestamp_pb2.Timestamp
    engine_id: str
    def __init__(self, turn_id: _Optional[str] = ..., role: _Optional[_Union[_common_pb2.Role, str]] = ..., text: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., engine_id: _Optional[str] = ...) -> None: ...

class Situation(_message.Message):
    __slots__ = ("id", "title_ja", "title_en", "description_ja", "description_en")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_JA_FIELD_NUMBER: _ClassVar[int]
    TITLE_EN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_JA_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_EN_FIELD_NUMBER: _ClassVar[int]
    id: str
    title_ja: str
    title_en: str
    description_ja: str
    description_en: str
    def __init__(self, id: _Optional[str] = ..., title_ja: _Optional[str] = ..., title_en: _Optional[str] = ..., description_ja: _Optional[str] = ..., description_en: _Optional[str] = ...) -> None: ...

class ListSituationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSituationsResponse(_message.Message):
    __slots__ = ("situations",)
    SITUATIONS_FIELD_NUMBER: _ClassVar[int]
    situations: _containers.RepeatedCompositeFieldContainer[Situation]
    def __init__(self, situations: _Optional[_Iterable[_Union[Situation, _Mapping]]] = ...) -> None: ...

class Character(_message.Message):
    __slots__ = ("id", "label_ja", "label_en")
    ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_JA_FIELD_NUMBER: _ClassVar[int]
    LABEL_EN_FIELD_NUMBER: _ClassVar[int]
    id: str
    label_ja: str
    label_en: str
    def __init__(self, id: _Optional[str] = ..., label_ja: _Optional[str] = ..., label_en: _Optional[str] = ...) -> None: ...

class GetOptionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetOptionsResponse(_message.Message):
    __slots__ = ("characters", "situations", "max_message_chars")
    CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    SITUATIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_CHARS_FIELD_NUMBER: _ClassVar[int]
    characters: _containers.RepeatedCompositeFieldContainer[Character]
    situations: _containers.RepeatedCompositeFieldContainer[Situation]
    max_message_chars: int
    def __init__(self, characters: _Optional[_Iterable[_Union[Character, _Mapping]]] = ..., situations: _Optional[_Iterable[_Union[Situation, _Mapping]]] = ..., max_message_chars: _Optional[int] = ...) -> None: ...

class EndSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

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
