"""Domain errors: each carries the wire code and HTTP status the boundary maps it to."""

from __future__ import annotations


class DomainError(Exception):
    code = "bad_request"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class BadInput(DomainError):
    code = "bad_frame"
    status = 422


class TooLarge(DomainError):
    code = "too_large"
    status = 413


class NotAuthenticated(DomainError):
    code = "unauthorized"
    status = 401


class Forbidden(DomainError):
    code = "forbidden"
    status = 403


class NotFound(DomainError):
    code = "not_found"
    status = 404


class Conflict(DomainError):
    code = "conflict"
    status = 409


class RateLimited(DomainError):
    code = "rate_limited"
    status = 429


class ConversationClosed(DomainError):
    code = "conversation_closed"
    status = 409
