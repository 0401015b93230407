"""A small WebSocket test client that remembers every frame it has seen."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import websockets

Frame = dict[str, Any]


class WSClient:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.frames: list[Frame] = []  # everything received, in order
        self._cursor = 0  # frames before this index were handed to `expect`

    @classmethod
    async def connect(cls, url: str) -> WSClient:
        return cls(await websockets.connect(url, max_size=2**22, open_timeout=10))

    async def send(self, frame: Frame | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 5.0) -> Frame:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame = json.loads(raw)
        self.frames.append(frame)
        return frame

    async def expect(
        self, ftype: str, pred: Callable[[Frame], bool] | None = None, timeout: float = 10.0
    ) -> Frame:
        """The next not-yet-expected frame of `ftype` (matching `pred`), waiting if need be."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for i in range(self._cursor, len(self.frames)):
                f = self.frames[i]
                if not f.get("_taken") and f.get("type") == ftype and (pred is None or pred(f)):
                    self.frames[i] = {**f, "_taken": True}
                    self._advance()
                    return f
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                kinds = [f.get("type") for f in self.frames[self._cursor :]]
                raise AssertionError(f"no {ftype!r} frame within {timeout}s; pending: {kinds}")
            try:
                await self.recv(timeout=remaining)
            except TimeoutError:
                continue

    def _advance(self) -> None:
        while self._cursor < len(self.frames) and self.frames[self._cursor].get("_taken"):
            self._cursor += 1

    async def drain(self, quiet: float = 0.3) -> list[Frame]:
        """Read until nothing arrives for `quiet` seconds; returns what arrived."""
        got = []
        while True:
            try:
                got.append(await self.recv(timeout=quiet))
            except TimeoutError:
                return got

    def of_type(self, ftype: str) -> list[Frame]:
        return [f for f in self.frames if f.get("type") == ftype]

    def new_messages(self, conversation_id: str | None = None) -> list[Frame]:
        return [
            f["message"]
            for f in self.frames
            if f.get("type") == "message.new"
            and (conversation_id is None or f["message"]["conversation_id"] == conversation_id)
        ]

    async def close(self) -> None:
        # Read what is still queued while the close handshake runs: a client that stopped
        # reading (frames it never expected fill websockets' queue) pauses the socket, never
        # sees the server's close reply, and would wait out the 10 s close timeout.
        closing = asyncio.create_task(self.ws.close())
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                self.frames.append(json.loads(raw))
        await closing

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code
