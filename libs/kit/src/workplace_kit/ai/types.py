"""Engine-neutral types for dialogue: what the domain asks for, what an engine streams back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol

Role = Literal["user", "model"]
# A character id from the serving service's content (characters.yaml), e.g. "colleague".
Partner = str


@dataclass(frozen=True)
class Turn:
    role: Role
    text: str


@dataclass(frozen=True)
class DialogueRequest:
    """One reply to produce: who speaks (persona), in what situation, after which history."""

    system_instruction: str
    message: str
    history: tuple[Turn, ...] = ()
    partner: Partner = "colleague"
    situation: str = "break"  # a situation id, e.g. "break", "lunch", "morning", "after_work"
    language: Literal["ja", "en"] | None = None  # None: follow the learner's language
    temperature: float = 0.7
    max_output_tokens: int = 512
    persona_name: str = ""
    # The learner's time of day ("morning", "daytime", "evening"); None: the situation's, if any.
    time_of_day: Literal["morning", "daytime", "evening"] | None = None


@dataclass(frozen=True)
class EngineInfo:
    """Which engine answered, shown to the learner (the UI says plainly which engine it was)."""

    id: str  # "gemini", "offline-retrieval", "local-llm"
    label: str  # human readable, e.g. "Gemini (gemini-2.5-flash)"
    model: str = ""


@dataclass(frozen=True)
class ReplyStarted:
    """First event of a streamed reply a service sends its client: the ids and the engine."""

    session_id: str
    user_turn_id: str
    engine: EngineInfo
    cached: bool = False


@dataclass(frozen=True)
class ReplyDelta:
    """A piece of the reply's text, in order."""

    text: str


@dataclass
class ReplyChunk:
    text: str
    final: bool = False
    finish_reason: str = ""
    usage: dict[str, int] = field(default_factory=dict)


class AIUnavailableError(RuntimeError):
    """The AI provider failed after retries (quota, overload, timeout). Safe to show to users."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class DialogueEngine(Protocol):
    info: EngineInfo

    def stream_reply(self, request: DialogueRequest) -> AsyncIterator[ReplyChunk]:
        """Yield the reply in chunks; the last chunk has final=True."""
        ...


def fit_history(turns: tuple[Turn, ...], keep_exchanges: int, line_chars: int = 60) -> tuple[tuple[Turn, ...], str]:
    """(the last `keep_exchanges` exchanges as they were, the older turns condensed to one short
    line each). A long roleplay stays coherent for a generative engine without sending it
    every word: the condensed lines go into its instruction."""
    keep = 2 * keep_exchanges
    if len(turns) <= keep:
        return turns, ""
    older = turns[: len(turns) - keep]
    lines = []
    for turn in older:
        text = " ".join(turn.text.split())
        text = text if len(text) <= line_chars else text[: line_chars - 1] + "…"
        lines.append(f"{'learner' if turn.role == 'user' else 'you'}: {text}")
    return turns[len(turns) - keep :], "\n".join(lines)
