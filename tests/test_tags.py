"""Tags through a real server: the shop's list, tagging conversations (CONV gains `tags`,
never on the buyer's copy) and the shop's rule "a tag is required to close"."""

from __future__ import annotations

import pytest

from app.errors import BadInput
from app.tags import rules
from tests.conftest import buyer, online_agent
from tests.support.desk import DESK_AGENTS, api, chat
from tests.support.factories import make_shop


@pytest.mark.parametrize(
    ("raw", "stored"),
    [("退款", "退款"), ("  物流  问题 ", "物流 问题"), ("a" * 32, "a" * 32), ("VIP", "VIP")],
)
def test_tag_names_are_normalised(raw: str, stored: str) -> None:
    assert rules.tag_name(raw) == stored


@pytest.mark.parametrize("raw", ["", "   ", "a" * 33, "退\x00款", "退\u200b款"])
def test_bad_tag_names_are_refused(raw: str) -> None:
    with pytest.raises(BadInput):
        rules.tag_name(raw)


def test_tag_lists_drop_duplicates_and_are_bounded() -> None:
    assert rules.tag_list(["退款", " 退款", "物流"]) == ["退款", "物流"]
    with pytest.raises(BadInput):
        rules.tag_list([f"t{i}" for i in range(rules.MAX_PER_CONVERSATION + 1)])


@pytest.mark.parametrize(
    ("required", "count", "allowed"), [(False, 0, True), (True, 0, False), (True, 2, True)]
)
def test_may_close(required: bool, count: int, allowed: bool) -> None:
    assert rules.may_close(required, count) is allowed


async def test_tags_listed_set_renamed_deleted_and_hidden_from_the_buyer(server, connect):
    kit = await make_shop(server.ctx.db, agents=DESK_AGENTS)
    admin, a1, a2 = [await api(server, kit, u) for u in ("admin", "agent1", "agent2")]
    try:
        ids = {}
        for name in ("退款", "物流"):
            r = await admin.post("/api/v1/tags", json={"name": name})
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
        r = await admin.post("/api/v1/tags", json={"name": " 退款 "})
        assert r.status_code == 409 and r.json()["error"]["code"] == "tag_exists"
        r = await a1.post("/api/v1/tags", json={"name": "投诉"})
        assert r.status_code == 403
        assert [t["name"] for t in (await a1.get("/api/v1/tags")).json()] == sorted(
            ["退款", "物流"]
        )

        ws = await online_agent(server, kit, "agent1", connect)
        conv_id, b = await chat(server, kit, connect, ws, "tb-1", ["我要退款"])
        r = await a1.put(f"/api/v1/conversations/{conv_id}/tags", json={"tags": ["退款", "物流"]})
        assert r.status_code == 200, r.text
        assert r.json()["tags"] == sorted(["退款", "物流"])
        frame = await ws.expect("conversation.tags")
        assert frame == {
            "type": "conversation.tags",
            "conversation_id": conv_id,
            "tags": sorted(["退款", "物流"]),
        }
        listed = (await a1.get("/api/v1/conversations")).json()
        assert [c["tags"] for c in listed if c["id"] == conv_id] == [sorted(["退款", "物流"])]

        r = await a1.put(f"/api/v1/conversations/{conv_id}/tags", json={"tags": ["无此标签"]})
        assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_tag"
        r = await a2.put(f"/api/v1/conversations/{conv_id}/tags", json={"tags": ["退款"]})
        assert r.status_code == 403  # not agent2's conversation

        # The buyer's CONV (hello on reconnect) never carries the staff's tags.
        again = await buyer(server, kit, connect, "tb-1")
        hello = again.of_type("hello")[0]
        assert hello["conversation"]["id"] == conv_id and "tags" not in hello["conversation"]
        assert all("tags" not in (f.get("conversation") or {}) for f in b.frames)

        r = await admin.patch(f"/api/v1/tags/{ids['物流']}", json={"name": "快递"})
        assert r.status_code == 200 and r.json() == {
            "id": ids["物流"],
            "name": "快递",
            "conversations": 1,
        }
        assert (await admin.delete(f"/api/v1/tags/{ids['退款']}")).status_code == 204
        listed = (await a1.get("/api/v1/conversations")).json()
        assert [c["tags"] for c in listed if c["id"] == conv_id] == [["快递"]]
        assert (await a1.delete(f"/api/v1/tags/{ids['物流']}")).status_code == 403
    finally:
        for c in (admin, a1, a2):
            await c.aclose()


async def test_a_tag_is_required_to_close_when_the_shop_says_so(server, connect):
    kit = await make_shop(server.ctx.db, agents=DESK_AGENTS)
    admin, a1 = await api(server, kit, "admin"), await api(server, kit, "agent1")
    try:
        assert (await a1.get("/api/v1/tag-settings")).json() == {"required_to_close": False}
        assert (
            await a1.put("/api/v1/tag-settings", json={"required_to_close": True})
        ).status_code == 403
        r = await admin.put("/api/v1/tag-settings", json={"required_to_close": True})
        assert r.json() == {"required_to_close": True}
        await admin.post("/api/v1/tags", json={"name": "咨询"})

        ws = await online_agent(server, kit, "agent1", connect)
        conv_id, b = await chat(server, kit, connect, ws, "tc-1", ["在吗"])
        await ws.send({"type": "conversation.close", "conversation_id": conv_id})
        err = await ws.expect("error")
        assert err["code"] == "tag_required"
        r = await a1.post(f"/api/v1/conversations/{conv_id}/close")
        assert r.status_code == 409 and r.json()["error"]["code"] == "tag_required"

        await a1.put(f"/api/v1/conversations/{conv_id}/tags", json={"tags": ["咨询"]})
        r = await a1.post(f"/api/v1/conversations/{conv_id}/close")
        assert r.status_code == 200 and r.json() == {"closed": True}
        await b.expect("conversation.closed")
        # Turned off again: an untagged conversation closes.
        await admin.put("/api/v1/tag-settings", json={"required_to_close": False})
        conv2, _ = await chat(server, kit, connect, ws, "tc-2", ["你好"])
        await ws.send({"type": "conversation.close", "conversation_id": conv2})
        closed = await ws.expect("conversation.closed", lambda f: f["conversation_id"] == conv2)
        assert closed["reason"] == "agent"
    finally:
        await admin.aclose()
        await a1.aclose()
