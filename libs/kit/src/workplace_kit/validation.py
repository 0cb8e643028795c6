"""Text that can be stored: PostgreSQL refuses the NUL character, and a lone UTF-16 surrogate
(which JSON's "\\ud800" escape can carry) cannot be encoded at all. Checked when a request is
read, so such input is a 422 (INVALID_ARGUMENT) instead of a failure after the work is done."""

from __future__ import annotations


def unstorable(text: str) -> bool:
    return "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text)


def storable(text: str) -> str:
    """A pydantic AfterValidator: the text, or a ValueError that FastAPI answers with 422."""
    if unstorable(text):
        raise ValueError("contains characters that cannot be stored (NUL or an unpaired surrogate)")
    return text


# The same rule in the JSON Schema (ECMA regex) of a field, so that API clients and property
# tests know it; pydantic's own pattern engine cannot express surrogates.
STORABLE_PATTERN = r"^[^\u0000\ud800-\udfff]*$"
