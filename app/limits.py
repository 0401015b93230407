"""Hard limits checked before any work: the largest numbers a field may carry, and the
size of a request body, refused (413) before the body is read into memory or onto disk.

`BodyLimit` is plain ASGI and wraps the whole HTTP stack, so it runs before routing,
authentication and form parsing (python-multipart spools large files to disk): a body
announced too large by its `Content-Length` is refused without reading a byte of it,
and a body without one (chunked) is counted as it arrives and refused the moment it
passes the limit; the application is then told the client went away and reads no more.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
}
UPLOAD_ROUTES = {("POST", "/api/v1/uploads")}


class BodyLimit:
    """Refuse request bodies over the route's limit with 413 `too_large`, unread."""

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
        limit = self.limit_for(scope["method"], scope["path"])
        declared, chunked = _framing(scope)
        if declared is not None and declared > limit:
            await _refuse(send, declared, limit)
            return
        if not chunked:
            # The server delivers no more than Content-Length bytes (none without one):
            # nothing to count.
            await self.app(scope, receive, send)
            return
        await _Counted(self.app, limit, receive, send).run(scope)


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


def _framing(scope: Scope) -> tuple[int | None, bool]:
    """The body's announced length, and whether it comes in chunks of unannounced size."""
    length, chunked = None, False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                chunked = True  # the server refuses such a request; count it all the same
        elif name == b"transfer-encoding":
            chunked = True
    return length, chunked


async def _refuse(send: Send, size: int | None, limit: int) -> None:
    what = f"{size} bytes" if size is not None else "over the limit"
    body = orjson.dumps({"error": {"code": "too_large",
                                   "message": f"The request body is {what}; the limit is {limit} bytes."}})
    headers: list[tuple[bytes, bytes]] = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    start: dict[str, Any] = {"type": "http.response.start", "status": 413, "headers": headers}
    await send(start)
    await send({"type": "http.response.body", "body": body})
