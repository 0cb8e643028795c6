"""JSON logs on stdout, one object a line, with the service name and the current trace ids.

Each line is also in Cloud Logging's structured format (GKE's agent reads stdout): ``severity``
(Cloud Logging's names, so the console filters and colours by level) and, inside a span when the
project is known (WP_GCP_PROJECT), ``logging.googleapis.com/trace`` (projects/<p>/traces/<id>),
``logging.googleapis.com/spanId`` and ``logging.googleapis.com/trace_sampled``: Cloud Logging
lifts them into the entry, so a line opens its trace in Cloud Trace and a trace lists its lines.
The plain ``level``, ``trace_id`` and ``span_id`` stay for everything else that reads the lines.
"""

from __future__ import annotations

import logging
import sys

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

# Cloud Logging's special JSON fields (cloud.google.com/logging/docs/structured-logging).
TRACE_FIELD = "logging.googleapis.com/trace"
SPAN_FIELD = "logging.googleapis.com/spanId"
SAMPLED_FIELD = "logging.googleapis.com/trace_sampled"
# Python's level names as Cloud Logging's LogSeverity; a custom level takes the nearest below.
_SEVERITIES = (
    (logging.CRITICAL, "CRITICAL"),
    (logging.ERROR, "ERROR"),
    (logging.WARNING, "WARNING"),
    (logging.INFO, "INFO"),
    (logging.DEBUG, "DEBUG"),
)


def severity(levelno: int) -> str:
    """Cloud Logging's severity for a Python log level (DEFAULT below DEBUG)."""
    return next((name for floor, name in _SEVERITIES if levelno >= floor), "DEFAULT")


class _ContextFilter(logging.Filter):
    def __init__(self, service: str, gcp_project: str | None = None):
        super().__init__()
        self.service = service
        self.trace_prefix = f"projects/{gcp_project}/traces/" if gcp_project else None

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.severity = severity(record.levelno)
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            trace_id, span_id = format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
            record.trace_id = trace_id
            record.span_id = span_id
            if self.trace_prefix is not None:
                setattr(record, TRACE_FIELD, self.trace_prefix + trace_id)
                setattr(record, SPAN_FIELD, span_id)
                setattr(record, SAMPLED_FIELD, ctx.trace_flags.sampled)
        return True


def setup_logging(service: str, level: str = "INFO", *, gcp_project: str | None = None) -> None:
    """JSON lines on stdout for every logger; `gcp_project` (settings.gcp_project) adds Cloud
    Logging's trace fields to the lines written inside a span."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(_ContextFilter(service, gcp_project))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs its own handlers; route them through ours.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
