"""Helpers for the tags, history and search tests: HTTP as an agent, a chat played out."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.conftest import buyer
from tests.support.factories import ShopKit, login

DESK_AGENTS = (
    ("agent1", "agent", ("general",)),
    ("agent2", "agent", ("general",)),
    ("sup", "supervisor", ("general",)),
)


async def api(server: Any, kit: ShopKit, username: str) -> httpx.AsyncClient:
    """An HTTP client signed in as `username` (close it with `aclose`)."""
    token = await login(server.http, kit, username)
    return httpx.AsyncClient(base_url=server.http, headers={"Authorization": f"Bearer {token}"})


async def chat(
    server: Any,
    kit: ShopKit,
    connect: Any,
    agent_ws: Any,
    sub: str,
    buyer_lines: list[str],
    agent_lines: list[str] = (),  # type: ignore[assignment]
) -> tuple[str, Any]:
    """The buyer `sub` opens a conversation with `buyer_lines`; the (only online) agent
    behind `agent_ws` is assigned it and answers `agent_lines`. Returns (conv id, buyer ws)."""
    b = await buyer(server, kit, connect, sub)
    for line in buyer_lines:
        await b.send({"type": "message.send", "client_msg_id": secrets.token_hex(4), "body": line})
        await b.expect("message.ack")
    assigned = await agent_ws.expect(
        "conversation.assigned", lambda f: f["conversation"]["buyer_id"] == sub
    )
    conv_id = str(assigned["conversation"]["id"])
    for line in agent_lines:
        ref = secrets.token_hex(4)
        await agent_ws.send(
            {"type": "message.send", "conversation_id": conv_id, "client_msg_id": ref, "body": line}
        )
        await agent_ws.expect("message.ack", lambda f, ref=ref: f["client_msg_id"] == ref)
    return conv_id, b
