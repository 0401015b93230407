"""Recall test helpers: consultations written straight to the database, campaign requests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert, select

from app.chat.models import Conversation, Message
from app.db import Database, new_id
from app.recall.models import RecallSend

HIGH_INTENT = ("product_card", "这件还有货吗?包邮吗?")  # 15 + 15 + 10 = 40 points


def consultation_rows(
    shop_id: str, buyer_id: str, at: datetime, signals: tuple[str, ...] = HIGH_INTENT
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A closed consultation opened at `at` with the buyer's messages: "product_card",
    "order_card", or text."""
    conv_id = new_id()
    conv = Conversation(
        id=conv_id,
        shop_id=shop_id,
        buyer_id=buyer_id,
        status="closed",
        last_seq=len(signals),
        opened_at=at,
        closed_at=at + timedelta(minutes=10),
        close_reason="agent",
    ).model_dump()
    msgs = []
    for seq, sig in enumerate(signals, start=1):
        kind = sig if sig in ("product_card", "order_card") else "text"
        payload = (
            {"product_id": "p1", "title": "羊毛围巾", "category": "服饰", "price_cents": 9900}
            if kind == "product_card"
            else ({"order_id": "o1"} if kind == "order_card" else {})
        )
        msgs.append(
            Message(
                id=new_id(),
                shop_id=shop_id,
                conversation_id=conv_id,
                seq=seq,
                sender="buyer",
                sender_id=buyer_id,
                kind=kind,
                body=sig if kind == "text" else "",
                payload=payload,
                created_at=at + timedelta(seconds=seq),
            ).model_dump()
        )
    return conv, msgs


async def consult(
    db: Database,
    shop_id: str,
    buyers: list[str],
    at: datetime,
    signals: tuple[str, ...] = HIGH_INTENT,
) -> None:
    convs, msgs = [], []
    for b in buyers:
        c, m = consultation_rows(shop_id, b, at, signals)
        convs.append(c)
        msgs.extend(m)

    async def write(uow: Any) -> None:
        await uow.session.execute(insert(Conversation), convs)
        if msgs:
            await uow.session.execute(insert(Message), msgs)

    await db.run(write)


async def place_orders(
    http: httpx.AsyncClient,
    api_key: str,
    orders: list[tuple[str, str, datetime]],
    amount_cents: int = 5000,
) -> None:
    """(order_id, buyer_id, created_at) posted by the shop's storefront, as paid orders."""
    for order_id, buyer_id, at in orders:
        r = await http.post(
            "/api/v1/orders",
            headers={"Authorization": f"Bearer {api_key}"},
            json={
                "order_id": order_id,
                "buyer_id": buyer_id,
                "amount_cents": amount_cents,
                "status": "paid",
                "category": "服饰",
                "created_at": at.isoformat(),
            },
        )
        assert r.status_code == 201, r.text


def staff(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_campaign(
    http: httpx.AsyncClient,
    token: str,
    send_at: datetime,
    *,
    days: int = 3,
    min_intent: int = 30,
    schedule: bool = True,
    name: str = "双11召回",
) -> dict[str, Any]:
    r = await http.post(
        "/api/v1/recall/campaigns",
        headers=staff(token),
        json={
            "name": name,
            "send_at": send_at.isoformat(),
            "ends_at": (send_at + timedelta(days=days)).isoformat(),
            "min_intent": min_intent,
            "coupon": {"title": "满200减30", "amount_cents": 3000, "min_spend_cents": 20000},
            "message": "您看过的商品正在大促,送您一张券",
        },
    )
    assert r.status_code == 201, r.text
    campaign = r.json()
    assert campaign["status"] == "draft"
    if schedule:
        r = await http.post(
            f"/api/v1/recall/campaigns/{campaign['id']}/schedule", headers=staff(token)
        )
        assert r.status_code == 200, r.text
        campaign = r.json()
    return campaign


async def sends_by_buyer(db: Database, shop_id: str) -> dict[str, list[RecallSend]]:
    async with db.read() as s:
        rows = (await s.execute(select(RecallSend).where(RecallSend.shop_id == shop_id))).scalars()
        found: dict[str, list[RecallSend]] = {}
        for r in rows:
            found.setdefault(r.buyer_id, []).append(r)
        return found


async def recall_cards(db: Database, shop_id: str) -> list[Message]:
    async with db.read() as s:
        rows = await s.execute(
            select(Message).where(Message.shop_id == shop_id, Message.kind == "coupon_card")
        )
        return [m for m in rows.scalars() if m.payload.get("campaign_id")]
