"""Hard limits checked before any work: the largest numbers a field may carry, the size
of a request body, and text no database column can hold.

`RequestLimits` is plain ASGI and wraps the whole HTTP stack, so it runs before routing,
authentication and form parsing (python-multipart spools large files to disk): a body
announced too large by its `Content-Length` is refused (413) without reading a byte of
it, and a body without one (chunked) is counted as it arrives and refused the moment it
passes the limit; the application is then told the client went away and reads no more.
A NUL character in the path, the query or a JSON or form body is refused (422) the same
way on both databases: PostgreSQL text cannot hold it, so no stored value could match
it, and letting it through made PostgreSQL fail the request (500).
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.schemas import error_envelope

# Sequence numbers and read marks are INTEGER columns (32-bit on PostgreSQL).
MAX_SEQ = 2**31 - 1
# BIGINT keys (e.g. the payout ledger's id).
MAX_BIGINT = 2**63 - 1
# Other numbers clients send (prices in cards, amounts in coupons): exact in a
# JavaScript number, and within a signed 64-bit integer.
MAX_NUMBER = 2**53 - 1

JSON_BODY_BYTES = 64 * 1024
# Whole-list replacements: up to 1,000 sensitive words or 500 categories of up to 100
# characters, three bytes each in UTF-8, with their quoting.
LIST_BODY_BYTES = 512 * 1024
# An upload's multipart framing (boundaries, part headers) on top of the file itself.
MULTIPART_OVERHEAD = 64 * 1024

LIST_ROUTES = {
    ("PUT", "/api/v1/groups/sensitive-words"),
    ("PUT", "/api/v1/routing/categories"),
    ("POST", "/console/categories"),
    # A shop's compliance words: up to 2,000 of up to 50 characters.
    ("PUT", "/api/v1/compliance/rules"),
    ("POST", "/console/compliance/rules"),
}
UPLOAD_ROUTES = {("POST", "/api/v1/uploads")}


class RequestLimits:
    """Refuse request bodies over the route's limit with 413 `too_large`, unread, and
    text holding NUL with 422 `invalid`."""

    def __init__(self, app: ASGIApp, *, upload_max_bytes: int) -> None:
        self.app = app
        self.upload_limit = upload_max_bytes + MULTIPART_OVERHEAD

    def limit_for(self, method: str, path: str) -> int:
        route = (method, path.rstrip("/") or "/")
        if route in UPLOAD_ROUTES:
            return self.upload_limit
        if route in LIST_ROUTES:
            return LIST_BODY_BYTES
        return JSON_BODY_BYTES

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope["query_string"]:
            await _invalid(send, "The address contains a NUL character.", unread=True)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared, chunked, text_kind = _framing(scope)
        if declared is not None and declared > limit:
            await _refuse(send, declared, limit)
            return
        if text_kind is not None:
            # JSON or a form: small by now (the limit), and read whole by the application
            # anyway; read it here first, to look for NUL.
            await self._text_body(scope, receive, send, limit, text_kind)
            return
        if not chunked:
            # The server delivers no more than Content-Length bytes (none without one):
            # nothing to count.
            await self.app(scope, receive, send)
            return
        await _Counted(self.app, limit, receive, send).run(scope)

    async def _text_body(
        self, scope: Scope, receive: Receive, send: Send, limit: int, kind: str
    ) -> None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client left before the end: the application hears only that.
                await self.app(scope, _gone, send)
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await _refuse(send, None, limit)
                return
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if _holds_nul(body, kind):
            await _invalid(send, "The text sent contains a NUL character, which cannot be stored.")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # http.disconnect, when the client goes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _gone() -> Message:
    return {"type": "http.disconnect"}


def _holds_nul(body: bytes, kind: str) -> bool:
    if b"\x00" in body:
        return True
    if kind == "form":
        return b"%00" in body
    # JSON writes NUL as the escape \u0000, unless its backslash is itself escaped (\\u0000
    # is the six characters \u0000): count the backslashes before it.
    at = body.find(b"\\u0000")
    while at != -1:
        start = at
        while start > 0 and body[start - 1] == 0x5C:
            start -= 1
        if (at - start) % 2 == 0:
            return True
        at = body.find(b"\\u0000", at + 1)
    return False


class _Counted:
    """One request without a Content-Length: count its body as the application reads it."""

    def __init__(self, app: ASGIApp, limit: int, receive: Receive, send: Send) -> None:
        self.app = app
        self.limit = limit
        self._receive = receive
        self._send = send
        self.received = 0
        self.refused = False
        self.started = False

    async def run(self, scope: Scope) -> None:
        await self.app(scope, self.receive, self.send)

    async def receive(self) -> Message:
        if self.refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                # Stop here: answer now (unless the application already has), and tell
                # the application the client left, so it reads and stores nothing more.
                self.refused = True
                if not self.started:
                    self.started = True
                    await _refuse(self._send, None, self.limit)
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the 413 has been sent; whatever the application answers is dropped
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


def _framing(scope: Scope) -> tuple[int | None, bool, str | None]:
    """The body's announced length, whether it comes in chunks of unannounced size, and
    whether it is text we read ("json", "form") or not (None)."""
    length, chunked, kind = None, False, None
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                chunked = True  # the server refuses such a request; count it all the same
        elif name == b"transfer-encoding":
            chunked = True
        elif name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            if media == b"application/json" or media.endswith(b"+json"):
                kind = "json"
            elif media == b"application/x-www-form-urlencoded":
                kind = "form"
    if kind is not None and not chunked and not length:
        kind = None  # no body
    return length, chunked, kind


async def _refuse(send: Send, size: int | None, limit: int) -> None:
    what = f"{size} bytes" if size is not None else "over the limit"
    await _answer(
        send,
        413,
        "too_large",
        f"The request body is {what}; the limit is {limit} bytes.",
        close=True,
    )


async def _invalid(send: Send, message: str, *, unread: bool = False) -> None:
    await _answer(send, 422, "invalid", message, close=unread)


async def _answer(send: Send, status: int, code: str, message: str, *, close: bool) -> None:
    """The application's error envelope, sent without it."""
    body = orjson.dumps(error_envelope(code, message))
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))  # the body (or its rest) is not read
    start: dict[str, Any] = {"type": "http.response.start", "status": status, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
