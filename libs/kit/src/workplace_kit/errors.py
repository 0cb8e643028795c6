"""Domain errors that every transport maps the same way (HTTP status, gRPC code).

Domain code raises these; the HTTP and gRPC adapters translate them, so a learner sees a
clear message and never a stack trace.
"""

from __future__ import annotations

import socket


class DomainError(Exception):
    http_status = 400
    grpc_code_name = "INVALID_ARGUMENT"
    error_code = "invalid_argument"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

    def http_headers(self) -> dict[str, str]:
        """Headers an HTTP answer with this error carries (none unless a subclass says so)."""
        return {}

    def to_json(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.error_code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class InvalidInput(DomainError):
    pass


class NotFound(DomainError):
    http_status = 404
    grpc_code_name = "NOT_FOUND"
    error_code = "not_found"


class Conflict(DomainError):
    """The request is well formed but the thing it acts on is in the wrong state (a session
    that has ended, a scenario whose consent was not given)."""

    http_status = 409
    grpc_code_name = "FAILED_PRECONDITION"
    error_code = "conflict"


class Unavailable(DomainError):
    """A dependency (AI provider, database) cannot serve now; retrying later may work."""

    http_status = 503
    grpc_code_name = "UNAVAILABLE"
    error_code = "unavailable"


# How long a client should wait before trying again after a dependency outage (HTTP Retry-After).
RETRY_AFTER_S = 5


def is_dependency_outage(exc: BaseException) -> bool:
    """True when `exc` says a dependency (database, Redis, broker, AI provider) cannot serve
    now, so the same request may work later: answer 503 with Retry-After, retry an event later.
    """
    from google.api_core import exceptions as gexc

    from .ai.types import AIUnavailableError

    if isinstance(exc, Unavailable | AIUnavailableError):
        return True
    if isinstance(exc, gexc.ServiceUnavailable | gexc.DeadlineExceeded | gexc.RetryError):
        return True
    # The drivers are extras (workplace-kit[db], [redis]): an error of one that is not
    # installed cannot occur, so only an installed driver is asked.
    module = type(exc).__module__.split(".")[0]
    if module == "asyncpg":
        import asyncpg

        if isinstance(
            exc,
            asyncpg.PostgresConnectionError
            | asyncpg.exceptions.OperatorInterventionError
            | asyncpg.exceptions.InsufficientResourcesError,
        ) and not isinstance(exc, asyncpg.exceptions.QueryCanceledError):
            return True
        if isinstance(exc, asyncpg.InterfaceError):
            text = str(exc).lower()
            return "connection" in text or "pool" in text
    if module == "redis":
        import redis.exceptions

        if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
            return True
    # Refused or reset connections, names that do not resolve, timeouts (also waiting for a
    # connection from a pool).
    return isinstance(exc, ConnectionError | TimeoutError | socket.gaierror)
