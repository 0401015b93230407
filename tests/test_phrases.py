"""Quick phrases (快捷短语) through the real server: lists, who edits what, search by text
and pinyin initials, variables filled for a conversation, CSV in and out, concurrency."""

from __future__ import annotations

import asyncio
import csv
import io

import httpx
import pytest

from app.phrases import rules
from app.shops.models import Shop
from tests.conftest import buyer, online_agent
from tests.support.factories import login, make_shop

STAFF = (
    ("agent1", "agent", ("general",)),
    ("agent2", "agent", ()),
    ("sup", "supervisor", ()),
)


async def client_for(server, kit, username) -> httpx.AsyncClient:
    token = await login(server.http, kit, username)
    return httpx.AsyncClient(
        base_url=server.http, headers={"Authorization": f"Bearer {token}"}, timeout=20
    )


@pytest.fixture
async def desk(server):
    kit = await make_shop(server.ctx.db, agents=STAFF)
    clients = {u: await client_for(server, kit, u) for u in ("agent1", "agent2", "sup", "admin")}
    yield kit, clients
    for c in clients.values():
        await c.aclose()


async def test_shop_phrases_are_edited_by_staff_and_own_phrases_by_their_owner(desk):
    _kit, c = desk
    r = await c["agent1"].post("/api/v1/phrases", json={"text": "全店短语", "scope": "shop"})
    assert r.status_code == 403
    shop_p = await c["sup"].post(
        "/api/v1/phrases", json={"text": "亲,您的订单已发货", "group": "物流", "scope": "shop"}
    )
    assert shop_p.status_code == 201, shop_p.text
    shop_p = shop_p.json()
    assert shop_p["scope"] == "shop" and shop_p["group"] == "物流"
    assert shop_p["initials"] == "qndddyfh" and shop_p["position"] == 1
    mine = (await c["agent1"].post("/api/v1/phrases", json={"text": "我的短语 A1"})).json()
    assert mine["scope"] == "mine" and mine["initials"] == "wddya1"
    # Every agent sees the shop's; only the owner sees their own (others: not found).
    seen1 = [p["id"] for p in (await c["agent1"].get("/api/v1/phrases")).json()]
    assert seen1 == [mine["id"], shop_p["id"]]
    seen2 = [p["id"] for p in (await c["agent2"].get("/api/v1/phrases")).json()]
    assert seen2 == [shop_p["id"]]
    assert (
        await c["agent2"].patch(f"/api/v1/phrases/{mine['id']}", json={"text": "x"})
    ).status_code == 404
    assert (await c["agent2"].delete(f"/api/v1/phrases/{mine['id']}")).status_code == 404
    assert (
        await c["agent1"].patch(f"/api/v1/phrases/{shop_p['id']}", json={"text": "x"})
    ).status_code == 403
    assert (await c["agent1"].delete(f"/api/v1/phrases/{shop_p['id']}")).status_code == 403
    # The admin edits the shop's; the initials follow the new text.
    r = await c["admin"].patch(
        f"/api/v1/phrases/{shop_p['id']}", json={"text": "马上为您催发货", "position": 5}
    )
    assert r.status_code == 200 and r.json()["initials"] == "mswncfh"
    assert r.json()["position"] == 5 and r.json()["group"] == "物流"
    assert (await c["agent1"].get("/api/v1/phrases", params={"scope": "shop"})).json()[0][
        "text"
    ] == "马上为您催发货"
    # The same text twice in one list is refused; in another list it is fine.
    dup = await c["agent1"].post("/api/v1/phrases", json={"text": "我的短语 A1"})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "phrase_exists"
    assert (
        await c["agent2"].post("/api/v1/phrases", json={"text": "我的短语 A1"})
    ).status_code == 201
    other = (await c["agent1"].post("/api/v1/phrases", json={"text": "另一条"})).json()
    clash = await c["agent1"].patch(f"/api/v1/phrases/{other['id']}", json={"text": "我的短语 A1"})
    assert clash.status_code == 409 and clash.json()["error"]["code"] == "phrase_exists"
    long_group = await c["agent1"].patch(
        f"/api/v1/phrases/{other['id']}", json={"group": "组" * 33}
    )
    assert long_group.status_code == 422 and long_group.json()["error"]["code"] == "bad_group"
    assert (await c["agent1"].patch(f"/api/v1/phrases/{other['id']}", json={})).json()[
        "text"
    ] == "另一条"
    bad = await c["agent1"].post("/api/v1/phrases", json={"text": "   "})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_text"
    assert (await c["agent1"].delete(f"/api/v1/phrases/{mine['id']}")).status_code == 204
    assert mine["id"] not in [p["id"] for p in (await c["agent1"].get("/api/v1/phrases")).json()]


async def test_another_shops_phrase_is_not_found(server, desk):
    kit, c = desk
    other = await make_shop(server.ctx.db)
    p = (await c["sup"].post("/api/v1/phrases", json={"text": "本店专用", "scope": "shop"})).json()
    async with await client_for(server, other, "admin") as rival:
        assert (await rival.get("/api/v1/phrases")).json() == []
        assert (
            await rival.patch(f"/api/v1/phrases/{p['id']}", json={"text": "x"})
        ).status_code == 404
        assert (await rival.post(f"/api/v1/phrases/{p['id']}/render")).status_code == 404
    async with httpx.AsyncClient(base_url=server.http) as anon:
        assert (await anon.get("/api/v1/phrases")).status_code == 401
        buyer_h = {"Authorization": f"Bearer {kit.buyer_token('b1')}"}
        assert (await anon.get("/api/v1/phrases", headers=buyer_h)).status_code == 401


async def test_search_by_text_and_pinyin_initials(desk):
    _kit, c = desk
    for text in ("亲,您的订单已发货", "发货时间是48小时内", "退款已处理", "Hello, how can I help?"):
        assert (await c["agent1"].post("/api/v1/phrases", json={"text": text})).status_code == 201

    async def find(q):
        return [
            p["text"] for p in (await c["agent1"].get("/api/v1/phrases", params={"q": q})).json()
        ]

    assert await find("fh") == ["亲,您的订单已发货", "发货时间是48小时内"]
    assert await find("FH") == ["亲,您的订单已发货", "发货时间是48小时内"]
    assert await find("发货") == ["亲,您的订单已发货", "发货时间是48小时内"]
    assert await find("tk") == ["退款已处理"]
    assert await find("48") == ["发货时间是48小时内"]
    assert await find("hello") == ["Hello, how can I help?"]
    assert await find("%") == [] and await find("_") == []
    assert await find("zzz") == []


async def test_render_fills_the_variables_for_a_conversation_the_agent_may_see(
    server, desk, connect
):
    kit, c = desk
    text = "{买家昵称}您好,我是{客服昵称},{店铺名}的订单{订单号}({商品名})已发出"
    p = (await c["sup"].post("/api/v1/phrases", json={"text": text, "scope": "shop"})).json()
    assert p["variables"] == ["买家昵称", "客服昵称", "店铺名", "订单号", "商品名"]
    agent = await online_agent(server, kit, "agent1", connect)
    b = await buyer(server, kit, connect, "b-vars", name="小美")
    async with httpx.AsyncClient(base_url=server.http) as shop_api:
        for order_id, at in (
            ("A-100", "2026-11-01T10:00:00+08:00"),
            ("A-200", "2026-11-02T10:00:00+08:00"),
        ):
            r = await shop_api.post(
                "/api/v1/orders",
                headers={"Authorization": f"Bearer {kit.api_key}"},
                json={
                    "order_id": order_id,
                    "buyer_id": "b-vars",
                    "amount_cents": 1000,
                    "status": "paid",
                    "category": "食品",
                    "created_at": at,
                },
            )
            assert r.status_code == 201, r.text
    await b.send(
        {
            "type": "message.send",
            "client_msg_id": "c1",
            "kind": "product_card",
            "payload": {
                "product_id": "p1",
                "title": "五常大米",
                "category": "食品",
                "price_cents": 5900,
            },
        }
    )
    conv_id = (await b.expect("message.ack"))["message"]["conversation_id"]
    await agent.expect("conversation.assigned")
    url = f"/api/v1/phrases/{p['id']}/render"
    r = await c["agent1"].post(url, params={"conversation_id": conv_id})
    assert r.status_code == 200, r.text
    async with server.ctx.db.read() as session:
        shop_name = (await session.get(Shop, kit.shop_id)).name
    got = r.json()
    assert got["missing"] == []
    # The buyer's newest order, as no order card names one.
    assert got["text"] == f"小美您好,我是agent1 客服,{shop_name}的订单A-200(五常大米)已发出"
    # An order card in the conversation names "its" order, whatever is newer.
    await b.send(
        {
            "type": "message.send",
            "client_msg_id": "c2",
            "kind": "order_card",
            "payload": {"order_id": "A-100"},
        }
    )
    await b.expect("message.ack")
    got = (await c["agent1"].post(url, params={"conversation_id": conv_id})).json()
    assert "的订单A-100(五常大米)" in got["text"]
    # Not this agent's conversation: not found; a supervisor may; no conversation: partial.
    assert (await c["agent2"].post(url, params={"conversation_id": conv_id})).status_code == 404
    assert (await c["sup"].post(url, params={"conversation_id": conv_id})).status_code == 200
    alone = (await c["agent2"].post(url)).json()
    assert alone["missing"] == ["买家昵称", "订单号", "商品名"]
    assert alone["text"].startswith("您好,我是agent2 客服,")


async def test_csv_export_and_import_round_trip(desk):
    _kit, c = desk
    await c["sup"].post(
        "/api/v1/phrases", json={"text": "全店: 欢迎光临", "group": "问候", "scope": "shop"}
    )
    await c["agent1"].post("/api/v1/phrases", json={"text": "=1+1 不是公式", "group": "测试"})
    await c["agent1"].post("/api/v1/phrases", json={"text": '带"引号", 和逗号'})
    r = await c["agent1"].get("/api/v1/phrases/export.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["scope", "group", "text"]
    assert rows[1:] == [
        ["mine", "测试", "'=1+1 不是公式"],
        ["mine", "", '带"引号", 和逗号'],
        ["shop", "问候", "全店: 欢迎光临"],
    ]
    # Into another agent's list: their own rows go in, the shop's row needs staff.
    mine_only = "\n".join(r.content.decode("utf-8-sig").splitlines()[:3]).encode("utf-8-sig")
    up = await c["agent2"].post(
        "/api/v1/phrases/import", files={"file": ("p.csv", mine_only, "text/csv")}
    )
    assert up.status_code == 200, up.text
    assert up.json() == {"created": 2, "skipped": 0}
    texts = [
        p["text"]
        for p in (await c["agent2"].get("/api/v1/phrases", params={"scope": "mine"})).json()
    ]
    assert texts == ["=1+1 不是公式", '带"引号", 和逗号']
    refused = await c["agent2"].post(
        "/api/v1/phrases/import", files={"file": ("p.csv", r.content, "text/csv")}
    )
    assert refused.status_code == 403
    # Again, by staff: everything already there is skipped.
    again = await c["sup"].post(
        "/api/v1/phrases/import",
        files={
            "file": (
                "p.csv",
                "scope,group,text\nshop,问候,全店: 欢迎光临\nshop,,新的一条\n".encode(),
                "text/csv",
            )
        },
    )
    assert again.json() == {"created": 1, "skipped": 1}
    bad = await c["agent2"].post(
        "/api/v1/phrases/import",
        files={"file": ("p.csv", b"scope,group,text\nteam,,x\n", "text/csv")},
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_csv"
    no_header = await c["agent2"].post(
        "/api/v1/phrases/import", files={"file": ("p.csv", "你好\n".encode(), "text/csv")}
    )
    assert no_header.status_code == 422 and no_header.json()["error"]["code"] == "bad_csv"
    gbk = await c["agent2"].post(
        "/api/v1/phrases/import", files={"file": ("p.csv", "你好".encode("gbk"), "text/csv")}
    )
    assert gbk.status_code == 422


async def test_uploading_browser_phrases_twice_at_once_adds_each_once(desk):
    _kit, c = desk
    body = {"phrases": [{"text": f"浏览器里的短语 {i}"} for i in range(30)]}
    r1, r2 = await asyncio.gather(
        c["agent1"].post("/api/v1/phrases/bulk", json=body),
        c["agent1"].post("/api/v1/phrases/bulk", json=body),
    )
    assert {r1.status_code, r2.status_code} == {200}
    assert r1.json()["created"] + r2.json()["created"] == 30
    listed = (await c["agent1"].get("/api/v1/phrases", params={"scope": "mine"})).json()
    assert sorted(p["text"] for p in listed) == sorted(p["text"] for p in body["phrases"])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("发货了吗?", "fhlm"),
        ("亲,您的订单已发货", "qndddyfh"),
        ("iPhone 15 到货", "iphone15dh"),
        ("!!!", ""),
        ("重庆", "cq"),
        ("{买家昵称}您好,我是{客服昵称}", "nhws"),
    ],
)
def test_initials(text, expected):
    assert rules.initials(text) == expected


def test_render_rules():
    text, missing = rules.render("{买家昵称}好,{未知}{订单号}", {"买家昵称": "小美"})
    assert text == "小美好,{未知}" and missing == ["订单号"]
