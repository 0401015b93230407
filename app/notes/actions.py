"""Sending an internal note: stored in the conversation's `seq` space, heard by staff only.

The note is a message of kind `note` from the agent (`app.chat.actions.append_message`
announces it to the conversation's agent only, `app.chat.visibility`). Colleagues it
@mentions get `note.mention` on their own topic, wherever they are connected, and each
mention is stored (`NoteMention`, one per note and colleague) until that colleague marks
it read, so one offline then finds it in their workbench next time (`service.mentions`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlmodel import col

from app.chat import actions as chat_actions
from app.chat.actions import Outgoing, Sent
from app.chat.models import Conversation, Message
from app.chat.schemas import message_public
from app.db import UnitOfWork, rowcount
from app.errors import NotFound
from app.notes.models import NoteMention
from app.notes.rules import Colleague, mentioned
from app.notes.schemas import mention_wire
from app.realtime.topics import agent_topic
from app.shops.models import Agent, Buyer


async def send_note(
    uow: UnitOfWork, agent: Agent, conversation_id: str, out: Outgoing, now: datetime
) -> Sent:
    """A note into an open conversation the agent serves (or any of the shop's, for a
    supervisor or admin). A resend with the same `client_msg_id` returns the original."""
    replay = await chat_actions._replay(uow, agent.shop_id, "agent", agent.id, out.client_msg_id)
    if replay is not None:
        return replay
    conv = await chat_actions.conversation_for_agent(uow, agent, conversation_id)
    colleagues = await _colleagues(uow, agent.shop_id) if "@" in out.body else []
    mentions = mentioned(out.body, colleagues, agent.id)
    msg, duplicate = await chat_actions.append_message(
        uow,
        conv,
        sender="agent",
        sender_id=agent.id,
        kind="note",
        body=out.body,
        payload={"mentions": mentions} if mentions else {},
        now=now,
        client_msg_id=out.client_msg_id,
    )
    if mentions and not duplicate:
        stored = _store_mentions(uow, msg, agent, mentions, now)
        _announce_mentions(uow, conv, msg, agent, stored, await _buyer_name(uow, conv))
    return Sent(msg, conv, duplicate)


def _store_mentions(
    uow: UnitOfWork, msg: Message, author: Agent, mentions: list[str], now: datetime
) -> dict[str, str]:
    """One stored mention per colleague named (a new note: no row can exist yet, and the
    (note, colleague) key keeps it so); their ids by colleague."""
    rows = [
        NoteMention(
            shop_id=author.shop_id,
            agent_id=agent_id,
            message_id=msg.id,
            conversation_id=msg.conversation_id,
            author_id=author.id,
            created_at=now,
        )
        for agent_id in mentions
    ]
    uow.session.add_all(rows)
    return {row.agent_id: row.id for row in rows}


async def mark_read(uow: UnitOfWork, agent: Agent, mention_id: str, now: datetime) -> None:
    """The colleague has seen the mention (again: nothing changes); NotFound for anyone
    else's, as for another shop's."""
    mine = (
        col(NoteMention.id) == mention_id,
        col(NoteMention.agent_id) == agent.id,
        col(NoteMention.shop_id) == agent.shop_id,
    )
    done = await uow.session.execute(
        update(NoteMention).where(*mine, col(NoteMention.read_at).is_(None)).values(read_at=now)
    )
    if rowcount(done):
        return
    found = await uow.session.execute(select(col(NoteMention.id)).where(*mine))
    if found.first() is None:
        raise NotFound("No such mention.")


def _announce_mentions(
    uow: UnitOfWork,
    conv: Conversation,
    msg: Message,
    author: Agent,
    mentions: dict[str, str],
    buyer_name: str,
) -> None:
    for agent_id, mention_id in mentions.items():
        frame = mention_wire(
            mention_id=mention_id,
            conversation_id=conv.id,
            buyer_id=conv.buyer_id,
            buyer_name=buyer_name,
            author=author,
            message=message_public(msg),
        )
        uow.emit(agent_topic(agent_id), {"type": "note.mention", **frame})


async def _colleagues(uow: UnitOfWork, shop_id: str) -> list[Colleague]:
    rows = await uow.session.execute(
        select(col(Agent.id), col(Agent.username), col(Agent.display_name))
        .where(col(Agent.shop_id) == shop_id, col(Agent.active))
        .order_by(col(Agent.created_at), col(Agent.username))
    )
    return [Colleague(i, u, d) for i, u, d in rows]


async def _buyer_name(uow: UnitOfWork, conv: Conversation) -> str:
    row = await uow.session.execute(
        select(col(Buyer.name)).where(
            col(Buyer.shop_id) == conv.shop_id, col(Buyer.id) == conv.buyer_id
        )
    )
    return str(row.scalar() or "")
