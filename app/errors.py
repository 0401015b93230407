"""Domain errors: each carries the wire code and HTTP status the boundary maps it to."""

from __future__ import annotations

from collections.abc import Mapping


def N_(message: str) -> str:
    """Marks an error message for the gettext catalogs (`python -m app.i18n` extracts it);
    pages show it in the reader's language (`pages.console.error_text`)."""
    return message


class DomainError(Exception):
    """`message` is English; with `params` it is a `%(name)s` template (kept as `msgid`, so a
    page can translate it before filling it in)."""

    code = "bad_request"
    status = 400

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        params: Mapping[str, object] | None = None,
    ):
        self.msgid = message
        self.params = dict(params or {})
        if params:
            message = message % self.params
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
