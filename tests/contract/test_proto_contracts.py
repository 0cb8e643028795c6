"""The proto contracts: lint, generated code freshness, wire compatibility, services and events."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import workplace
from google.protobuf import descriptor as _descriptor
from google.protobuf.message import Message

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO_ROOT / "proto"
BUF_CONFIG = REPO_ROOT / "buf.yaml"
GEN_SCRIPT = REPO_ROOT / "scripts" / "gen_proto.py"
CHAT_PROTO = Path("workplace/chat/v1/chat.proto")

# service full name -> {rpc name: server-streaming?}; no RPC is client-streaming.
EXPECTED_SERVICES: dict[str, dict[str, bool]] = {
    "workplace.auth.v1.AuthService": {
        "VerifyToken": False,
        "GetUser": False,
        "MigrateLegacySession": False,
    },
    "workplace.chat.v1.ChatService": {
        "StreamReply": True,
        "GetHistory": False,
        "ListSituations": False,
        "GetOptions": False,
        "EndSession": False,
    },
    "workplace.feedback.v1.FeedbackService": {
        "GetTurnAnalysis": False,
        "ListSessionAnalyses": False,
        "GetReport": False,
        "GetStrengths": False,
    },
    "workplace.scenario.v1.ScenarioService": {
        "ListScenarios": False,
        "GetScenario": False,
        "SearchScenarios": False,
        "StartSession": False,
        "StreamReply": True,
        "EndSession": False,
        "GetSession": False,
    },
    "workplace.watch.v1.WatchService": {
        "StartWatch": False,
        "StreamWatch": True,
        "Intervene": False,
        "StopWatch": False,
        "ControlWatch": False,
        "GetWatchNotes": False,
    },
    "workplace.tts.v1.TtsService": {
        "Synthesize": False,
        "StreamSynthesize": True,
        "ListVoices": False,
        "Transcribe": False,
    },
}

EXPECTED_EVENTS = {
    "ConversationTurn",
    "FeedbackReady",
    "SessionEnded",
    "UserEvent",
    "TtsRequest",
    "TtsReady",
    "WatchTurnRequest",
    "LegacyChatHistory",
}

_FD = _descriptor.FieldDescriptor
# Fields other services build on: name -> (number, type, type name for messages/enums).
PINNED_FIELDS: dict[str, dict[str, tuple[int, int, str]]] = {
    "workplace.events.v1.ConversationTurn": {
        "event_id": (1, _FD.TYPE_STRING, ""),
        "session_id": (2, _FD.TYPE_STRING, ""),
        "user_id": (3, _FD.TYPE_STRING, ""),
        "source_service": (4, _FD.TYPE_STRING, ""),
        "user_turn_id": (5, _FD.TYPE_STRING, ""),
        "reply_turn_id": (6, _FD.TYPE_STRING, ""),
        "turn_index": (7, _FD.TYPE_INT32, ""),
        "learner_text": (8, _FD.TYPE_STRING, ""),
        "reply_text": (9, _FD.TYPE_STRING, ""),
        "language": (10, _FD.TYPE_STRING, ""),
        "partner": (11, _FD.TYPE_STRING, ""),
        "situation": (12, _FD.TYPE_STRING, ""),
        "occurred_at": (13, _FD.TYPE_MESSAGE, "google.protobuf.Timestamp"),
        "engine_id": (14, _FD.TYPE_STRING, ""),
    },
    "workplace.events.v1.FeedbackReady": {
        "event_id": (1, _FD.TYPE_STRING, ""),
        "session_id": (2, _FD.TYPE_STRING, ""),
        "user_id": (3, _FD.TYPE_STRING, ""),
        "turn_id": (4, _FD.TYPE_STRING, ""),
        "analysis": (5, _FD.TYPE_MESSAGE, "workplace.feedback.v1.EmotionAnalysis"),
        "occurred_at": (6, _FD.TYPE_MESSAGE, "google.protobuf.Timestamp"),
    },
    "workplace.chat.v1.StreamReplyRequest": {
        "session_id": (1, _FD.TYPE_STRING, ""),
        "user_id": (2, _FD.TYPE_STRING, ""),
        "message": (3, _FD.TYPE_STRING, ""),
        "partner": (4, _FD.TYPE_ENUM, "workplace.chat.v1.Partner"),
        "situation": (5, _FD.TYPE_STRING, ""),
        "language": (6, _FD.TYPE_STRING, ""),
        "temperature": (7, _FD.TYPE_FLOAT, ""),
    },
    "workplace.feedback.v1.EmotionAnalysis": {
        "language": (1, _FD.TYPE_STRING, ""),
        "dominant_emotion": (2, _FD.TYPE_STRING, ""),
        "scores": (3, _FD.TYPE_MESSAGE, "workplace.feedback.v1.EmotionScore"),
        "polarity": (4, _FD.TYPE_FLOAT, ""),
        "engine": (5, _FD.TYPE_STRING, ""),
        "summary": (6, _FD.TYPE_STRING, ""),
        "card": (7, _FD.TYPE_MESSAGE, "workplace.feedback.v1.FeedbackCard"),
    },
}


# --- helpers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def buf() -> str:
    """The buf binary: the venv's pinned one first, else whatever is on PATH."""
    venv_buf = Path(sys.executable).parent / "buf"
    if venv_buf.is_file():
        return str(venv_buf)
    found = shutil.which("buf")
    if found is None:
        pytest.fail("buf is not installed: add buf-bin to the dev dependencies and run `uv sync`")
    return found


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def copy_module(destination: Path) -> Path:
    """A copy of the buf workspace (buf.yaml + proto/) in destination; returns the copy's root."""
    shutil.copytree(PROTO_DIR, destination / "proto", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(BUF_CONFIG, destination / "buf.yaml")
    return destination


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {path}"
    path.write_text(text.replace(old, new))


def load_gen_script():
    spec = importlib.util.spec_from_file_location("gen_proto", GEN_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def generated_pb2_modules() -> list:
    """Every *_pb2 module of the generated workplace package."""
    modules = []
    for info in pkgutil.walk_packages(workplace.__path__, prefix="workplace."):
        if info.name.endswith("_pb2"):
            modules.append(importlib.import_module(info.name))
    return modules


def populate(message: Message, depth: int = 0) -> None:
    """Give every field of message a non-default value (first member only, for a oneof)."""
    assert depth < 5, f"message nesting too deep at {message.DESCRIPTOR.full_name}"
    for field in message.DESCRIPTOR.fields:
        oneof = field.containing_oneof
        if oneof is not None and message.WhichOneof(oneof.name):
            continue
        if field.message_type is not None:
            if field.message_type.full_name == "google.protobuf.Timestamp":
                target = field_add(message, field)
                target.seconds, target.nanos = 1_767_225_600, 123_000_000
            else:
                populate(field_add(message, field), depth + 1)
            continue
        value = sample_scalar(field)
        if field.is_repeated:
            getattr(message, field.name).extend([value, value])
        else:
            setattr(message, field.name, value)


def field_add(message: Message, field: _descriptor.FieldDescriptor) -> Message:
    if field.is_repeated:
        return getattr(message, field.name).add()
    return getattr(message, field.name)


def sample_scalar(field: _descriptor.FieldDescriptor):
    if field.enum_type is not None:
        non_zero = [v.number for v in field.enum_type.values if v.number != 0]
        assert non_zero, f"enum {field.enum_type.full_name} has no value besides its zero value"
        return non_zero[-1]
    if field.type == _FD.TYPE_STRING:
        return f"{field.name}-テスト"
    if field.type == _FD.TYPE_BYTES:
        return b"\x00\xffaudio"
    if field.type == _FD.TYPE_BOOL:
        return True
    if field.type in (_FD.TYPE_FLOAT, _FD.TYPE_DOUBLE):
        return 0.5  # exact in float32, so the round trip compares equal
    return field.number + 40  # integer types


# --- (a) lint ---------------------------------------------------------------------------------


def test_buf_lint_passes(buf: str) -> None:
    result = run([buf, "lint"], REPO_ROOT)
    assert result.returncode == 0, describe(result)


def test_buf_lint_rejects_a_standard_violation(buf: str, tmp_path: Path) -> None:
    root = copy_module(tmp_path)
    edit(root / "proto" / CHAT_PROTO, "PARTNER_UNSPECIFIED = 0;", "PARTNER_NONE = 0;")
    result = run([buf, "lint"], root)
    assert result.returncode != 0, describe(result)
    assert "PARTNER_NONE" in result.stdout, describe(result)


# --- (b) generated code -------------------------------------------------------------------------


def test_generated_code_is_up_to_date() -> None:
    result = run([sys.executable, str(GEN_SCRIPT), "--check"], REPO_ROOT)
    assert result.returncode == 0, describe(result)


def test_generation_is_reproducible_and_check_sees_drift(tmp_path: Path) -> None:
    gen = load_gen_script()
    first, second = tmp_path / "first", tmp_path / "second"
    gen.generate(first)
    gen.generate(second)
    assert gen.generated_files(first), "nothing was generated"
    assert gen.differences(first, second) == []

    chat_pb2 = Path("workplace/chat/v1/chat_pb2.py")
    (second / chat_pb2).write_text((second / chat_pb2).read_text() + "# hand edit\n")
    (second / "workplace/chat/v1/removed_pb2.py").write_text("")
    (second / "workplace/tts/v1/tts_pb2.pyi").unlink()
    assert gen.differences(first, second) == [
        "missing: workplace/tts/v1/tts_pb2.pyi",
        "stale (not generated from any proto): workplace/chat/v1/removed_pb2.py",
        "differs: workplace/chat/v1/chat_pb2.py",
    ]


def test_generated_modules_import_by_package_path() -> None:
    from workplace.chat.v1 import chat_pb2, chat_pb2_grpc

    assert chat_pb2.DESCRIPTOR.package == "workplace.chat.v1"
    assert hasattr(chat_pb2_grpc, "ChatServiceStub")
    assert hasattr(chat_pb2_grpc, "add_ChatServiceServicer_to_server")


# --- (c), (d) wire compatibility ------------------------------------------------------------------


def main_has_protos() -> str | None:
    """The absolute git dir if the main branch holds proto files, else None."""
    git_dir = run(["git", "rev-parse", "--path-format=absolute", "--git-common-dir"], REPO_ROOT)
    if git_dir.returncode != 0:
        return None
    listed = run(["git", "ls-tree", "-r", "--name-only", "main", "--", "proto"], REPO_ROOT)
    if listed.returncode != 0 or not any(n.endswith(".proto") for n in listed.stdout.split()):
        return None
    return git_dir.stdout.strip()


def test_buf_breaking_against_main_passes(buf: str, tmp_path: Path) -> None:
    git_dir = main_has_protos()
    if git_dir is not None:
        against = f"{git_dir}#branch=main,subdir=proto"
    else:
        # No proto on main yet: still run the check, against the working tree's own copy.
        against = str(copy_module(tmp_path) / "proto")
    result = run([buf, "breaking", "proto", "--against", against], REPO_ROOT)
    assert result.returncode == 0, f"against {against}\n{describe(result)}"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "  string language = 6;\n  // Unset",
            "  int32 language = 6;\n  // Unset",
            [
                '"language"',
                "StreamReplyRequest",
                'changed type from "string" to "int32"',
            ],
            id="field-type",
        ),
        pytest.param(
            "  string message = 3;\n  // Superseded by partner_id.",
            "  string message = 30;\n  // Superseded by partner_id.",
            ['"3"', '"message"', "StreamReplyRequest", "deleted"],
            id="field-number",
        ),
    ],
)
def test_buf_breaking_detects_a_breaking_change(
    buf: str, tmp_path: Path, old: str, new: str, expected: list[str]
) -> None:
    root = copy_module(tmp_path)
    edit(root / "proto" / CHAT_PROTO, old, new)
    result = run([buf, "breaking", "proto", "--against", str(PROTO_DIR)], root)
    assert result.returncode != 0, describe(result)
    for fragment in expected:
        assert fragment in result.stdout, f"{fragment!r} not reported\n{describe(result)}"


def test_buf_breaking_accepts_an_added_field(buf: str, tmp_path: Path) -> None:
    root = copy_module(tmp_path)
    edit(
        root / "proto" / CHAT_PROTO,
        "message ReplyDelta {\n  string text = 1;\n}",
        "message ReplyDelta {\n  string text = 1;\n  int32 index = 2;\n}",
    )
    result = run([buf, "breaking", "proto", "--against", str(PROTO_DIR)], root)
    assert result.returncode == 0, describe(result)


# --- (e) services and events -------------------------------------------------------------------


def test_services_define_exactly_the_contracted_rpcs() -> None:
    found: dict[str, dict[str, bool]] = {}
    for module in generated_pb2_modules():
        for service in module.DESCRIPTOR.services_by_name.values():
            methods = {}
            for method in service.methods:
                assert not method.client_streaming, f"{service.full_name}.{method.name}"
                assert method.input_type.name == f"{method.name}Request"
                assert method.output_type.name == f"{method.name}Response"
                methods[method.name] = method.server_streaming
            found[service.full_name] = methods
    assert found == EXPECTED_SERVICES


@pytest.mark.parametrize("message_name", sorted(PINNED_FIELDS))
def test_pinned_fields_keep_their_numbers_and_types(message_name: str) -> None:
    from google.protobuf import descriptor_pool

    generated_pb2_modules()  # registers every file in the default pool
    message = descriptor_pool.Default().FindMessageTypeByName(message_name)
    actual = {
        f.name: (
            f.number,
            f.type,
            (f.message_type or f.enum_type).full_name if (f.message_type or f.enum_type) else "",
        )
        for f in message.fields
    }
    expected = PINNED_FIELDS[message_name]
    assert {name: actual.get(name) for name in expected} == expected


def test_event_payloads_are_the_contracted_set() -> None:
    from workplace.events.v1 import events_pb2

    assert set(events_pb2.DESCRIPTOR.message_types_by_name) == EXPECTED_EVENTS


@pytest.mark.parametrize("event_name", sorted(EXPECTED_EVENTS))
def test_event_round_trips_through_the_wire_format(event_name: str) -> None:
    from workplace.events.v1 import events_pb2

    event_class = getattr(events_pb2, event_name)
    event = event_class()
    populate(event)
    # Every field must carry a value, or the round trip would prove nothing about it.
    assert len(event.ListFields()) == len(event.DESCRIPTOR.fields)

    wire = event.SerializeToString(deterministic=True)
    decoded = event_class.FromString(wire)
    assert decoded == event
    assert decoded.SerializeToString(deterministic=True) == wire
    assert decoded.event_id == "event_id-テスト"
