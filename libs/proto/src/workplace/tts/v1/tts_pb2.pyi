from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SynthesizeRequest(_message.Message):
    __slots__ = ("text", "language", "voice", "speed", "mime_type")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    text: str
    language: str
    voice: str
    speed: float
    mime_type: str
    def __init__(self, text: _Optional[str] = ..., language: _Optional[str] = ..., voice: _Optional[str] = ..., speed: _Optional[float] = ..., mime_type: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("text", "language", "voice", "speed", "mime_type")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    text: str
    language: str
    voice: str
    speed: float
    mime_type: str
    def __init__(self, text: _Optional[str] = ..., language: _Optional[str] = ..., voice: _Optional[str] = ..., speed: _Optional[float] = ..., mime_type: _Optional[str] = ...) -> None: ...

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
