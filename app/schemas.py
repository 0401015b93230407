"""Shapes shared by every HTTP API: the error envelope, and the error answers each route documents."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field
from starlette.responses import JSONResponse


class ErrorDetail(BaseModel):
    code: str = Field(
        description="A stable code clients branch on (PROTOCOL.md), e.g. `not_found`."
    )
    message: str = Field(description="A sentence for people; it may change.")


class ErrorOut(BaseModel):
    """Every error answer of the API: `{"error": {"code", "message"}}` (`error_envelope`)."""

    error: ErrorDetail


def error_envelope(code: str, message: str) -> dict[str, Any]:
    """The body of every error answer (ErrorOut), wherever it is sent from."""
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_envelope(code, message), status_code=status, headers=headers)


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


# Documented on every /api/v1 router: the statuses any route may answer with the envelope.
# (Which code each route uses is in PROTOCOL.md; a route that cannot produce one of these
# never does, and documenting it costs clients nothing.)
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("The request is missing something the route needs (e.g. `Idempotency-Key`)."),
    401: _error("No credentials, or expired or revoked ones."),
    403: _error("The caller may not do this (role, CSRF token, a buyer-only or agent-only route)."),
    404: _error("No such object in the caller's shop (another shop's objects answer the same)."),
    409: _error("The state forbids it now (closed conversation, full group, decided payout, ...)."),
    413: _error("The request body is over the route's limit (`too_large`)."),
    422: _error(
        "The input is invalid (`invalid` or a more precise code); NUL is refused here too."
    ),
    429: _error("Too many requests (login throttle, rate limits)."),
}


class OkOut(BaseModel):
    ok: bool


def _iso_text(value: Any) -> Any:
    """JSON carries a time as an ISO 8601 string. Pydantic would also take a number as Unix
    seconds (`"send_at": 0` became 1970), which the schema does not allow and no client
    means; Python callers (the console's forms) may pass a datetime."""
    if isinstance(value, str | datetime):
        return value
    raise ValueError("Expected an ISO 8601 date-time string")


# A date-time in a request body: an ISO 8601 string, as the OpenAPI document says.
IsoDatetime = Annotated[datetime, BeforeValidator(_iso_text)]
