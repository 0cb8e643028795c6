"""Reading the legacy Flask app's sessions: plain data only, in every format Flask-Session wrote,
and the cookie's id checked as Flask-Session signs it."""

from __future__ import annotations

import datetime as dt
import io
import os
import pickle
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest
from auth_service.legacy_format import (
    LegacySessionRefused,
    convert,
    decode_session,
    session_id_from_cookie,
    unpickle_plain,
)
from flask import Flask
from flask_session.redis import RedisSessionInterface
from redis import Redis  # never connected: the interfaces only need one

SESSION = {
    "_permanent": True,
    "chat_history": [
        {"human": "[雑談開始]", "ai": "おはようございます！", "timestamp": "2025-06-01T09:00:00"},
        {"human": "週末はどうでした？", "ai": "山に行きました。", "timestamp": "2025-06-01T09:01:00"},
    ],
    "chat_settings": {"partner_type": "senior", "situation": "break", "model": "gemini/gemini-1.5-flash"},
    "scenario_history": {"scenario1": [{"human": "報告します", "ai": "どうぞ", "timestamp": "2025-06-02T10:00:00"}]},
    "watch_history": [{"speaker": "A", "message": "こんにちは", "timestamp": "2025-06-03T11:00:00"}],
}


class Gadget:
    def __reduce__(self):
        return (os.system, ("touch /tmp/never",))


def test_plain_pickles_load_in_every_protocol():
    value = {**SESSION, "when": dt.datetime(2025, 6, 1, 9, tzinfo=dt.UTC), "tags": {"a", "b"}, "pair": (1, 2.5)}
    for protocol in range(3, pickle.HIGHEST_PROTOCOL + 1):  # Python 3's defaults
        assert unpickle_plain(pickle.dumps(value, protocol=protocol)) == value


def persistent_reference() -> bytes:
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer)
    pickler.persistent_id = lambda obj: "ref" if obj == "secret" else None  # type: ignore[method-assign]
    pickler.dump({"x": "secret"})
    return buffer.getvalue()


def test_a_pickle_naming_code_is_refused_and_never_run(tmp_path: Path):
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    for payload in (
        pickle.dumps({"chat_history": [], "x": Exploit()}),
        pickle.dumps({"x": Gadget()}, protocol=0),
        # eval, subprocess, an app's own class, a builtin that is not a container
        pickle.dumps({"x": subprocess.Popen}),
        pickle.dumps({"x": Gadget}),
        pickle.dumps({"x": eval}),
        b"cbuiltins\neval\n(S'print(1)'\ntR.",
        persistent_reference(),
    ):
        with pytest.raises(LegacySessionRefused) as refused:
            decode_session(payload)
        assert refused.value.reason == "unsafe"
    assert not marker.exists()


def test_a_corrupt_session_is_unreadable_not_unsafe():
    with pytest.raises(LegacySessionRefused) as refused:
        decode_session(pickle.dumps(SESSION)[:-10])
    assert refused.value.reason == "unreadable"
    with pytest.raises(LegacySessionRefused) as refused:
        decode_session(msgspec.msgpack.encode([1, 2]))
    assert refused.value.reason == "unreadable"


@pytest.mark.parametrize("format", ["msgpack", "json"])
def test_flask_session_formats_decode_to_the_same_session(format: str):
    app = Flask(__name__)
    interface = RedisSessionInterface(app, client=Redis(), serialization_format=format)
    encoded = interface.serializer.encode(interface.session_class(SESSION, sid="x"))
    assert decode_session(encoded) == SESSION


def test_conversion_keeps_every_message_in_order():
    content = convert(decode_session(pickle.dumps(SESSION)), timezone="Asia/Tokyo")
    assert [(e.learner, e.reply) for e in content.chat] == [(e["human"], e["ai"]) for e in SESSION["chat_history"]]
    assert content.chat[0].at == dt.datetime(2025, 6, 1, 9, tzinfo=dt.timezone(dt.timedelta(hours=9)))
    assert (content.chat_partner, content.chat_situation) == ("senior", "break")
    assert [(e.learner, e.reply) for e in content.scenarios["scenario1"]] == [("報告します", "どうぞ")]
    assert content.watch[0].speaker == "A" and content.watch[0].text == "こんにちは"
    assert (content.session_count, content.message_count) == (3, 4 + 2 + 1)


def test_unstorable_characters_are_replaced_and_malformed_histories_refused():
    content = convert({"chat_history": [{"human": "a\x00b", "ai": "\ud800"}]})
    assert (content.chat[0].learner, content.chat[0].reply) == ("a\ufffdb", "\ufffd")
    for bad in ({"chat_history": "text"}, {"chat_history": [{"human": 1, "ai": "x"}]}, {"scenario_history": [1]}):
        with pytest.raises(LegacySessionRefused) as refused:
            convert(bad)
        assert refused.value.reason == "malformed"
    assert convert({"csrf_token": "x", "_permanent": True}).empty


def test_cookie_signed_by_flask_session_gives_its_id_and_a_forged_one_nothing():
    app = Flask(__name__)
    app.secret_key = "legacy-secret"
    with pytest.warns(DeprecationWarning):
        interface = RedisSessionInterface(app, client=Redis(), use_signer=True)
    sid = interface._generate_sid(32)
    cookie = interface._sign(app, sid)
    assert session_id_from_cookie(cookie, "legacy-secret") == sid
    assert session_id_from_cookie(cookie, "another-secret") is None
    assert session_id_from_cookie(sid + ".forged", "legacy-secret") is None
    # Unsigned deployments: the bare id (a UUID from Flask-Session before 0.6 as well).
    assert session_id_from_cookie(sid, "") == sid
    assert session_id_from_cookie("3f2b1a9e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "") is not None
    assert session_id_from_cookie("../../etc", "") is None


def test_interpreter_is_not_tricked_by_the_unpickler_class_itself():
    # find_class is the only door: a subclass lookup through it is refused as well.
    with pytest.raises(LegacySessionRefused):
        unpickle_plain(b"\x80\x04\x95\x1f\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04exec\x94\x93\x94.")
    assert sys.modules.get("os") is not None  # nothing was torn down meanwhile
