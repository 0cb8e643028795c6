"""Log lines join their traces in Cloud Logging (workplace_kit.logging).

A line written inside a span carries Cloud Logging's special fields (severity, and with a project
logging.googleapis.com/trace, spanId, trace_sampled) beside the plain trace_id / span_id; the
lines are captured from the real handler setup_logging installs and parsed as JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from workplace_kit.config import ServiceSettings
from workplace_kit.logging import setup_logging

PROJECT = "workplace-prod"


@pytest.fixture
def capture(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[str | None], Callable[[], list[dict]]]]:
    """Install setup_logging's handler (on the stdout pytest captures); the returned function
    gives the JSON lines written since. The root logger is restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def install(project: str | None) -> Callable[[], list[dict]]:
        capsys.readouterr()
        setup_logging("chat", "DEBUG", gcp_project=project)
        return lambda: [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]

    yield install
    root.handlers[:] = handlers
    root.setLevel(level)


def _log_in_span(sampler, capture, project: str | None, level: int = logging.INFO) -> tuple[dict, object]:
    lines = capture(project)
    tracer = TracerProvider(sampler=sampler).get_tracer("test")
    with tracer.start_as_current_span("reply") as span:
        logging.getLogger("chat_service.domain").log(level, "reply stored", extra={"session_id": "s-1"})
    (line,) = lines()
    return line, span.get_span_context()


def test_a_line_inside_a_span_carries_cloud_loggings_trace_fields(capture) -> None:
    line, ctx = _log_in_span(ALWAYS_ON, capture, PROJECT)
    trace_id, span_id = format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
    assert line["logging.googleapis.com/trace"] == f"projects/{PROJECT}/traces/{trace_id}"
    assert line["logging.googleapis.com/spanId"] == span_id
    assert line["logging.googleapis.com/trace_sampled"] is True
    assert line["severity"] == "INFO"
    # What was there before stays: the plain ids, level, logger, service, message and extras.
    assert (line["trace_id"], line["span_id"]) == (trace_id, span_id)
    assert (line["level"], line["logger"], line["service"]) == ("INFO", "chat_service.domain", "chat")
    assert (line["message"], line["session_id"]) == ("reply stored", "s-1")


def test_an_unsampled_span_says_so(capture) -> None:
    line, ctx = _log_in_span(ALWAYS_OFF, capture, PROJECT)
    assert ctx.is_valid and not ctx.trace_flags.sampled
    assert line["logging.googleapis.com/trace_sampled"] is False
    assert line["logging.googleapis.com/trace"].endswith(format(ctx.trace_id, "032x"))


def test_without_a_project_only_the_plain_ids(capture) -> None:
    line, ctx = _log_in_span(ALWAYS_ON, capture, None)
    assert line["trace_id"] == format(ctx.trace_id, "032x")
    assert not [key for key in line if key.startswith("logging.googleapis.com/")]
    assert line["severity"] == "INFO"


def test_outside_a_span_no_trace_fields(capture) -> None:
    lines = capture(PROJECT)
    logging.getLogger("x").warning("no span here")
    (line,) = lines()
    assert "trace_id" not in line and not [key for key in line if key.startswith("logging.googleapis.com/")]
    assert line["severity"] == "WARNING"


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.DEBUG, "DEBUG"),
        (logging.INFO, "INFO"),
        (logging.WARNING, "WARNING"),
        (logging.ERROR, "ERROR"),
        (logging.CRITICAL, "CRITICAL"),
        (logging.INFO + 5, "INFO"),  # a custom level: the nearest standard one below
    ],
)
def test_severity_uses_cloud_loggings_names(capture, level: int, expected: str) -> None:
    line, _ = _log_in_span(ALWAYS_ON, capture, PROJECT, level)
    assert line["severity"] == expected


def test_the_project_comes_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WP_GCP_PROJECT", raising=False)
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    assert ServiceSettings().gcp_project is None
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "fallback-project")
    assert ServiceSettings().gcp_project == "fallback-project"
    monkeypatch.setenv("WP_GCP_PROJECT", PROJECT)
    assert ServiceSettings().gcp_project == PROJECT
    monkeypatch.setenv("WP_GCP_PROJECT", "Not A Project")
    with pytest.raises(ValueError):
        ServiceSettings()
