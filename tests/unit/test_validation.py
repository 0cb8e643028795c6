"""Text PostgreSQL cannot store is refused when a request is read."""

from __future__ import annotations

import re

import pytest
from workplace_kit.validation import STORABLE_PATTERN, storable, unstorable


@pytest.mark.parametrize("text", ["こんにちは", "", "tab\tand\nnewline", "emoji 😀", "\x01 control"])
def test_storable_text_passes(text):
    assert storable(text) == text and not unstorable(text)
    assert re.fullmatch(STORABLE_PATTERN.replace("\\u0000", "\\x00"), text)


@pytest.mark.parametrize("text", ["a\x00b", "\x00", "lone \ud800 surrogate", "\udfff"])
def test_nul_and_lone_surrogates_are_refused(text):
    assert unstorable(text)
    with pytest.raises(ValueError, match="cannot be stored"):
        storable(text)
