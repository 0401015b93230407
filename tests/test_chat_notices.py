"""System cards in buyers' chats (`app.chat.notices`): one API, the same rows for every caller."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from app.chat import notices
from app.chat.models import Conversation, Message
from app.db import Database, UnitOfWork
from app.realtime.topics import buyer_topic
from app.shops.models import Buyer

NOW = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)


def _buyer() -> str:
    return f"nb-{secrets.token_hex(4)}"


def _card(buyer_id: str, n: int, conversation_id: str | None = None) -> notices.Notice:
    return notices.Notice(
        buyer_id, "coupon_card", f"card {n}", {"coupon": {"n": n}}, conversation_id=conversation_id
    )


async def _post(db: Database, shop_id: str, cards: list[notices.Notice]) -> Any:
    async def run(uow: UnitOfWork) -> tuple[list[notices.Posted], list[tuple[str, Any]]]:
        posted = await notices.post(uow, shop_id, cards, now=NOW)
        return posted, list(uow.events)

    return await db.run(run)


async def _open(db: Database, shop_id: str, buyer_id: str, status: str = "open") -> str:
    async def run(uow: UnitOfWork) -> str:
        conv = Conversation(
            shop_id=shop_id, buyer_id=buyer_id, status=status, last_seq=3, opened_at=NOW
        )
        uow.session.add(conv)
        await uow.session.flush()
        return conv.id

    return str(await db.run(run))


async def _rows(db: Database, conversation_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    async with db.read() as s:
        conv = await s.get(Conversation, conversation_id)
        assert conv is not None
        msgs = (
            await s.execute(
                select(Message)
                .where(Message.conversation_id == conversation_id)
                .order_by(Message.seq)
            )
        ).scalars()
        return conv.model_dump(), [m.model_dump() for m in msgs]


async def test_one_card_and_a_batch_of_cards_store_the_same_rows(server, shop) -> None:
    """A payout's one card and a recall batch's many go through one path: the notice
    conversations they leave differ only in ids, buyer and card."""
    db = server.ctx.db
    alone, batch = _buyer(), [_buyer(), _buyer()]
    (one,), _ = await _post(db, shop.shop_id, [_card(alone, 0)])
    many, events = await _post(db, shop.shop_id, [_card(b, i) for i, b in enumerate(batch, 1)])
    assert [p.in_notice for p in (one, *many)] == [True, True, True]
    assert all(p.seq == 1 for p in (one, *many))

    def shape(rows: tuple[dict[str, Any], list[dict[str, Any]]]) -> Any:
        conv, msgs = rows
        drop = {"id", "conversation_id", "buyer_id", "body", "payload"}
        return (
            {k: v for k, v in conv.items() if k not in drop},
            [{k: v for k, v in m.items() if k not in drop} for m in msgs],
        )

    shapes = [shape(await _rows(db, p.conversation_id)) for p in (one, *many)]
    assert shapes[0] == shapes[1] == shapes[2]
    conv, (msg,) = shapes[0]
    assert (conv["status"], conv["close_reason"], conv["last_seq"]) == ("closed", "system", 1)
    assert (msg["seq"], msg["sender"], msg["sender_id"], msg["kind"]) == (
        1,
        "system",
        None,
        "coupon_card",
    )
    # Each buyer hears of their card after commit, on their own topic.
    assert [t for t, _ in events] == [buyer_topic(shop.shop_id, b) for b in batch]
    assert [f["message"]["id"] for _, f in events] == [p.message_id for p in many]


async def test_caller_chosen_ids_and_the_buyers_queue(server, shop) -> None:
    db = server.ctx.db
    elder = _buyer()

    async def add_elder(uow: UnitOfWork) -> None:
        uow.session.add(
            Buyer(shop_id=shop.shop_id, id=elder, age=75, first_seen_at=NOW, last_seen_at=NOW)
        )

    await db.run(add_elder)
    card = notices.Notice(
        elder, "coupon_card", "x", {}, notice_conversation_id="c-" + elder, notice_message_id="m-1"
    )
    (posted,), _ = await _post(db, shop.shop_id, [card])
    assert (posted.conversation_id, posted.message_id) == ("c-" + elder, "m-1")
    conv, _ = await _rows(db, posted.conversation_id)
    assert (conv["queue"], conv["elder"]) == ("elderly", True)


async def test_a_card_goes_where_the_buyer_is(server, shop) -> None:
    """Into the conversation it is about while open, else the buyer's open one, else a notice."""
    db = server.ctx.db
    chatting, quiet = _buyer(), _buyer()
    live = await _open(db, shop.shop_id, chatting)
    closed = await _open(db, shop.shop_id, quiet, status="closed")
    posted, _ = await _post(
        db,
        shop.shop_id,
        [
            _card(chatting, 1),  # no conversation named: the buyer's open one
            _card(chatting, 2, conversation_id=live),  # named and open: there, next number
            _card(quiet, 3, conversation_id=closed),  # named but closed, nothing open: a notice
        ],
    )
    assert [(p.conversation_id, p.seq, p.in_notice) for p in posted[:2]] == [
        (live, 4, False),
        (live, 5, False),
    ]
    assert posted[2].conversation_id != closed and posted[2].in_notice
    _, msgs = await _rows(db, live)
    assert [(m["seq"], m["sender"], m["body"]) for m in msgs] == [
        (4, "system", "card 1"),
        (5, "system", "card 2"),
    ]
