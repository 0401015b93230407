"""A python-socketio relay (ASGI on uvicorn, like Homing): buyer -> agent -> buyer, no storage.

With `--redis URL` it uses `AsyncRedisManager`, so every emit travels over Redis pub/sub
(what a multi-node python-socketio deployment does). Clients connect with the query
`role=buyer|agent&id=...&agent=...`; each joins a room named by its id. Events carry
Homing's frame shapes: "message.send" in; "message.ack" to the sender, "message.new"
to the other side.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any
from urllib.parse import parse_qs

import socketio
import uvicorn


def _show_redis_error(record: logging.LogRecord) -> bool:
    err = getattr(record, "redis_exception", None)
    if err and not getattr(record, "_shown", False):
        record.msg = f"{record.msg} ({err})"
        record._shown = True
    return True


def build(redis_url: str | None, channel: str) -> Any:
    manager = socketio.AsyncRedisManager(redis_url, channel=channel) if redis_url else None
    sio = socketio.AsyncServer(
        async_mode="asgi",
        client_manager=manager,
        cors_allowed_origins="*",
        ping_interval=20,
        ping_timeout=20,
    )
    who: dict[str, tuple[str, str, str]] = {}

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        q = parse_qs(environ.get("QUERY_STRING", ""))
        role, ident, agent = q["role"][0], q["id"][0], q.get("agent", [""])[0]
        who[sid] = (role, ident, agent)
        await sio.enter_room(sid, ident)

    @sio.event
    async def disconnect(sid: str, *args: Any) -> None:
        who.pop(sid, None)

    @sio.on("message.send")
    async def send(sid: str, f: dict[str, Any]) -> None:
        role, ident, agent = who[sid]
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
        await sio.emit(
            "message.ack", {"client_msg_id": f.get("client_msg_id"), "message": msg}, to=sid
        )
        await sio.emit("message.new", {"message": msg}, room=target)

    return socketio.ASGIApp(sio)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--redis")
    p.add_argument("--channel", default="bench-socketio")
    args = p.parse_args()
    # python-socketio puts the Redis error in `extra`; show it in the log.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger().handlers[0].addFilter(_show_redis_error)
    # uvicorn's defaults, as Homing runs (uvloop and httptools when installed).
    uvicorn.run(
        build(args.redis, args.channel), host="127.0.0.1", port=args.port, log_level="warning"
    )
