"""Domain errors that every transport maps the same way (HTTP status, gRPC code).

Domain code raises these; the HTTP and gRPC adapters translate them, so a learner sees a
clear message and never a stack trace.
"""

from __future__ import annotations


class DomainError(Exception):
    http_status = 400
    grpc_code_name = "INVALID_ARGUMENT"
    error_code = "invalid_argument"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field

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


class Unavailable(DomainError):
    """A dependency (AI provider, database) cannot serve now; retrying later may work."""

    http_status = 503
    grpc_code_name = "UNAVAILABLE"
    error_code = "unavailable"
