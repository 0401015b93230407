"""Chat state changes: append messages with gap-free sequence numbers, read marks, close.

Preconditions are checked here, not in the socket layer: who may write to which
conversation, whether it is open, and what a message may contain.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from app.chat.models import Conversation, Message
from app.chat.schemas import message_public
from app.chat.service import agent_may_see, buyer_may_see
from app.chat.uploads import image_payload
from app.db import UnitOfWork
from app.errors import ConversationClosed, Forbidden, NotFound
from app.realtime.topics import agent_topic, buyer_topic
from app.routing import actions as routing
from app.routing.rules import BuyerFacts
from app.shops.models import Agent


@dataclass(frozen=True)
class BuyerIdentity:
    shop_id: str
    shop_slug: str
    buyer_id: str
    name: str = ""
    age: int | None = None
    vip: int | None = None
    elder_mode: bool = False

    @property
    def facts(self) -> BuyerFacts:
        return BuyerFacts(age=self.age, elder_mode=self.elder_mode)


@dataclass(frozen=True)
class Outgoing:
    """A message a client wants to send, already checked for shape and size."""

    client_msg_id: str
    body: str
    kind: str = "text"
    payload: dict[str, Any] | None = None


@dataclass
class Sent:
    message: Message
    conversation: Conversation
    duplicate: bool


def conversation_topics(conv: Conversation) -> list[str]:
    topics = [buyer_topic(conv.shop_id, conv.buyer_id)]
    if conv.agent_id:
        topics.append(agent_topic(conv.agent_id))
    return topics


async def find_sent(
    uow: UnitOfWork, shop_id: str, sender: str, sender_id: str, client_msg_id: str
) -> Message | None:
    row = await uow.session.execute(
        select(Message).where(
            Message.shop_id == shop_id,
            Message.sender == sender,
            Message.sender_id == sender_id,
            Message.client_msg_id == client_msg_id,
        )
    )
    return row.scalars().first()


async def append_message(
    uow: UnitOfWork,
    conv: Conversation,
    *,
    sender: str,
    sender_id: str | None,
    kind: str,
    body: str,
    payload: dict[str, Any] | None,
    now: datetime,
    client_msg_id: str | None = None,
) -> tuple[Message, bool]:
    """Store a message as the conversation's next `seq` and tell both sides after commit.

    The conditional `UPDATE ... RETURNING last_seq` row-locks the conversation, so
    concurrent senders get consecutive numbers; the savepoint undoes the increment if
    the insert loses an idempotency race, so no number is ever skipped.
    Returns (message, duplicate).
    """
    s = uow.session
    values: dict[str, Any] = {"last_seq": Conversation.last_seq + 1}
    if sender == "buyer":
        values["last_buyer_message_at"] = now
    try:
        async with s.begin_nested():
            seq = (
                await s.execute(
                    update(Conversation)
                    .where(Conversation.id == conv.id, Conversation.status != "closed")
                    .values(**values)
                    .returning(Conversation.last_seq)
                    .execution_options(synchronize_session=False)
                )
            ).scalar()
            if seq is None:
                raise ConversationClosed("This conversation is closed.")
            msg = Message(
                shop_id=conv.shop_id,
                conversation_id=conv.id,
                seq=seq,
                sender=sender,
                sender_id=sender_id,
                kind=kind,
                body=body,
                payload=payload or {},
                client_msg_id=client_msg_id,
                created_at=now,
            )
            s.add(msg)
            await s.flush()
    except IntegrityError:
        if client_msg_id is None or sender_id is None:
            raise
        existing = await find_sent(uow, conv.shop_id, sender, sender_id, client_msg_id)
        if existing is None:
            raise
        return existing, True
    conv.last_seq = seq
    uow.emit_many(conversation_topics(conv), {"type": "message.new", "message": message_public(msg)})
    return msg, False


async def _checked_payload(uow: UnitOfWork, shop_id: str, out: Outgoing) -> dict[str, Any] | None:
    """Cards are kept as sent; an image must name an upload of this shop."""
    if out.kind == "image":
        return await image_payload(uow, shop_id, str((out.payload or {}).get("upload_id")))
    return out.payload


async def send_from_buyer(
    uow: UnitOfWork, buyer: BuyerIdentity, out: Outgoing, now: datetime
) -> Sent:
    """The buyer's message, into their open conversation or a newly opened one."""
    dup = await find_sent(uow, buyer.shop_id, "buyer", buyer.buyer_id, out.client_msg_id)
    if dup is not None:
        conv = await uow.session.get(Conversation, dup.conversation_id)
        assert conv is not None
        return Sent(dup, conv, True)
    payload = await _checked_payload(uow, buyer.shop_id, out)
    category = (out.payload or {}).get("category") if out.kind == "product_card" else None
    for _attempt in range(2):
        opened = await routing.open_conversation(
            uow,
            shop_id=buyer.shop_id,
            buyer_id=buyer.buyer_id,
            buyer=buyer.facts,
            now=now,
            category=category if isinstance(category, str) else None,
        )
        try:
            msg, duplicate = await append_message(
                uow,
                opened.conversation,
                sender="buyer",
                sender_id=buyer.buyer_id,
                kind=out.kind,
                body=out.body,
                payload=payload,
                now=now,
                client_msg_id=out.client_msg_id,
            )
        except ConversationClosed:
            # Closed by the agent a moment ago: the buyer's new words open a new one.
            continue
        if opened.created:
            await routing.announce_position(uow, opened.conversation)
            uow.signal("dispatch", (buyer.shop_id, opened.conversation.queue))
        return Sent(msg, opened.conversation, duplicate)
    raise ConversationClosed("This conversation is closed.")


async def send_from_agent(
    uow: UnitOfWork, agent: Agent, conversation_id: str, out: Outgoing, now: datetime
) -> Sent:
    dup = await find_sent(uow, agent.shop_id, "agent", agent.id, out.client_msg_id)
    if dup is not None:
        conv = await uow.session.get(Conversation, dup.conversation_id)
        assert conv is not None
        return Sent(dup, conv, True)
    conv = await conversation_for_agent(uow, agent, conversation_id)
    if conv.agent_id != agent.id:
        raise Forbidden("Only the agent serving this conversation can reply in it.")
    payload = await _checked_payload(uow, agent.shop_id, out)
    msg, duplicate = await append_message(
        uow,
        conv,
        sender="agent",
        sender_id=agent.id,
        kind=out.kind,
        body=out.body,
        payload=payload,
        now=now,
        client_msg_id=out.client_msg_id,
    )
    return Sent(msg, conv, duplicate)


async def conversation_for_agent(uow: UnitOfWork, agent: Agent, conversation_id: str) -> Conversation:
    conv = await uow.session.get(Conversation, conversation_id)
    if conv is None or conv.shop_id != agent.shop_id:
        raise NotFound("No such conversation.")
    if not agent_may_see(agent, conv):
        raise Forbidden("This conversation is not yours.")
    return conv


async def conversation_for_buyer(uow: UnitOfWork, buyer: BuyerIdentity, conversation_id: str) -> Conversation:
    conv = await uow.session.get(Conversation, conversation_id)
    if conv is None or not buyer_may_see(buyer.shop_id, buyer.buyer_id, conv):
        raise NotFound("No such conversation.")
    return conv


async def mark_read(uow: UnitOfWork, conv: Conversation, side: str, seq: int) -> int:
    """Move the side's read mark forward (never back) and tell the other side."""
    seq = max(0, min(seq, conv.last_seq))
    column = Conversation.buyer_read_seq if side == "buyer" else Conversation.agent_read_seq
    await uow.session.execute(
        update(Conversation)
        .where(Conversation.id == conv.id, column < seq)
        .values({column.key: seq})
        .execution_options(synchronize_session=False)
    )
    uow.emit_many(
        conversation_topics(conv),
        {"type": "read", "conversation_id": conv.id, "seq": seq, "by": side},
    )
    return seq


async def close_conversation(
    uow: UnitOfWork, conv: Conversation, *, reason: str, now: datetime
) -> bool:
    """Close once; frees the agent's slot. Returns False if it was already closed."""
    # Lock and re-read: the status decides whose slot to free.
    await uow.session.refresh(conv, with_for_update=True)
    result = await uow.session.execute(
        update(Conversation)
        .where(Conversation.id == conv.id, Conversation.status != "closed")
        .values(status="closed", closed_at=now, close_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    topics = conversation_topics(conv)
    if conv.agent_id and conv.status == "assigned":
        await routing.release_slot(uow, conv.agent_id)
        for queue in await routing.queues_of_agent(uow, conv.agent_id):
            uow.signal("dispatch", (conv.shop_id, queue))
    elif conv.status == "queued":
        uow.signal("positions", (conv.shop_id, conv.queue))
    conv.status = "closed"
    uow.emit_many(topics, {"type": "conversation.closed", "conversation_id": conv.id, "reason": reason})
    return True


async def agent_close(uow: UnitOfWork, agent: Agent, conversation_id: str, now: datetime) -> bool:
    conv = await conversation_for_agent(uow, agent, conversation_id)
    return await close_conversation(uow, conv, reason="agent", now=now)


async def set_status(uow: UnitOfWork, agent: Agent, status: str) -> str:
    result = await routing.set_agent_status(uow, agent, status)
    if status == "online":
        for queue in await routing.queues_of_agent(uow, agent.id):
            uow.signal("dispatch", (agent.shop_id, queue))
    return result
