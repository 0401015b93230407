"""CSV exports through a real server: Excel-friendly (BOM), the shop's time zone, guarded
cells, keyset pages that lose and repeat nothing, and who may export."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app.chat.models import Conversation, Message, Rating
from app.exports import service as export_service
from app.payouts.models import PayoutLedgerEntry
from app.routing.hours_models import LeftMessage
from tests.support.factories import login, make_shop
from tests.support.passwords import cheap_password_hashing  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("cheap_password_hashing")

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
STAFF = (("a1", "agent", ("general",)), ("sup", "supervisor", ("general",)))
NASTY = ['=HYPERLINK("http://x")', "+86 138", "-1", "@SUM(A1)", '多行\n第二行, 带逗号 "引号"']


def api(server, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.http, headers={"Authorization": f"Bearer {token}"})


async def store(db, kit, *, conversations: int, same_time: bool = False) -> list[str]:
    """Closed conversations opened 10 min apart (or all at once), 2 messages each."""
    a1 = kit.agents["a1"]

    async def build(uow):
        s = uow.session
        ids = []
        for n in range(conversations):
            opened = T0 if same_time else T0 + timedelta(minutes=10 * n)
            c = Conversation(
                shop_id=kit.shop_id,
                buyer_id=f"b-{n}",
                agent_id=a1,
                status="closed",
                opened_at=opened,
                queued_at=opened,
                assigned_at=opened + timedelta(seconds=5),
                closed_at=opened + timedelta(minutes=5),
                close_reason="agent",
                last_seq=2,
            )
            s.add(c)
            ids.append(c.id)
            body = NASTY[n % len(NASTY)]
            for seq, (sender, sid, text, dt) in enumerate(
                [("buyer", c.buyer_id, body, 0), ("agent", a1, "您好", 35)], start=1
            ):
                s.add(
                    Message(
                        shop_id=kit.shop_id,
                        conversation_id=c.id,
                        seq=seq,
                        sender=sender,
                        sender_id=sid,
                        body=text,
                        created_at=T0 if same_time else opened + timedelta(seconds=dt),
                    )
                )
            if n == 0:
                s.add(
                    Rating(
                        conversation_id=c.id,
                        shop_id=kit.shop_id,
                        buyer_id=c.buyer_id,
                        agent_id=a1,
                        score=5,
                        created_at=opened + timedelta(minutes=6),
                    )
                )
                await s.flush()
                s.add(
                    LeftMessage(
                        conversation_id=c.id,
                        shop_id=kit.shop_id,
                        reason="outside_hours",
                        since=opened,
                        told_at=opened,
                    )
                )
        s.add(
            PayoutLedgerEntry(
                shop_id=kit.shop_id,
                at=T0 + timedelta(minutes=1),
                entry="fund_topup",
                actor_kind="agent",
                actor_id=kit.agents["sup"],
                amount_cents=123456,
                note="=cmd|' /C calc'!A0",
            )
        )
        return ids

    return await db.run(build)


def parse(r: httpx.Response) -> list[list[str]]:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode())
    text = r.content.decode("utf-8-sig")
    assert "\r\n" in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert int(r.headers["x-export-rows"]) == len(rows) - 1
    return rows


async def test_exports_of_a_period(server):
    kit = await make_shop(server.ctx.db, agents=STAFF)
    rival = await make_shop(server.ctx.db, agents=STAFF)
    ids = await store(server.ctx.db, kit, conversations=5)
    await store(server.ctx.db, rival, conversations=2)
    period = {"from": "2026-03-02", "to": "2026-03-02"}
    async with api(server, await login(server.http, kit, "sup")) as c:
        convs = parse(await c.get("/api/v1/exports/conversations.csv", params=period))
        r = await c.get("/api/v1/exports/conversations.csv", params=period)
        assert "homing-conversations-2026-03-02_2026-03-02.csv" in r.headers["content-disposition"]
        msgs = parse(await c.get("/api/v1/exports/messages.csv", params=period))
        metrics = parse(await c.get("/api/v1/exports/metrics.csv", params=period))
        ledger = parse(await c.get("/api/v1/exports/ledger.csv", params=period))
    header, *rows = convs
    assert header == export_service.HEADERS["conversations"]
    assert [row[0] for row in rows] == ids  # one row each, oldest first; the rival's absent
    first = dict(zip(header, rows[0], strict=True))
    assert first["opened_at"] == "2026-03-02 10:00:00"  # Shanghai wall clock
    assert first["assigned_at"] == "2026-03-02 10:00:05"
    assert first["agent_username"] == "a1" and first["agent_name"] == "a1 客服"
    assert first["rating"] == "5" and first["left_message"] == "outside_hours"
    assert first["first_response_s"] == "30.0"
    assert (first["buyer_messages"], first["agent_messages"], first["messages"]) == ("1", "1", "2")
    # Messages: what a buyer typed is guarded, so a spreadsheet shows it as text.
    bodies = [row[7] for row in msgs[1:] if row[3] == "buyer"]
    assert bodies == [
        '\'=HYPERLINK("http://x")',
        "'+86 138",
        "'-1",
        "'@SUM(A1)",
        '多行\n第二行, 带逗号 "引号"',
    ]
    assert msgs[1][0] == "2026-03-02 10:00:00" and msgs[2][5] == "a1 客服"
    # Metrics: a row per measured agent per day.
    assert [row[:4] for row in metrics[1:]] == [
        ["2026-03-02", "a1", "a1 客服", "5"],
        ["2026-03-02", "sup", "sup 客服", "0"],
    ]
    assert metrics[1][4] == "1.0"
    # Ledger: yuan as a number, the note guarded.
    (entry,) = ledger[1:]
    assert entry[1] == "fund_topup" and entry[10] == "1234.56" and entry[14].startswith("'=cmd")


async def test_keyset_pages_lose_and_repeat_nothing(server, monkeypatch):
    kit = await make_shop(server.ctx.db, agents=STAFF)
    ids = await store(server.ctx.db, kit, conversations=7, same_time=True)  # equal times
    monkeypatch.setattr(export_service, "PAGE", 3)
    monkeypatch.setattr(export_service, "CONVERSATION_PAGE", 2)
    period = {"from": "2026-03-02", "to": "2026-03-02"}
    async with api(server, await login(server.http, kit, "admin")) as c:
        convs = parse(await c.get("/api/v1/exports/conversations.csv", params=period))
        msgs = parse(await c.get("/api/v1/exports/messages.csv", params=period))
    assert sorted(row[0] for row in convs[1:]) == sorted(ids)
    assert len(msgs) - 1 == 14
    assert len({(row[1], row[2]) for row in msgs[1:]}) == 14


async def test_who_may_export(server):
    kit = await make_shop(server.ctx.db, agents=STAFF)
    async with api(server, await login(server.http, kit, "a1")) as c:
        assert (await c.get("/api/v1/exports/messages.csv")).status_code == 403
    async with api(server, await login(server.http, kit, "admin")) as c:
        assert (await c.get("/api/v1/exports/secrets.csv")).status_code == 404
        bad = await c.get("/api/v1/exports/messages.csv", params={"from": "yesterday"})
        assert bad.status_code == 422
        empty = parse(await c.get("/api/v1/exports/messages.csv"))
        assert empty == [export_service.HEADERS["messages"]]
    async with httpx.AsyncClient(base_url=server.http) as anon:
        assert (await anon.get("/api/v1/exports/messages.csv")).status_code == 401


async def test_tags_are_a_column_and_a_filter_and_notes_are_no_reply(server):
    """Tags (app/tags) show in the conversations export and filter both per-conversation
    exports; an internal note before the agent's reply neither answers the buyer nor counts
    as an agent message."""
    from app.tags.models import ConversationTag, Tag

    kit = await make_shop(server.ctx.db, agents=STAFF)
    ids = await store(server.ctx.db, kit, conversations=3)

    async def tag_and_note(uow):
        s = uow.session
        late = Tag(shop_id=kit.shop_id, name="晚发", created_at=T0)
        refund = Tag(shop_id=kit.shop_id, name="退款", created_at=T0)
        s.add_all([late, refund])
        await s.flush()
        s.add_all(
            [
                ConversationTag(
                    shop_id=kit.shop_id, conversation_id=ids[0], tag_id=late.id, created_at=T0
                ),
                ConversationTag(
                    shop_id=kit.shop_id, conversation_id=ids[0], tag_id=refund.id, created_at=T0
                ),
                ConversationTag(
                    shop_id=kit.shop_id, conversation_id=ids[2], tag_id=refund.id, created_at=T0
                ),
            ]
        )
        conv = await s.get(Conversation, ids[1])
        conv.last_seq = 3
        s.add(
            Message(
                shop_id=kit.shop_id,
                conversation_id=ids[1],
                seq=3,
                sender="agent",
                sender_id=kit.agents["a1"],
                kind="note",
                body="@sup 这个买家要催一下",
                # Before the agent's reply (35 s): were it a reply, the first response is 5 s.
                created_at=T0 + timedelta(minutes=10, seconds=10),
            )
        )

    await server.ctx.db.run(tag_and_note)
    period = {"from": "2026-03-02", "to": "2026-03-02"}
    async with api(server, await login(server.http, kit, "sup")) as c:
        header, *rows = parse(await c.get("/api/v1/exports/conversations.csv", params=period))
        tagged = parse(
            await c.get("/api/v1/exports/conversations.csv", params={**period, "tag": "退款"})
        )
        msgs = parse(await c.get("/api/v1/exports/messages.csv", params={**period, "tag": "晚发"}))
        unknown = await c.get("/api/v1/exports/messages.csv", params={**period, "tag": "没有"})
        not_per_conv = await c.get("/api/v1/exports/ledger.csv", params={**period, "tag": "退款"})
    by_id = {row[0]: dict(zip(header, row, strict=True)) for row in rows}
    assert [by_id[i]["tags"] for i in ids] == ["晚发; 退款", "", "退款"]
    noted = by_id[ids[1]]
    assert noted["first_response_s"] == "30.0"
    assert (noted["buyer_messages"], noted["agent_messages"]) == ("1", "1")
    assert [row[0] for row in tagged[1:]] == [ids[0], ids[2]]
    assert {row[1] for row in msgs[1:]} == {ids[0]} and len(msgs) == 3
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_tag"
    assert not_per_conv.status_code == 422 and not_per_conv.json()["error"]["code"] == "bad_tag"
