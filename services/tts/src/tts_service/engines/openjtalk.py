"""Japanese with Open JTalk (pyopenjtalk-plus, its dictionary and the "mei" voice bundled):
an HTS voice, quick (about 0.05 s per second of speech), 48 kHz. One female voice; pitch
(half_tone) and pace make its variants."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .base import Pcm, VoiceSpec

ENGINE = "offline:pyopenjtalk"


class OpenJTalkEngine:
    name = ENGINE

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tts: Any = None

    def load(self) -> None:
        """Import the library and load its dictionary (once; any thread)."""
        with self._lock:
            if self._tts is not None:
                return
            import pyopenjtalk

            pyopenjtalk.run_frontend("準備")  # loads the dictionary and the reading models
            self._tts = pyopenjtalk.tts

    def synthesize(self, text: str, voice: VoiceSpec, speed: float) -> Pcm:
        self.load()
        assert self._tts is not None
        rate = float(voice.params.get("speed", 1.0)) * speed
        half_tone = float(voice.params.get("half_tone", 0.0))
        # pyopenjtalk locks its engine itself; the samples are float64 on the int16 scale.
        samples, sample_rate = self._tts(text, speed=rate, half_tone=half_tone)
        return Pcm(np.clip(samples, -32768, 32767).astype(np.int16), int(sample_rate))

    def warm_up(self) -> None:
        self.synthesize("こんにちは。", VoiceSpec("warm-up", "ja", "female", ENGINE), 1.0)
