"""System cards in buyers' chats: the one way a domain tells a buyer something in chat.

A compensation card (payouts), a late-shipment coupon (payouts' job), a recall coupon
(recall, thousands at once) — and next after-sales and bot cards — are all posted by
`post(uow, shop_id, notices, now=now)`, which returns where each card landed
(`Posted`), in the order given. A card is a message with `sender="system"`, no
`sender_id`, the caller's `kind`, `body` and `payload`.

Where a card lands, for each `Notice`:
1. in `notice.conversation_id` (the conversation the card is about, e.g. a payout's),
   while that conversation is open;
2. else in the buyer's open conversation, numbered like any message (`append_message`:
   next `seq`, `message.new` to both sides after commit);
3. else (the buyer is not chatting, or the conversation closed a moment ago) as the one
   message (seq 1) of a *notice conversation*: a conversation born closed
   (`close_reason="system"`, `last_seq` 1), with the buyer's queue and elder flag as if
   they had opened it. A notice is not a request for help: a routed conversation would
   queue it for an agent, and closing one through the chat core would invite a rating of
   a service nobody gave. Its ids are the notice's `notice_conversation_id` and
   `notice_message_id` (fresh by default; a caller that records them in its own rows
   with one statement chooses them — recall does).

Transaction: everything is written through `uow`, in the caller's transaction, beside
the caller's own rows (the payout, the coupon, the recall send), so a rollback leaves
neither the card nor the record of it. Nothing is committed here.

After commit: the buyer hears `message.new` (cards in a notice conversation on the
buyer's topic; cards in a live conversation on both sides' topics, by
`append_message`). Nothing is published if the transaction rolls back.

Idempotency: `post` writes every card it is given; it does not look for an earlier
copy. Callers make a card happen once by claiming something unique in the same
transaction first (a payout's idempotency key, a late-shipment coupon's row per order,
a recall send's pending row and the buyer's 7-day slot); a retried transaction then
finds the claim and posts nothing. Caller-chosen notice ids must be new.

Speed: the notice conversations of one call are written by two bulk INSERTs (one for
conversations, one for messages) built from one template row of each, and the buyers'
facts and open conversations are read by one query each, whether for one payout card
or a recall batch of a thousand (model instances would cost more than the writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import col

from app.chat import actions as chat_actions
from app.chat.models import Conversation, Message
from app.chat.schemas import message_public
from app.db import UnitOfWork, new_id, table_of
from app.errors import ConversationClosed
from app.realtime.topics import buyer_topic
from app.routing.rules import BuyerFacts, choose_queue
from app.shops.models import Buyer


@dataclass(frozen=True)
class Notice:
    """One system card for one buyer (see the module docstring for where it lands)."""

    buyer_id: str
    kind: str
    body: str
    payload: dict[str, Any]
    conversation_id: str | None = None  # the conversation it is about: used while open
    notice_conversation_id: str = field(default_factory=new_id)
    notice_message_id: str = field(default_factory=new_id)


@dataclass(frozen=True)
class Posted:
    """Where a card landed; `in_notice`: as the one message of a notice conversation."""

    conversation_id: str
    message_id: str
    seq: int
    in_notice: bool


async def post(
    uow: UnitOfWork, shop_id: str, notices: list[Notice], *, now: datetime
) -> list[Posted]:
    """Post each card into its buyer's chat, in the caller's transaction; see the module
    docstring. Returns where each landed, in the order given."""
    if not notices:
        return []
    places = await _open_places(uow, shop_id, notices)
    landed: list[Posted | None] = []
    quiet: list[Notice] = []
    for n, candidates in zip(notices, places, strict=True):
        posted = await _append_to_first_open(uow, n, candidates, now)
        landed.append(posted)
        if posted is None:
            quiet.append(n)
    written = iter(await _write_notice_conversations(uow, shop_id, quiet, now))
    return [p if p is not None else next(written) for p in landed]


async def _open_places(
    uow: UnitOfWork, shop_id: str, notices: list[Notice]
) -> list[list[Conversation]]:
    """For each notice, the open conversations it may go into, in order of preference."""
    s = uow.session
    given: dict[str, Conversation] = {}
    for cid in {n.conversation_id for n in notices if n.conversation_id is not None}:
        conv = await s.get(Conversation, cid)
        if conv is not None and conv.status != "closed":
            given[cid] = conv
    current: dict[str, Conversation] = {}
    for conv in (
        await s.execute(
            select(Conversation).where(
                col(Conversation.shop_id) == shop_id,
                col(Conversation.buyer_id).in_({n.buyer_id for n in notices}),
                col(Conversation.status) != "closed",
            )
        )
    ).scalars():
        current.setdefault(conv.buyer_id, conv)
    places = []
    for n in notices:
        candidates = [given[n.conversation_id]] if n.conversation_id in given else []
        mine = current.get(n.buyer_id)
        if mine is not None and mine not in candidates:
            candidates.append(mine)
        places.append(candidates)
    return places


async def _append_to_first_open(
    uow: UnitOfWork, n: Notice, candidates: list[Conversation], now: datetime
) -> Posted | None:
    for conv in candidates:
        try:
            msg, _ = await chat_actions.append_message(
                uow,
                conv,
                sender="system",
                sender_id=None,
                kind=n.kind,
                body=n.body,
                payload=n.payload,
                now=now,
            )
        except ConversationClosed:
            continue  # closed a moment ago: try the next place
        return Posted(msg.conversation_id, msg.id, msg.seq, in_notice=False)
    return None


async def _write_notice_conversations(
    uow: UnitOfWork, shop_id: str, notices: list[Notice], now: datetime
) -> list[Posted]:
    """Each card as the one message of a conversation born closed, by two bulk INSERTs."""
    if not notices:
        return []
    s = uow.session
    facts_of = {
        b: BuyerFacts(age=age, elder_mode=elder_mode)
        for b, age, elder_mode in await s.execute(
            select(col(Buyer.id), col(Buyer.age), col(Buyer.elder_mode)).where(
                col(Buyer.shop_id) == shop_id, col(Buyer.id).in_({n.buyer_id for n in notices})
            )
        )
    }
    conv_row = Conversation(
        id="",
        shop_id=shop_id,
        buyer_id="",
        status="closed",
        last_seq=1,
        opened_at=now,
        closed_at=now,
        close_reason="system",
    ).model_dump()
    template = Message(
        id="",
        shop_id=shop_id,
        conversation_id="",
        seq=1,
        sender="system",
        sender_id=None,
        kind="",
        body="",
        payload={},
        created_at=now,
    )
    frame, msg_row = message_public(template), template.model_dump()
    convs: list[dict[str, Any]] = []
    msgs: list[dict[str, Any]] = []
    posted: list[Posted] = []
    for n in notices:
        facts = facts_of.get(n.buyer_id, BuyerFacts())
        conv_id, msg_id = n.notice_conversation_id, n.notice_message_id
        card = {"id": msg_id, "conversation_id": conv_id, "kind": n.kind, "body": n.body}
        convs.append(
            {
                **conv_row,
                "id": conv_id,
                "buyer_id": n.buyer_id,
                "queue": choose_queue(facts),
                "elder": facts.is_elder,
            }
        )
        msgs.append({**msg_row, **card, "payload": n.payload})
        posted.append(Posted(conv_id, msg_id, 1, in_notice=True))
        uow.emit(
            buyer_topic(shop_id, n.buyer_id),
            {"type": "message.new", "message": {**frame, **card, "payload": n.payload}},
        )
    await s.execute(insert(table_of(Conversation)), convs)
    await s.execute(insert(table_of(Message)), msgs)
    return posted
