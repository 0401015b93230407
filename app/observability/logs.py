"""Log lines as JSON objects (HOMING_LOG_FORMAT=json), each naming its request or socket.

A request's lines carry `request_id` (the caller's `X-Request-ID` when it is sane, else a
new one, echoed in the answer); a socket's lines carry `connection_id`, set when the
socket opens. Both live in context variables, so every log call made on behalf of a
request or socket, in any module, is tagged without passing anything around.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.security import mask_secrets

REQUEST_ID_HEADER = "X-Request-ID"
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

request_id: ContextVar[str | None] = ContextVar("homing_request_id", default=None)
connection_id: ContextVar[str | None] = ContextVar("homing_connection_id", default=None)

# What a caller's X-Request-ID may be to be taken as is: short, printable, no spaces or
# quotes (it is written into every log line and echoed in a header).
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")


def new_log_id() -> str:
    return secrets.token_hex(8)


def request_id_from(header: str | None) -> str:
    """The caller's request id if it is sane, else a new one."""
    if header and _SANE_ID.fullmatch(header):
        return header
    return new_log_id()


class RequestIds:
    """ASGI middleware: give each HTTP request an id, in the logs and the answer's header.

    The context variable is not reset afterwards: the server runs each request in a task
    of its own (whose context dies with it), and so its own lines about the request
    (the access line, "Exception in ASGI application") carry the id too.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                sent = value.decode("latin-1")
                break
        rid = request_id_from(sent)
        request_id.set(rid)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
            await send(message)

        await self.app(scope, receive, send_with_id)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, ids, exception.

    Secrets in the message and the exception are masked here as well as by the handlers'
    `MaskTokens` filter, so a formatter used on its own never writes one either.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        rid = request_id.get()
        if rid is not None:
            line["request_id"] = rid
        cid = connection_id.get()
        if cid is not None:
            line["connection_id"] = cid
        if (
            record.name == "uvicorn.access"
            and isinstance(record.args, tuple)
            and len(record.args) == 5
        ):
            client, method, path, _version, status = record.args
            line.update(client=client, method=method, path=mask_secrets(str(path)), status=status)
        if record.exc_info:
            line["exception"] = mask_secrets(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = mask_secrets(record.exc_text)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str).decode()


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
