"""A bare `websockets` relay: buyer -> agent -> buyer, no storage, no routing (the Python ceiling).

Speaks Homing's frame shapes so one load generator drives every system:
  /buyer?id=B&agent=A  sends {"type": "message.send", "client_msg_id", "body"}
  /agent?id=A          sends {"type": "message.send", "conversation_id": B, "client_msg_id", "body"}
Each sender gets `message.ack`; the other side gets `message.new` (as Homing does).
"""

from __future__ import annotations

import argparse
import asyncio
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.asyncio.server import ServerConnection, serve

conns: dict[str, ServerConnection] = {}


async def handler(ws: ServerConnection) -> None:
    url = urlsplit(ws.request.path if ws.request else "/")
    q = parse_qs(url.query)
    role = url.path.strip("/")
    ident = q["id"][0]
    agent = q.get("agent", [""])[0]
    conns[ident] = ws
    try:
        await ws.send(orjson.dumps({"type": "hello", "id": ident}).decode())
        async for text in ws:
            f = orjson.loads(text)
            if f.get("type") != "message.send":
                continue
            if role == "buyer":
                target, conv = agent, ident
            else:
                target = conv = f.get("conversation_id", "")
            msg = {
                "conversation_id": conv,
                "sender": role,
                "sender_id": ident,
                "body": f.get("body"),
                "client_msg_id": f.get("client_msg_id"),
            }
            await ws.send(
                orjson.dumps(
                    {"type": "message.ack", "client_msg_id": f.get("client_msg_id"), "message": msg}
                ).decode()
            )
            other = conns.get(target)
            if other is not None:
                await other.send(orjson.dumps({"type": "message.new", "message": msg}).decode())
    finally:
        if conns.get(ident) is ws:
            del conns[ident]


async def main(port: int, backlog: int) -> None:
    # Same defaults a user gets (permessage-deflate offered; the client decides), except the
    # listen backlog: asyncio's default of 100 drops SYNs in a connection storm (the client
    # retries after 1 s, 3 s, ...), so it takes uvicorn's default of 2048 as Homing has.
    async with serve(
        handler,
        "127.0.0.1",
        port,
        ping_interval=20,
        ping_timeout=20,
        max_size=256 * 1024,
        backlog=backlog,
    ):
        await asyncio.Future()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--backlog", type=int, default=2048, help="listen backlog (uvicorn's default)")
    args = p.parse_args()
    try:
        import uvloop

        uvloop.run(main(args.port, args.backlog))
    except ImportError:
        asyncio.run(main(args.port, args.backlog))
