"""Chat state changes: append messages with gap-free sequence numbers, read marks, close.

Appending follows the rules of `app.chat.append_rules` (R1-R10); this is the full path
that the group commit (`app.chat.appender`) hands every unusual case back to.

Preconditions are checked here, not in the socket layer: who may write to which
conversation, whether it is open, and what a message may contain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col

from app.bot import hold as bot_hold
from app.chat import reports
from app.chat.append_rules import may_write, stamps_buyer_time
from app.chat.appender import Opening
from app.chat.models import Conversation, Message, Rating, sent_by
from app.chat.schemas import message_public
from app.chat.service import buyer_may_see, may_now
from app.chat.uploads import image_payload
from app.chat.visibility import message_topics
from app.db import UnitOfWork, append_numbered, rowcount
from app.errors import BadInput, Conflict, ConversationClosed, Forbidden, NotFound
from app.orders import service as order_service
from app.realtime.topics import agent_topic, buyer_topic, conversation_sides
from app.routing import actions as routing
from app.routing.hours_models import LeftMessage
from app.routing.models import Queue
from app.routing.rules import CSAT_SCORES, choose_queue, inactive
from app.shops.identities import BuyerIdentity
from app.shops.models import Agent
from app.shops.policy import Permission
from app.tags import service as tags_service

CLOSE_INACTIVE_BATCH = 200  # conversations closed per transaction by the auto-close job

# The stored body of a notice is for old clients; readers render it from its payload's
# `notice` code and `params` in their own language (docs/protocol-notes.md, "Notices").
CSAT_INVITE = "本次服务已结束,请为我们的服务打分(1-5 星)。"


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
    return conversation_sides(conv.shop_id, conv.buyer_id, conv.agent_id)


async def find_sent(
    uow: UnitOfWork, shop_id: str, sender: str, sender_id: str, client_msg_id: str
) -> Message | None:
    row = await uow.session.execute(
        select(Message).where(
            col(Message.shop_id) == shop_id,
            sent_by(sender),
            col(Message.sender_id) == sender_id,
            col(Message.client_msg_id) == client_msg_id,
        )
    )
    return row.scalars().first()


async def _replay(
    uow: UnitOfWork, shop_id: str, sender: str, sender_id: str, client_msg_id: str
) -> Sent | None:
    """A resend of a message already stored: the original, unchanged (idempotent sends).

    It is announced again: the node that stored it may have died before publishing it,
    and then the other side would see it only at its next sync. Connections drop a
    `seq` they have already written, so a second announcement costs nothing on screen.
    """
    dup = await find_sent(uow, shop_id, sender, sender_id, client_msg_id)
    if dup is None:
        return None
    conv = await uow.session.get(Conversation, dup.conversation_id)
    assert conv is not None  # messages reference their conversation
    uow.emit_many(
        message_topics(conv, dup.kind), {"type": "message.new", "message": message_public(dup)}
    )
    return Sent(dup, conv, True)


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

    Rules R1, R5, R7 and R8 of `append_rules`. The conditional `UPDATE ... RETURNING
    last_seq` row-locks the conversation, so concurrent senders get consecutive numbers;
    the savepoint undoes the increment if the insert loses an idempotency race, so no
    number is ever skipped.
    Returns (message, duplicate).
    """
    values: dict[str, Any] = {"last_seq": col(Conversation.last_seq) + 1}
    if stamps_buyer_time(sender):
        values["last_buyer_message_at"] = now
    # Who hears of it is decided by the row as locked, not as read earlier: an assignment
    # may have committed in between.
    counter = (
        update(Conversation)
        .where(col(Conversation.id) == conv.id, col(Conversation.status) != "closed")
        .values(**values)
        .returning(col(Conversation.last_seq), col(Conversation.agent_id), col(Conversation.status))
    )

    async def original() -> Message | None:
        if client_msg_id is None or sender_id is None:
            return None
        return await find_sent(uow, conv.shop_id, sender, sender_id, client_msg_id)

    stored = await append_numbered(
        uow,
        counter,
        lambda row: Message(
            shop_id=conv.shop_id,
            conversation_id=conv.id,
            seq=row.last_seq,
            sender=sender,
            sender_id=sender_id,
            kind=kind,
            body=body,
            payload=payload or {},
            client_msg_id=client_msg_id,
            created_at=now,
        ),
        find_duplicate=original,
        missing=ConversationClosed("This conversation is closed."),
        # Senders with a client_msg_id looked for it first (`_replay`); others have none.
        prechecked=True,
    )
    if stored.duplicate:
        return stored.item, True
    msg = stored.item
    # Refresh our copy without marking it dirty (the row is already written).
    for key, value in zip(("last_seq", "agent_id", "status"), stored.counter or (), strict=True):
        set_committed_value(conv, key, value)
    uow.emit_many(
        message_topics(conv, kind), {"type": "message.new", "message": message_public(msg)}
    )
    return msg, False


async def _checked_payload(uow: UnitOfWork, shop_id: str, out: Outgoing) -> dict[str, Any] | None:
    """Cards are kept as sent; an image must name an upload of this shop."""
    if out.kind == "image":
        return await image_payload(uow, shop_id, str((out.payload or {}).get("upload_id")))
    return out.payload


async def _category_asked_about(uow: UnitOfWork, shop_id: str, out: Outgoing) -> str | None:
    """The category of the product or order the buyer's message is about, if any."""
    payload = out.payload or {}
    if out.kind == "product_card":
        category = payload.get("category")
        return category if isinstance(category, str) else None
    if out.kind == "order_card":
        order = await order_service.get_order(uow.session, shop_id, str(payload.get("order_id")))
        return order.category if order is not None else None
    return None


def plain_opening(buyer: BuyerIdentity, out: Outgoing) -> Opening | None:
    """How this first message opens a conversation if nothing need be looked up to route it.

    A plain text names no product or order, so the queue follows from the buyer alone
    (the group commit then opens it; anything else takes `send_from_buyer`).
    """
    if out.kind != "text":
        return None
    return Opening(
        queue=choose_queue(buyer.facts), elder=buyer.facts.is_elder, shown_as=buyer.shown_as
    )


async def send_from_buyer(
    uow: UnitOfWork,
    buyer: BuyerIdentity,
    out: Outgoing,
    now: datetime,
    bot_holds: Callable[[str, bool], bool] | None = None,
) -> Sent:
    """The buyer's message, into their open conversation or a newly opened one (R2-R5).

    `bot_holds`: see `routing.open_conversation` (a conversation the bot holds waits in no
    queue, so it is not announced to one).
    """
    replay = await _replay(uow, buyer.shop_id, "buyer", buyer.buyer_id, out.client_msg_id)
    if replay is not None:
        return replay
    payload = await _checked_payload(uow, buyer.shop_id, out)
    category = await _category_asked_about(uow, buyer.shop_id, out)
    for _attempt in range(2):
        opened = await routing.open_conversation(
            uow,
            shop_id=buyer.shop_id,
            buyer_id=buyer.buyer_id,
            buyer=buyer.facts,
            now=now,
            category=category,
            shown_as=buyer.shown_as,
            bot_holds=bot_holds,
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
        if opened.created and opened.conversation.status == "queued":
            await routing.announce_position(uow, opened.conversation)
            uow.signal("dispatch", (buyer.shop_id, opened.conversation.queue))
        return Sent(msg, opened.conversation, duplicate)
    raise ConversationClosed("This conversation is closed.")


async def send_from_agent(
    uow: UnitOfWork, agent: Agent, conversation_id: str, out: Outgoing, now: datetime
) -> Sent:
    replay = await _replay(uow, agent.shop_id, "agent", agent.id, out.client_msg_id)
    if replay is not None:
        return replay
    conv = await conversation_for_agent(uow, agent, conversation_id)
    if not may_write("agent", agent.id, buyer_id=conv.buyer_id, agent_id=conv.agent_id):
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


async def conversation_for_agent(
    uow: UnitOfWork, agent: Agent, conversation_id: str
) -> Conversation:
    """The conversation, if the agent serves it or is (as stored now) a supervisor or admin."""
    conv = await uow.session.get(Conversation, conversation_id)
    if conv is None or conv.shop_id != agent.shop_id:
        raise NotFound("No such conversation.")
    if conv.agent_id != agent.id and not await may_now(
        uow.session, agent.id, Permission.SUPERVISE_CHATS
    ):
        raise Forbidden("This conversation is not yours.")
    return conv


async def conversation_for_buyer(
    uow: UnitOfWork, buyer: BuyerIdentity, conversation_id: str
) -> Conversation:
    return buyers_own(buyer, await uow.session.get(Conversation, conversation_id))


def buyers_own(buyer: BuyerIdentity, conv: Conversation | None) -> Conversation:
    """The conversation read for a buyer's request, if it is theirs (else NotFound)."""
    if conv is None or not buyer_may_see(buyer.shop_id, buyer.buyer_id, conv):
        raise NotFound("No such conversation.")
    return conv


async def mark_read(uow: UnitOfWork, conv: Conversation, side: str, seq: int) -> int:
    """Move the side's read mark forward (never back) and tell the other side."""
    seq = max(0, min(seq, conv.last_seq))
    column = (
        col(Conversation.buyer_read_seq) if side == "buyer" else col(Conversation.agent_read_seq)
    )
    await uow.session.execute(
        update(Conversation)
        .where(col(Conversation.id) == conv.id, column < seq)
        .values({column: seq})
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
    """Close once, inviting the buyer to rate; frees the agent's slot. False if already closed."""
    # Lock and re-read: the status decides whose slot to free.
    await uow.session.refresh(conv, with_for_update=True)
    if conv.status == "closed":
        return False
    await append_message(
        uow,
        conv,
        sender="system",
        sender_id=None,
        kind="system",
        body=CSAT_INVITE,
        payload={
            "csat_invite": True,
            "close_reason": reason,
            "notice": "csat_invite",
            "params": {},
        },
        now=now,
    )
    result = await uow.session.execute(
        update(Conversation)
        .where(col(Conversation.id) == conv.id, col(Conversation.status) != "closed")
        .values(status="closed", closed_at=now, close_reason=reason)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        return False
    topics = conversation_topics(conv)
    if conv.agent_id and conv.status == "assigned":
        await routing.release_slot(uow, conv.agent_id)
        for queue in await routing.queues_of_agent(uow, conv.agent_id):
            uow.signal("dispatch", (conv.shop_id, queue))
    elif conv.status == "queued":
        uow.signal("positions", (conv.shop_id, conv.queue))
    conv.status = "closed"
    uow.emit_many(
        topics,
        {
            "type": "conversation.closed",
            "conversation_id": conv.id,
            "reason": reason,
            "csat_invited": True,
        },
    )
    await reports.conversation_closed(uow, conv, reason=reason, closed_at=now, rating=None, now=now)
    return True


async def agent_close(uow: UnitOfWork, agent: Agent, conversation_id: str, now: datetime) -> bool:
    conv = await conversation_for_agent(uow, agent, conversation_id)
    if conv.status != "closed":
        await tags_service.check_may_close(uow.session, conv.shop_id, conv.id)
    return await close_conversation(uow, conv, reason="agent", now=now)


async def set_status(uow: UnitOfWork, agent: Agent, status: str, now: datetime) -> str:
    """Online takes new conversations; busy keeps its own; offline hands them back to the queues."""
    if status == "offline":
        await routing.requeue_agent(uow, agent.id, now)
        agent.status = "offline"
        return status
    result = await routing.set_agent_status(uow, agent, status)
    if status == "online":
        for queue in await routing.queues_of_agent(uow, agent.id):
            uow.signal("dispatch", (agent.shop_id, queue))
    return result


async def transfer_conversation(
    uow: UnitOfWork,
    agent: Agent,
    conversation_id: str,
    *,
    to_agent_id: str | None,
    to_queue: str | None,
    note: str,
    now: datetime,
) -> Conversation:
    """Hand a conversation to a colleague (who must be online with room) or to a queue.

    The note is posted in the conversation as a system message, so the buyer and both
    agents see it.
    """
    if (to_agent_id is None) == (to_queue is None):
        raise BadInput('Give exactly one of "to_agent_id" or "to_queue".')
    conv = await conversation_for_agent(uow, agent, conversation_id)
    await uow.session.refresh(conv, with_for_update=True)
    if conv.status == "closed":
        raise ConversationClosed("This conversation is closed.")
    if conv.agent_id != agent.id and not await may_now(
        uow.session, agent.id, Permission.SUPERVISE_CHATS
    ):
        raise Forbidden("Only the agent serving this conversation can transfer it.")
    from_agent_id = conv.agent_id
    target_name = None
    if to_agent_id is not None:
        target = await uow.session.get(Agent, to_agent_id)
        if target is None or target.shop_id != agent.shop_id:
            raise NotFound("No such agent.")
        if to_agent_id == from_agent_id:
            raise BadInput("The conversation is already with that agent.")
        if not await routing.take_slot_of(uow, to_agent_id, now):
            raise Conflict(
                f"{target.display_name} is not online or has no free slot.",
                code="agent_unavailable",
            )
        target_name = target.display_name
        values: dict[str, Any] = {"status": "assigned", "agent_id": to_agent_id, "assigned_at": now}
    else:
        known = await uow.session.execute(
            select(col(Queue.name)).where(
                col(Queue.shop_id) == conv.shop_id, col(Queue.name) == to_queue
            )
        )
        if known.scalar() is None:
            raise NotFound(f"No queue named {to_queue!r}.")
        values = {"status": "queued", "agent_id": None, "queue": to_queue, "queued_at": now}
    # Staff moving it ends the bot's hold (if it had one): people answer from now on.
    values["handled_by"] = "human"
    from_bot = conv.status == "bot"
    if from_agent_id and conv.status == "assigned":
        await routing.release_slot(uow, from_agent_id)
        for queue in await routing.queues_of_agent(uow, from_agent_id):
            uow.signal("dispatch", (conv.shop_id, queue))
    await uow.session.execute(
        update(Conversation)
        .where(col(Conversation.id) == conv.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await uow.session.refresh(conv)
    if from_bot:
        await bot_hold.ended_by_staff(
            uow,
            shop_id=conv.shop_id,
            buyer_id=conv.buyer_id,
            conversation_id=conv.id,
            queue=conv.queue,
            now=now,
        )
    frame = {
        "type": "conversation.transferred",
        "conversation_id": conv.id,
        "from_agent_id": from_agent_id,
        "to_agent_id": to_agent_id,
        "to_agent_name": target_name,
        "to_queue": to_queue,
        "note": note,
    }
    topics = conversation_topics(conv)
    if from_agent_id:
        topics.append(agent_topic(from_agent_id))
    uow.emit_many(topics, frame)
    if to_agent_id is not None:
        # First the assignment (the new agent then loads the history), then the note.
        await routing.announce_assignment(uow, conv)
    body = f"会话已转接给 {target_name}" if target_name else f"会话已转入 {to_queue} 队列"
    await append_message(
        uow,
        conv,
        sender="system",
        sender_id=agent.id,
        kind="system",
        body=f"{body}:{note}" if note else body,
        payload={
            "transfer": {k: v for k, v in frame.items() if k not in ("type", "conversation_id")},
            **transfer_notice(target_name, to_queue, note),
        },
        now=now,
    )
    if to_agent_id is None:
        await routing.announce_position(uow, conv)
        uow.signal("dispatch", (conv.shop_id, conv.queue))
    return conv


def transfer_notice(agent_name: str | None, queue: str | None, note: str | None) -> dict[str, Any]:
    """The transfer notice as a code and parameters (the body says the same in Chinese)."""
    if agent_name:
        return {"notice": "transferred_to_agent", "params": {"agent": agent_name, "note": note}}
    return {"notice": "transferred_to_queue", "params": {"queue": queue, "note": note}}


async def rate_conversation(
    uow: UnitOfWork,
    buyer: BuyerIdentity,
    conversation_id: str,
    score: int,
    comment: str,
    now: datetime,
) -> Rating:
    """The buyer's 1-5 rating of a closed conversation; once."""
    if score not in CSAT_SCORES:
        raise BadInput(f'"score" must be 1 to 5, but got {score}.')
    conv = await conversation_for_buyer(uow, buyer, conversation_id)
    if conv.status != "closed":
        raise Conflict("Rate a conversation once it is closed.", code="not_closed")
    rating = Rating(
        conversation_id=conv.id,
        shop_id=conv.shop_id,
        buyer_id=conv.buyer_id,
        agent_id=conv.agent_id,
        score=score,
        comment=comment,
        created_at=now,
    )
    if not await uow.add_if_new(rating):
        raise Conflict("This conversation has already been rated.", code="already_rated")
    await reports.conversation_closed(
        uow, conv, reason=conv.close_reason, closed_at=conv.closed_at, rating=rating, now=now
    )
    frame = {"type": "csat.received", "conversation_id": conv.id, "score": score}
    uow.emit(buyer_topic(conv.shop_id, conv.buyer_id), frame)
    if conv.agent_id:
        uow.emit(agent_topic(conv.agent_id), frame)
    return rating


async def close_inactive(uow: UnitOfWork, now: datetime, after_s: float) -> list[str]:
    """Close conversations whose buyer has been silent for `after_s` (auto-close)."""
    cutoff = now - timedelta(seconds=after_s)
    last_activity = func.coalesce(
        col(Conversation.last_buyer_message_at), col(Conversation.opened_at)
    )
    # A 留言 (the buyer was told nobody could answer) waits for an agent however long.
    left_message = exists().where(col(LeftMessage.conversation_id) == col(Conversation.id))
    rows = await uow.session.execute(
        select(Conversation)
        .where(
            col(Conversation.status) != "closed",
            last_activity <= cutoff,
            or_(col(Conversation.status) != "queued", ~left_message),
        )
        .order_by(last_activity)
        .limit(CLOSE_INACTIVE_BATCH)
    )
    closed = []
    for conv in rows.scalars().all():
        if inactive(
            conv.last_buyer_message_at or conv.opened_at, now, after_s
        ) and await close_conversation(uow, conv, reason="inactive", now=now):
            closed.append(conv.id)
    return closed
