"""The load generator's sockets: one client class, one small adapter per wire protocol.

Every system speaks Homing's frame shapes (`message.send` in; `message.ack`,
`message.new` out), so workloads are written once. The Socket.IO adapter speaks
Engine.IO v4 over a plain WebSocket (no polling, no client library), so the load
generator costs the same for every system and the server is what is measured.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

OnFrame = Callable[["Client", dict[str, Any]], Awaitable[None] | None]


class Proto:
    """Homing's own wire format: one JSON object per text frame; the server speaks first."""

    name = "json"

    def encode(self, frame: dict[str, Any]) -> str:
        return orjson.dumps(frame).decode()

    def decode(self, text: str | bytes) -> dict[str, Any] | None:
        return orjson.loads(text)  # type: ignore[no-any-return]

    async def open(self, ws: ClientConnection, timeout: float) -> dict[str, Any]:
        """Read the greeting; raise if the server refused us."""
        text = await asyncio.wait_for(ws.recv(), timeout)
        frame = self.decode(text)
        if not frame or frame.get("type") != "hello":
            raise ConnectionError(f"expected hello, got {str(text)[:200]}")
        return frame

    def control(self, text: str | bytes) -> str | None:
        """A protocol-level reply to send at once (Engine.IO pong), else None."""
        return None


class SocketIOProto(Proto):
    """Socket.IO v5 over Engine.IO v4, WebSocket transport only, default namespace."""

    name = "socket.io"

    def encode(self, frame: dict[str, Any]) -> str:
        return "42" + orjson.dumps([frame["type"], frame]).decode()

    def decode(self, text: str | bytes) -> dict[str, Any] | None:
        if isinstance(text, bytes):
            text = text.decode()
        if not text.startswith("42"):
            return None
        event, *rest = orjson.loads(text[2:])
        data = rest[0] if rest and isinstance(rest[0], dict) else {}
        return {"type": event, **data}

    def control(self, text: str | bytes) -> str | None:
        return "3" if text == "2" else None

    async def open(self, ws: ClientConnection, timeout: float) -> dict[str, Any]:
        first = await asyncio.wait_for(ws.recv(), timeout)  # Engine.IO open: 0{"sid": ...}
        if not str(first).startswith("0"):
            raise ConnectionError(f"expected Engine.IO open, got {str(first)[:200]}")
        await ws.send("40")
        while True:
            text = str(await asyncio.wait_for(ws.recv(), timeout))
            if text.startswith("40"):
                return {"type": "hello", "sid": orjson.loads(text[2:] or "{}").get("sid")}
            if text.startswith("44"):
                raise ConnectionError(f"Socket.IO connect refused: {text[:200]}")
            if text == "2":
                await ws.send("3")


class Client:
    """One socket: connect, read the greeting, then hand each frame to `on_frame`."""

    __slots__ = ("alive", "hello", "on_frame", "proto", "state", "tag", "task", "url", "ws")

    def __init__(
        self, proto: Proto, url: str, on_frame: OnFrame | None = None, tag: Any = None
    ) -> None:
        self.proto = proto
        self.url = url
        self.on_frame = on_frame
        self.ws: ClientConnection | None = None
        self.hello: dict[str, Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.alive = False
        self.tag = tag
        self.state: dict[str, Any] = {}

    async def connect(self, *, deflate: bool = False, timeout: float = 30.0) -> Client:
        assert self.url.startswith("ws://127.0.0.1:"), self.url
        self.ws = await connect(
            self.url,
            compression="deflate" if deflate else None,
            ping_interval=None,  # the servers ping; we answer (websockets does it itself)
            open_timeout=timeout,
            close_timeout=1,
            max_size=2**20,
            max_queue=None,
        )
        self.hello = await self.proto.open(self.ws, timeout)
        self.alive = True
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.ws is not None
        try:
            async for text in self.ws:
                reply = self.proto.control(text)
                if reply is not None:
                    await self.ws.send(reply)
                    continue
                frame = self.proto.decode(text)
                if frame is None or self.on_frame is None:
                    continue
                result = self.on_frame(self, frame)
                if result is not None:
                    await result
        except Exception:  # noqa: BLE001, S110 - a dead socket is counted by the workload
            pass
        finally:
            self.alive = False

    async def send(self, frame: dict[str, Any]) -> None:
        assert self.ws is not None
        await self.ws.send(self.proto.encode(frame))

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 2)
            except Exception:  # noqa: BLE001, S110 - closing is best effort
                pass
        self.alive = False


async def connect_all(
    clients: Iterable[Client],
    *,
    concurrency: int = 100,
    deflate: bool = False,
    timeout: float = 30.0,
    deadline_s: float | None = None,
) -> tuple[int, int, float]:
    """Connect clients with at most `concurrency` handshakes in flight.

    Returns (connected, failed, seconds). Stops starting new ones past `deadline_s`.
    """
    sem = asyncio.Semaphore(concurrency)
    ok = failed = 0
    t0 = time.perf_counter()
    first_error: list[str] = []

    async def one(c: Client) -> None:
        nonlocal ok, failed
        async with sem:
            if deadline_s is not None and time.perf_counter() - t0 > deadline_s:
                failed += 1
                return
            try:
                await c.connect(deflate=deflate, timeout=timeout)
                ok += 1
            except Exception as exc:  # noqa: BLE001
                failed += 1
                if not first_error:
                    first_error.append(f"{type(exc).__name__}: {exc}")

    await asyncio.gather(*(one(c) for c in clients))
    if first_error:
        print(f"    first connect error: {first_error[0][:300]}", flush=True)
    return ok, failed, time.perf_counter() - t0


async def close_all(clients: Iterable[Client]) -> None:
    clients = list(clients)
    for i in range(0, len(clients), 500):
        await asyncio.gather(*(c.close() for c in clients[i : i + 500]))
