"""What the legacy Flask app left in Redis, read as plain data only.

The legacy app keeps its sessions with Flask-Session: `<prefix><session id>` holds the session
dict, msgpack-encoded (Flask-Session 0.6 and later; JSON if configured so) or pickled (before
0.6). Its cookie carries the session id, signed with itsdangerous when SESSION_USE_SIGNER was
on. Unpickling runs code named by the data, so pickles go through an unpickler that builds
nothing but plain values (the pickle protocol's own containers, strings and numbers, and
datetimes): anything else is refused, never constructed.

The histories the app kept, and what they become here:
- chat_history: [{"human", "ai", "timestamp"}] with chat_settings {"partner_type",
  "situation", ...}: one free-chat session, its exchanges in order (the first one is often
  the app's "[雑談開始]" opener, kept as it was).
- scenario_history: {scenario_id: [{"human", "ai", "timestamp"}]}: one history per scenario.
- watch_history: [{"speaker", "message", "timestamp"}]: the lines of an AI-to-AI dialogue.
Other keys (settings, consent flags, caches) hold no conversation and are not moved. A text
PostgreSQL cannot store (NUL, an unpaired surrogate) has that character replaced by U+FFFD.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import pickle
import re
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from itsdangerous import BadSignature, Signer

# Flask-Session's ids: secrets.token_urlsafe (0.6 and later) or a UUID (before).
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
# Classes a pickled session may name: sets (pickle protocols before 4 build them by calling
# the class) and the datetime types (Flask-Session pickles what the app stored, and datetimes
# are plain data). Each is only ever called with the pickle's arguments. Python 3 pickles by
# default with protocol 3 or later, which need nothing else.
_PLAIN_CLASSES = frozenset(
    {
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("datetime", "datetime"),
        ("datetime", "date"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
    }
)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class LegacySessionRefused(Exception):
    """The session cannot be moved. `reason`: "unsafe" (it names code, not only data),
    "unreadable" (no format of Flask-Session's) or "malformed" (its histories are not what the
    legacy app wrote)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _NotPlainData(pickle.UnpicklingError):
    pass


class PlainDataUnpickler(pickle.Unpickler):
    """Loads plain data only: any class or function other than the datetime types (os.system,
    an app's own class, copyreg's reconstructors, persistent ids...) raises instead."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PLAIN_CLASSES:
            return super().find_class(module, name)
        raise _NotPlainData(f"{module}.{name} is not plain data")

    def persistent_load(self, pid: Any) -> Any:
        raise _NotPlainData("a persistent reference is not plain data")


def unpickle_plain(data: bytes) -> Any:
    """A pickle's value if it holds nothing but plain data; LegacySessionRefused otherwise."""
    try:
        return PlainDataUnpickler(io.BytesIO(data)).load()
    except _NotPlainData as exc:
        raise LegacySessionRefused("unsafe", str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - truncated or corrupt: any error of the loader
        raise LegacySessionRefused("unreadable", f"not a valid pickle ({type(exc).__name__})") from None


def decode_session(data: bytes) -> dict[str, Any]:
    """The session dict, whichever format Flask-Session wrote it in (tried in its own order:
    msgpack, JSON, then pickle)."""
    value: Any
    for decode in (msgspec.msgpack.decode, msgspec.json.decode):
        try:
            value = decode(data)
            break
        except msgspec.DecodeError:
            continue
    else:
        value = unpickle_plain(data)
    if not isinstance(value, dict):
        raise LegacySessionRefused("unreadable", f"the session is a {type(value).__name__}, not a dict")
    return value


def session_id_from_cookie(cookie: str, secret_key: str) -> str | None:
    """The session id the legacy cookie names: its signature checked with the legacy app's
    SECRET_KEY when it signed them (Flask-Session's Signer), the bare id otherwise; None for
    anything else (a forged or malformed cookie is no legacy session)."""
    value = cookie.strip()
    if secret_key:
        try:
            value = Signer(secret_key, salt="flask-session", key_derivation="hmac").unsign(value).decode()
        except (BadSignature, UnicodeDecodeError):
            return None
    return value if _SESSION_ID.match(value) else None


@dataclass(frozen=True)
class Exchange:
    """A learner message and the reply to it."""

    learner: str
    reply: str
    at: dt.datetime | None

    def plain(self) -> dict[str, Any]:
        return {"learner": self.learner, "reply": self.reply, "at": self.at.isoformat() if self.at else None}


@dataclass(frozen=True)
class WatchLine:
    speaker: str
    text: str
    at: dt.datetime | None

    def plain(self) -> dict[str, Any]:
        return {"speaker": self.speaker, "text": self.text, "at": self.at.isoformat() if self.at else None}


@dataclass(frozen=True)
class LegacyContent:
    """The conversations of one legacy session, in the new services' terms."""

    chat: tuple[Exchange, ...] = ()
    chat_partner: str = ""
    chat_situation: str = ""
    scenarios: dict[str, tuple[Exchange, ...]] = field(default_factory=dict)
    watch: tuple[WatchLine, ...] = ()

    @property
    def session_count(self) -> int:
        return (1 if self.chat else 0) + sum(1 for s in self.scenarios.values() if s) + (1 if self.watch else 0)

    @property
    def message_count(self) -> int:
        return 2 * len(self.chat) + 2 * sum(len(s) for s in self.scenarios.values()) + len(self.watch)

    @property
    def empty(self) -> bool:
        return self.message_count == 0


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise LegacySessionRefused("malformed", f"{where} is a {type(value).__name__}, not text")
    return _UNSTORABLE.sub("\ufffd", value)


def _time(value: Any, zone: dt.tzinfo) -> dt.datetime | None:
    """The legacy app wrote datetime.now().isoformat(): naive, in the server's zone."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def _entries(value: Any, where: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list | tuple) or not all(isinstance(e, dict) for e in value):
        raise LegacySessionRefused("malformed", f"{where} is not a list of entries")
    return list(value)


def _exchanges(value: Any, where: str, zone: dt.tzinfo) -> tuple[Exchange, ...]:
    return tuple(
        Exchange(
            _text(e.get("human"), f"{where}[{i}].human"),
            _text(e.get("ai"), f"{where}[{i}].ai"),
            _time(e.get("timestamp"), zone),
        )
        for i, e in enumerate(_entries(value, where))
    )


def _setting(settings: Any, key: str) -> str:
    value = settings.get(key) if isinstance(settings, dict) else None
    return _UNSTORABLE.sub("\ufffd", value)[:100] if isinstance(value, str) else ""


def convert(session: dict[str, Any], timezone: str = "UTC") -> LegacyContent:
    """The histories of a decoded legacy session; LegacySessionRefused("malformed") if one of
    them is not what the legacy app wrote (then nothing of the session is moved)."""
    zone = ZoneInfo(timezone)
    scenarios_raw = session.get("scenario_history") or {}
    if not isinstance(scenarios_raw, dict):
        raise LegacySessionRefused("malformed", "scenario_history is not a mapping")
    scenarios = {
        _text(scenario_id, "a scenario id"): _exchanges(history, f"scenario_history[{scenario_id!r}]", zone)
        for scenario_id, history in scenarios_raw.items()
    }
    watch = tuple(
        WatchLine(
            _text(e.get("speaker", ""), f"watch_history[{i}].speaker"),
            _text(e.get("message"), f"watch_history[{i}].message"),
            _time(e.get("timestamp"), zone),
        )
        for i, e in enumerate(_entries(session.get("watch_history"), "watch_history"))
    )
    settings = session.get("chat_settings")
    return LegacyContent(
        chat=_exchanges(session.get("chat_history"), "chat_history", zone),
        chat_partner=_setting(settings, "partner_type"),
        chat_situation=_setting(settings, "situation"),
        scenarios={k: v for k, v in scenarios.items() if v},
        watch=watch,
    )


def plain_histories(content: LegacyContent) -> list[tuple[str, str, str]]:
    """(kind, name, entries as JSON) of the histories no new service holds yet."""
    rows = [
        ("scenario", scenario_id, json.dumps([e.plain() for e in exchanges], ensure_ascii=False))
        for scenario_id, exchanges in content.scenarios.items()
    ]
    if content.watch:
        rows.append(("watch", "", json.dumps([line.plain() for line in content.watch], ensure_ascii=False)))
    return rows
