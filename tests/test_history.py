"""The buyer's history through a real server: the list (agent, queue, rating, first line,
tags), reading a past conversation read-only, and who may (an agent only while serving)."""

from __future__ import annotations

import pytest

from app.history import rules
from tests.conftest import online_agent
from tests.support.desk import DESK_AGENTS, api, chat
from tests.support.factories import make_shop


@pytest.mark.parametrize(
    ("supervises", "serves", "served", "history", "conversation"),
    [
        (True, False, False, True, True),
        (False, True, False, True, True),
        (False, False, True, False, True),
        (False, False, False, False, False),
    ],
)
def test_who_may_read(supervises, serves, served, history, conversation) -> None:
    assert rules.may_read_history(supervises=supervises, serves_buyer_now=serves) is history
    assert (
        rules.may_read_conversation(
            supervises=supervises, serves_buyer_now=serves, served_it=served
        )
        is conversation
    )


@pytest.mark.parametrize(
    ("body", "kind", "line"),
    [
        ("在吗\n  有货吗", "text", "在吗 有货吗"),
        ("", "image", "[image]"),
        ("长" * 70, "text", "长" * 59 + "…"),
    ],
)
def test_first_line(body: str, kind: str, line: str) -> None:
    assert rules.first_line(body, kind) == line


async def test_history_lists_and_opens_past_conversations_for_those_who_may(server, connect):
    kit = await make_shop(server.ctx.db, agents=DESK_AGENTS)
    admin = await api(server, kit, "admin")
    a1, a2, sup = [await api(server, kit, u) for u in ("agent1", "agent2", "sup")]
    try:
        await admin.post("/api/v1/tags", json={"name": "物流"})
        ws = await online_agent(server, kit, "agent1", connect)
        old_id, b = await chat(
            server, kit, connect, ws, "hb-1", ["上次的订单还没发货", "订单号 1001"], ["马上为您催"]
        )
        await a1.put(f"/api/v1/conversations/{old_id}/tags", json={"tags": ["物流"]})
        assert (await a1.post(f"/api/v1/conversations/{old_id}/close")).status_code == 200
        await b.expect("conversation.closed")
        await b.send({"type": "csat.submit", "conversation_id": old_id, "score": 4})
        await b.expect("csat.received")
        # agent2 (not serving hb-1) comes online; agent1 takes the next one.
        await b.send({"type": "message.send", "client_msg_id": "n1", "body": "又来了"})
        new = await ws.expect("conversation.assigned", lambda f: f["conversation"]["id"] != old_id)
        new_id = new["conversation"]["id"]

        r = await a1.get("/api/v1/buyers/hb-1/conversations")
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["buyer_id"] == "hb-1" and page["next_before"] is None
        assert [c["id"] for c in page["conversations"]] == [new_id, old_id]
        past = page["conversations"][1]
        assert past["agent_name"] == "agent1 客服" and past["queue"] == "general"
        assert past["rating"] == 4 and past["tags"] == ["物流"] and past["status"] == "closed"
        assert past["first_line"] == "上次的订单还没发货" and past["messages"] >= 4
        assert page["conversations"][0]["first_line"] == "又来了"

        msgs = (await a1.get(f"/api/v1/history/conversations/{old_id}/messages")).json()
        assert [m["body"] for m in msgs[:3]] == ["上次的订单还没发货", "订单号 1001", "马上为您催"]
        # Scrolling up: the last messages before a seq.
        r = await a1.get(
            f"/api/v1/history/conversations/{old_id}/messages", params={"before_seq": 3, "limit": 1}
        )
        assert [m["seq"] for m in r.json()] == [2]

        # Paged: one at a time, newest first.
        r = await a1.get("/api/v1/buyers/hb-1/conversations", params={"limit": 1})
        first = r.json()
        assert [c["id"] for c in first["conversations"]] == [new_id] and first["next_before"]
        r = await a1.get(
            "/api/v1/buyers/hb-1/conversations",
            params={"limit": 1, "before": first["next_before"]},
        )
        assert [c["id"] for c in r.json()["conversations"]] == [old_id]

        # agent2 serves no conversation of hb-1: refused, as if the buyer did not exist.
        assert (await a2.get("/api/v1/buyers/hb-1/conversations")).status_code == 404
        r = await a2.get(f"/api/v1/history/conversations/{old_id}/messages")
        assert r.status_code == 404
        # Supervisors (and admins) read any buyer's history.
        assert (
            len((await sup.get("/api/v1/buyers/hb-1/conversations")).json()["conversations"]) == 2
        )
        assert (
            await admin.get(f"/api/v1/history/conversations/{old_id}/messages")
        ).status_code == 200

        # Once agent1 no longer serves hb-1, the list is refused, but the conversation they
        # served stays readable (a search hit of theirs opens it).
        assert (await a1.post(f"/api/v1/conversations/{new_id}/close")).status_code == 200
        assert (await a1.get("/api/v1/buyers/hb-1/conversations")).status_code == 404
        r = await a1.get(f"/api/v1/history/conversations/{old_id}/messages")
        assert r.status_code == 200
        # Another shop's agent: nothing.
        other = await make_shop(server.ctx.db)
        stranger = await api(server, other, "admin")
        try:
            assert (await stranger.get("/api/v1/buyers/hb-1/conversations")).json()[
                "conversations"
            ] == []
            r = await stranger.get(f"/api/v1/history/conversations/{old_id}/messages")
            assert r.status_code == 404
        finally:
            await stranger.aclose()
    finally:
        for c in (admin, a1, a2, sup):
            await c.aclose()
