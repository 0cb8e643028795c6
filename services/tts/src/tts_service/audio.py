"""Text into sentences, PCM into MP3 or WAV, and the audio cache's key: no I/O here.

A text is spoken sentence by sentence so that the first sentence's audio can go out while the
next is synthesised. One encoder runs over the whole text: its output, chunk after chunk, is a
single valid file (MP3 frames simply follow one another; a streamed WAV's header gives the
"unknown length" sizes, which the stored copy replaces with the real ones).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import unicodedata
from dataclasses import dataclass
from typing import Protocol

import lameenc  # type: ignore[import-not-found]
import numpy as np

from .engines.base import Pcm, VoiceSpec

MP3 = "audio/mpeg"
WAV = "audio/wav"
FORMATS = {"mp3": MP3, "audio/mpeg": MP3, "audio/mp3": MP3, "wav": WAV, "audio/wav": WAV, "audio/x-wav": WAV}
CACHE_KEY_VERSION = 1

# Sentence ends, as the pages split a streamed reply (services/web static/speech.js), so a page's
# request per sentence and a whole text split here ask for the same audio.
_JA_END = "。！？"
_EN_END = "!?."
_CLOSERS = "」』）)\"'"
_TRAILING = _JA_END + _EN_END + _CLOSERS
# A sentence longer than this is cut at a comma or a space (a long first sentence would hold up
# the first audio; Kokoro reads at most ~500 phonemes at once).
MAX_SENTENCE_CHARS = 160
_SOFT_BREAK = re.compile(r"(?<=[、，,;；:：])|(?<=\s)")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u2028\u2029\ufeff]")
_SPACES = re.compile(r"[ \t\u3000]+")


def normalise(text: str) -> str:
    """The text as it is spoken and keyed: NFC, no control characters, single spaces, trimmed
    lines, no empty lines."""
    text = _CONTROL.sub(" ", unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n"))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def split_sentences(text: str) -> list[str]:
    """Sentences of a (normalised) text: Japanese ends at 。！？, English at . ! ? before a space,
    a closing bracket or the end; a line break ends one too. Punctuation and closing brackets
    right after an end stay with their sentence."""
    done: list[str] = []
    start = 0
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        after = text[i + 1] if i + 1 < n else None
        end = -1
        if c in _JA_END or c == "\n":
            end = i + 1
        elif c in _EN_END and (after is None or after.isspace() or after in _CLOSERS):
            end = i + 1
        if end < 0:
            i += 1
            continue
        while end < n and text[end] in _TRAILING:
            end += 1
        sentence = text[start:end].strip()
        if sentence:
            done.extend(_cut(sentence))
        start = end
        i = end
    rest = text[start:].strip()
    if rest:
        done.extend(_cut(rest))
    return done


def _cut(sentence: str) -> list[str]:
    """A sentence over MAX_SENTENCE_CHARS in pieces, each cut after a comma or space near the limit."""
    pieces: list[str] = []
    while len(sentence) > MAX_SENTENCE_CHARS:
        head = sentence[:MAX_SENTENCE_CHARS]
        breaks = [m.start() for m in _SOFT_BREAK.finditer(head) if m.start() >= MAX_SENTENCE_CHARS // 3]
        cut = breaks[-1] if breaks else MAX_SENTENCE_CHARS
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    if sentence:
        pieces.append(sentence)
    return [p for p in pieces if p]


def cache_key(
    *, engine: str, voice: VoiceSpec, speed: float, mime_type: str, text: str, options: dict[str, object]
) -> str:
    """sha256 over everything that shapes the audio: engine, voice (and its parameters), speed,
    encoding and its options, the normalised text."""
    material = {
        "v": CACHE_KEY_VERSION,
        "engine": engine,
        "voice": voice.id,
        "params": voice.params,
        "speed": round(speed, 3),
        "mime": mime_type,
        "options": options,
        "text": normalise(text),
    }
    return hashlib.sha256(json.dumps(material, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


class Encoder(Protocol):
    mime_type: str

    def feed(self, pcm: Pcm) -> bytes:
        """The encoded bytes ready after this PCM (possibly none yet)."""
        ...

    def finish(self) -> bytes:
        """The rest: everything the encoder still holds."""
        ...

    def finalise(self, whole: bytes) -> bytes:
        """The whole output as it is stored (a WAV's sizes filled in)."""
        ...


class Mp3Encoder:
    """One LAME encoder for one text, mono CBR, at the engine's own sample rate (48 kHz, 24 kHz
    and 22.05 kHz are all MP3 rates: nothing is resampled)."""

    mime_type = MP3

    def __init__(self, bitrate_kbps: int = 64) -> None:
        self.bitrate_kbps = bitrate_kbps
        self._encoder: lameenc.Encoder | None = None
        self.sample_rate = 0

    def feed(self, pcm: Pcm) -> bytes:
        if self._encoder is None:
            encoder = lameenc.Encoder()
            encoder.set_bit_rate(self.bitrate_kbps)
            encoder.set_in_sample_rate(pcm.sample_rate)
            encoder.set_out_sample_rate(pcm.sample_rate)
            encoder.set_channels(1)
            encoder.set_quality(5)
            self._encoder, self.sample_rate = encoder, pcm.sample_rate
        elif pcm.sample_rate != self.sample_rate:
            raise ValueError(f"sample rate changed within one text ({self.sample_rate} -> {pcm.sample_rate})")
        return bytes(self._encoder.encode(np.ascontiguousarray(pcm.samples, dtype=np.int16).tobytes()))

    def finish(self) -> bytes:
        return bytes(self._encoder.flush()) if self._encoder is not None else b""

    def finalise(self, whole: bytes) -> bytes:
        return whole


_UNKNOWN_SIZE = 0xFFFFFFFF


def wav_header(sample_rate: int, data_bytes: int = _UNKNOWN_SIZE) -> bytes:
    riff = _UNKNOWN_SIZE if data_bytes == _UNKNOWN_SIZE else 36 + data_bytes
    return (
        b"RIFF"
        + struct.pack("<I", riff)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


class WavEncoder:
    """16-bit mono PCM in a RIFF/WAVE file; streamed with "unknown" sizes, stored with real ones."""

    mime_type = WAV

    def __init__(self) -> None:
        self.sample_rate = 0

    def feed(self, pcm: Pcm) -> bytes:
        head = b""
        if not self.sample_rate:
            self.sample_rate = pcm.sample_rate
            head = wav_header(pcm.sample_rate)
        elif pcm.sample_rate != self.sample_rate:
            raise ValueError(f"sample rate changed within one text ({self.sample_rate} -> {pcm.sample_rate})")
        return head + np.ascontiguousarray(pcm.samples, dtype="<i2").tobytes()

    def finish(self) -> bytes:
        return b""

    def finalise(self, whole: bytes) -> bytes:
        if len(whole) < 44:
            return whole
        return wav_header(self.sample_rate, len(whole) - 44) + whole[44:]


def encoder_for(mime_type: str, *, bitrate_kbps: int) -> Encoder:
    if mime_type == WAV:
        return WavEncoder()
    return Mp3Encoder(bitrate_kbps)


def silence(sample_rate: int, ms: int) -> Pcm:
    return Pcm(np.zeros(int(sample_rate * ms / 1000), np.int16), sample_rate)


def is_mp3(data: bytes) -> bool:
    """Starts with an MPEG audio frame (11 sync bits set)."""
    return len(data) >= 4 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0


@dataclass(frozen=True)
class Mp3Frame:
    version: str  # "1", "2", "2.5"
    bitrate_kbps: int
    sample_rate: int
    length: int  # bytes, header included


_MP3_BITRATES = {
    "1": (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    "2": (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {"1": (44100, 48000, 32000), "2": (22050, 24000, 16000), "2.5": (11025, 12000, 8000)}


def mp3_frames(data: bytes) -> list[Mp3Frame]:
    """Walk the MPEG-1/2 layer III frames of `data` from its start; raises ValueError at
    anything that is not a frame (a test's and the bench's check of what clients receive)."""
    frames = []
    pos = 0
    while pos + 4 <= len(data):
        b1, b2 = data[pos + 1], data[pos + 2]
        if data[pos] != 0xFF or b1 & 0xE0 != 0xE0 or (b1 >> 1) & 0x3 != 0x1:
            raise ValueError(f"no layer III frame at byte {pos}")
        version = {3: "1", 2: "2", 0: "2.5"}.get((b1 >> 3) & 0x3)
        bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 0x3
        if version is None or bitrate_index in (0, 15) or rate_index == 3:
            raise ValueError(f"bad frame header at byte {pos}")
        bitrate = _MP3_BITRATES["1" if version == "1" else "2"][bitrate_index]
        rate = _MP3_RATES[version][rate_index]
        padding = (b2 >> 1) & 0x1
        length = (144 if version == "1" else 72) * bitrate * 1000 // rate + padding
        frames.append(Mp3Frame(version, bitrate, rate, length))
        pos += length
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} bytes left after the last whole frame")
    return frames
