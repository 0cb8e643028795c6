from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SynthesizeRequest(_message.Message):
    __slots__ = ("text", "language", "voice", "speed", "mime_type", "character_id")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_ID_FIELD_NUMBER: _ClassVar[int]
    text: str
    language: str
    voice: str
    speed: float
    mime_type: str
    character_id: str
    def __init__(self, text: _Optional[str] = ..., language: _Optional[str] = ..., voice: _Optional[str] = ..., speed: _Optional[float] = ..., mime_type: _Optional[str] = ..., character_id: _Optional[str] = ...) -> None: ...

class SynthesizeResponse(_message.Message):
    __slots__ = ("audio", "mime_type", "sample_rate_hz", "duration_ms", "voice", "engine", "cached")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    mime_type: str
    sample_rate_hz: int
    duration_ms: int
    voice: str
    engine: str
    cached: bool
    def __init__(self, audio: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., sample_rate_hz: _Optional[int] = ..., duration_ms: _Optional[int] = ..., voice: _Optional[str] = ..., engine: _Optional[str] = ..., cached: _Optional[bool] = ...) -> None: ...

class StreamSynthesizeRequest(_message.Message):
    __slots__ = ("text", "language", "voice", "speed", "mime_type", "character_id")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_ID_FIELD_NUMBER: _ClassVar[int]
    text: str
    language: str
    voice: str
    speed: float
    mime_type: str
    character_id: str
    def __init__(self, text: _Optional[str] = ..., language: _Optional[str] = ..., voice: _Optional[str] = ..., speed: _Optional[float] = ..., mime_type: _Optional[str] = ..., character_id: _Optional[str] = ...) -> None: ...

class StreamSynthesizeResponse(_message.Message):
    __slots__ = ("started", "chunk", "done")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    started: SynthesisStarted
    chunk: AudioChunk
    done: SynthesisDone
    def __init__(self, started: _Optional[_Union[SynthesisStarted, _Mapping]] = ..., chunk: _Optional[_Union[AudioChunk, _Mapping]] = ..., done: _Optional[_Union[SynthesisDone, _Mapping]] = ...) -> None: ...

class SynthesisStarted(_message.Message):
    __slots__ = ("mime_type", "sample_rate_hz", "voice", "engine", "cached")
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    mime_type: str
    sample_rate_hz: int
    voice: str
    engine: str
    cached: bool
    def __init__(self, mime_type: _Optional[str] = ..., sample_rate_hz: _Optional[int] = ..., voice: _Optional[str] = ..., engine: _Optional[str] = ..., cached: _Optional[bool] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("audio", "sequence")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    sequence: int
    def __init__(self, audio: _Optional[bytes] = ..., sequence: _Optional[int] = ...) -> None: ...

class SynthesisDone(_message.Message):
    __slots__ = ("duration_ms", "total_bytes", "chunk_count")
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    duration_ms: int
    total_bytes: int
    chunk_count: int
    def __init__(self, duration_ms: _Optional[int] = ..., total_bytes: _Optional[int] = ..., chunk_count: _Optional[int] = ...) -> None: ...

class ListVoicesRequest(_message.Message):
    __slots__ = ("language",)
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    language: str
    def __init__(self, language: _Optional[str] = ...) -> None: ...

class Voice(_message.Message):
    __slots__ = ("id", "language", "gender", "engine", "description")
    ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    GENDER_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    language: str
    gender: str
    engine: str
    description: str
    def __init__(self, id: _Optional[str] = ..., language: _Optional[str] = ..., gender: _Optional[str] = ..., engine: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class CharacterVoice(_message.Message):
    __slots__ = ("character_id", "language", "voice")
    CHARACTER_ID_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    character_id: str
    language: str
    voice: str
    def __init__(self, character_id: _Optional[str] = ..., language: _Optional[str] = ..., voice: _Optional[str] = ...) -> None: ...

class ListVoicesResponse(_message.Message):
    __slots__ = ("voices", "characters")
    VOICES_FIELD_NUMBER: _ClassVar[int]
    CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    voices: _containers.RepeatedCompositeFieldContainer[Voice]
    characters: _containers.RepeatedCompositeFieldContainer[CharacterVoice]
    def __init__(self, voices: _Optional[_Iterable[_Union[Voice, _Mapping]]] = ..., characters: _Optional[_Iterable[_Union[CharacterVoice, _Mapping]]] = ...) -> None: ...

class TranscribeRequest(_message.Message):
    __slots__ = ("audio", "mime_type", "language")
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    mime_type: str
    language: str
    def __init__(self, audio: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class TranscribeResponse(_message.Message):
    __slots__ = ("text", "engine")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    text: str
    engine: str
    def __init__(self, text: _Optional[str] = ..., engine: _Optional[str] = ...) -> None: ...
