"""Text that can be stored: PostgreSQL refuses the NUL character, and a lone UTF-16 surrogate
(which JSON's "\\ud800" escape can carry) cannot be encoded at all. Checked when a request is
read, so such input is a 422 (INVALID_ARGUMENT) instead of a failure after the work is done."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, Field


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


# A learner's message as an API field: storable text that is not only spaces.
LearnerText = Annotated[str, AfterValidator(storable)]


def learner_message_field(max_chars: int) -> Any:
    """The pydantic Field of a learner's message (use with LearnerText)."""
    return Field(
        min_length=1,
        max_length=max_chars,
        pattern=r"\S",
        description="The learner's message (not only spaces; no NUL characters)",
        # Both rules in the published schema (not only spaces, no NUL), in a form property-based
        # clients can generate from (no look-ahead, no surrogate escapes); `storable` also
        # refuses an unpaired surrogate, which JSON can carry as "\ud800".
        json_schema_extra={"pattern": r"^[^\u0000]*[^\s\u0000][^\u0000]*$"},
    )
