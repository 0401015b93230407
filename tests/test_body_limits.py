"""Request bodies are limited before they are read: 413 `too_large`, for every request,
signed in or not, whether the size is announced (Content-Length) or streamed (chunked)."""

from __future__ import annotations

import asyncio
import json

import httpx
from sqlalchemy import func, select

from app.chat.models import Upload
from app.limits import JSON_BODY_BYTES, LIST_BODY_BYTES, MULTIPART_OVERHEAD
from tests.support.factories import login, make_shop

MB = 1024 * 1024


async def uploads_of(server, shop_id: str) -> int:
    async with server.ctx.db.read() as s:
        return int(
            (
                await s.execute(
                    select(func.count()).select_from(Upload).where(Upload.shop_id == shop_id)
                )
            ).scalar()
        )


def too_large(status: int, body: bytes | dict) -> bool:
    data = json.loads(body) if isinstance(body, bytes | str) else body
    return (
        status == 413
        and data["error"]["code"] == "too_large"
        and "limit" in data["error"]["message"]
    )


async def raw_request(
    port: int, head: bytes, body_parts, *, read_after: int
) -> tuple[int, bytes, int]:
    """Send `head`, then body parts, reading the answer once `read_after` body bytes are
    out (the rest is only sent if the server has not answered by then). Returns the
    status, the answer's body and how many body bytes had been sent when it came."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        sent = 0
        answer = b""
        for part in body_parts:
            writer.write(part)
            await writer.drain()
            sent += len(part)
            if sent >= read_after:
                answer = await asyncio.wait_for(reader.read(65536), 10)
                if answer:
                    break
        if not answer:
            answer = await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()
    head_text, _, body = answer.partition(b"\r\n\r\n")
    return int(head_text.split(b" ", 2)[1]), body, sent


def multipart_head(path: str, *, token: str | None, length: int | None) -> bytes:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: test",
        "Content-Type: multipart/form-data; boundary=BOUNDARY",
    ]
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


PART_HEAD = (
    b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
    b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff"
)


def chunked(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


async def test_json_bodies_over_64_kib_are_refused_before_sign_in(server):
    async with httpx.AsyncClient(base_url=server.http) as c:
        padded = {"shop": "nope", "username": "u", "password": "p", "pad": "x" * JSON_BODY_BYTES}
        r = await c.post("/api/v1/auth/login", json=padded)
        assert too_large(r.status_code, r.json()), r.text
        # Just under the limit, the request goes on to be judged (and refused as a login).
        padded["pad"] = "x" * (JSON_BODY_BYTES - 200)
        r = await c.post("/api/v1/auth/login", json=padded)
        assert r.status_code == 401, r.text
        # Any route, any method with a body, signed in or not.
        r = await c.post(
            "/api/v1/payouts",
            content=b"{" + b" " * JSON_BODY_BYTES + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert too_large(r.status_code, r.json())


async def test_whole_list_replacements_may_be_larger(server):
    kit = await make_shop(server.ctx.db)
    admin = {"Authorization": f"Bearer {await login(server.http, kit, 'admin')}"}
    words = [f"敏感词{i:04d}" + "字" * 90 for i in range(1000)]  # the documented maximum, ~300 KB
    async with httpx.AsyncClient(base_url=server.http) as c:
        r = await c.put("/api/v1/groups/sensitive-words", json={"words": words}, headers=admin)
        assert r.status_code == 200 and len(r.json()["words"]) == 1000, r.text[:300]
        r = await c.put(
            "/api/v1/groups/sensitive-words", json={"words": ["x" * LIST_BODY_BYTES]}, headers=admin
        )
        assert too_large(r.status_code, r.json())


async def test_a_chunked_json_body_is_cut_off_at_the_limit(server):
    head = (
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    parts = [chunked(b" " * 16 * 1024) for _ in range(64)]  # 1 MB offered, 16 KiB at a time
    status, body, sent = await raw_request(
        server.port, head, parts, read_after=JSON_BODY_BYTES + 32 * 1024
    )
    assert too_large(status, body)
    assert sent < 256 * 1024  # answered once the limit was passed, not after the megabyte


async def test_an_announced_oversize_upload_is_refused_before_its_body_is_sent(server):
    kit = await make_shop(server.ctx.db)
    token = kit.buyer_token("uploader")
    size = 6 * MB
    for who in (token, None):  # signed in, and not
        head = multipart_head("/api/v1/uploads", token=who, length=size)
        parts = [PART_HEAD] + [b"0" * 64 * 1024 for _ in range(size // (64 * 1024))]
        status, body, sent = await raw_request(server.port, head, parts, read_after=128 * 1024)
        assert too_large(status, body), body
        assert sent < 1 * MB, "the 413 came before the body was sent"
    assert await uploads_of(server, kit.shop_id) == 0


async def test_a_chunked_oversize_upload_stops_at_the_limit_and_stores_nothing(server):
    kit = await make_shop(server.ctx.db)
    head = multipart_head("/api/v1/uploads", token=kit.buyer_token("uploader"), length=None)
    limit = server.settings.upload_max_bytes + MULTIPART_OVERHEAD
    parts = [chunked(PART_HEAD)] + [chunked(b"0" * 256 * 1024) for _ in range(40)]  # 10 MB offered
    status, body, sent = await raw_request(server.port, head, parts, read_after=limit + 256 * 1024)
    assert too_large(status, body), body
    assert sent < limit + 2 * MB
    assert await uploads_of(server, kit.shop_id) == 0
    # An upload within the limit still goes through.
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    async with httpx.AsyncClient(
        base_url=server.http, headers={"Authorization": f"Bearer {kit.buyer_token('uploader')}"}
    ) as c:
        ok = await c.post("/api/v1/uploads", files={"file": ("p.png", png, "image/png")})
        assert ok.status_code == 201, ok.text
    assert await uploads_of(server, kit.shop_id) == 1
