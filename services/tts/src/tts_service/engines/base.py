"""What every speech engine gives and takes: mono 16-bit PCM, and the voice it speaks with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Pcm:
    """Mono signed 16-bit samples."""

    samples: np.ndarray  # dtype int16, shape (n,)
    sample_rate: int

    @property
    def duration_ms(self) -> int:
        return int(1000 * len(self.samples) / self.sample_rate)


@dataclass(frozen=True)
class VoiceSpec:
    """A concrete voice: the engine that speaks it and that engine's parameters."""

    id: str  # e.g. "ja-female-calm"
    language: str  # "ja" | "en"
    gender: str  # "female" | "male"
    engine: str  # e.g. "offline:pyopenjtalk", "offline:kokoro", "offline:piper", "google:gemini-tts"
    params: dict[str, float | str] = field(default_factory=dict)  # engine-specific (pitch, speed, speaker)
    description: str = ""


class SpeechEngine(Protocol):
    name: str  # the engine id, as in VoiceSpec.engine

    def synthesize(self, text: str, voice: VoiceSpec, speed: float) -> Pcm:
        """Blocking, CPU-bound (or network-bound): call it in a worker thread."""
        ...


class SpeechUnavailable(Exception):
    """The engine cannot speak now (budget spent, provider down, not configured)."""
