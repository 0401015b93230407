"""Tag changes, each inside the caller's UnitOfWork: the shop's list, a conversation's tags."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlmodel import col

from app.chat.actions import conversation_for_agent
from app.db import UnitOfWork, insert_ignore, rowcount
from app.errors import BadInput, Conflict, NotFound
from app.realtime.topics import agent_topic, shop_staff_topic
from app.shops.models import Agent
from app.tags import rules, service
from app.tags.models import ConversationTag, Tag, TagSettings


async def create_tag(uow: UnitOfWork, shop_id: str, raw_name: str, now: datetime) -> Tag:
    name = rules.tag_name(raw_name)
    if len(await service.shop_tags(uow.session, shop_id)) >= rules.MAX_PER_SHOP:
        raise Conflict(
            f"A shop may define at most {rules.MAX_PER_SHOP} tags.", code="too_many_tags"
        )
    tag = Tag(shop_id=shop_id, name=name, created_at=now)
    async with uow.race_guard():
        result = await uow.session.execute(
            insert_ignore(uow.dialect, Tag, ["shop_id", "name"], tag.model_dump())
        )
    if rowcount(result) != 1:
        raise Conflict(f"The shop already has the tag {name!r}.", code="tag_exists")
    return tag


async def _shop_tag(uow: UnitOfWork, shop_id: str, tag_id: str) -> Tag:
    tag = await uow.session.get(Tag, tag_id)
    if tag is None or tag.shop_id != shop_id:
        raise NotFound("No such tag.")
    return tag


async def rename_tag(uow: UnitOfWork, shop_id: str, tag_id: str, raw_name: str) -> Tag:
    """Rename in place: conversations already tagged show the new name."""
    tag = await _shop_tag(uow, shop_id, tag_id)
    name = rules.tag_name(raw_name)
    if name == tag.name:
        return tag
    taken = (
        await uow.session.execute(
            select(col(Tag.id)).where(col(Tag.shop_id) == shop_id, col(Tag.name) == name)
        )
    ).first()
    if taken is not None:
        raise Conflict(f"The shop already has the tag {name!r}.", code="tag_exists")
    await uow.session.execute(
        update(Tag)
        .where(col(Tag.id) == tag.id)
        .values(name=name)
        .execution_options(synchronize_session=False)
    )
    tag.name = name
    return tag


async def delete_tag(uow: UnitOfWork, shop_id: str, tag_id: str) -> None:
    """Remove the tag from the list and from every conversation carrying it."""
    tag = await _shop_tag(uow, shop_id, tag_id)
    await uow.session.execute(delete(ConversationTag).where(col(ConversationTag.tag_id) == tag.id))
    await uow.session.execute(delete(Tag).where(col(Tag.id) == tag.id))


async def set_conversation_tags(
    uow: UnitOfWork, agent: Agent, conversation_id: str, raw_names: list[str], now: datetime
) -> list[str]:
    """Make the conversation's tags exactly `raw_names` (names from the shop's list).

    The conversation's agent, or a supervisor or admin; closed conversations too (tagging
    after the chat is common). Tells the agent's and the staff's screens; never the buyer.
    """
    conv = await conversation_for_agent(uow, agent, conversation_id)
    names = rules.tag_list(raw_names)
    rows = await uow.session.execute(
        select(col(Tag.id), col(Tag.name)).where(
            col(Tag.shop_id) == conv.shop_id, col(Tag.name).in_(names)
        )
    )
    by_name = {name: tag_id for tag_id, name in rows}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise BadInput(
            f"Expected tags from the shop's list, but got {', '.join(unknown)}.",
            code="unknown_tag",
        )
    wanted = set(by_name.values())
    await uow.session.execute(
        delete(ConversationTag).where(
            col(ConversationTag.conversation_id) == conv.id,
            col(ConversationTag.tag_id).not_in(wanted),
        )
    )
    for tag_id in wanted:
        await uow.session.execute(
            insert_ignore(
                uow.dialect,
                ConversationTag,
                ["conversation_id", "tag_id"],
                {
                    "shop_id": conv.shop_id,
                    "conversation_id": conv.id,
                    "tag_id": tag_id,
                    "tagged_by": agent.id,
                    "created_at": now,
                },
            )
        )
    tags = sorted(names)
    frame = {"type": "conversation.tags", "conversation_id": conv.id, "tags": tags}
    topics = [shop_staff_topic(conv.shop_id)]
    if conv.agent_id:
        topics.append(agent_topic(conv.agent_id))
    uow.emit_many(topics, frame)
    return tags


async def set_required_to_close(uow: UnitOfWork, shop_id: str, required: bool) -> bool:
    result = await uow.session.execute(
        update(TagSettings)
        .where(col(TagSettings.shop_id) == shop_id)
        .values(required_to_close=required)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) == 0:
        await uow.session.execute(
            insert_ignore(
                uow.dialect,
                TagSettings,
                ["shop_id"],
                {"shop_id": shop_id, "required_to_close": required},
            )
        )
        await uow.session.execute(
            update(TagSettings)
            .where(col(TagSettings.shop_id) == shop_id)
            .values(required_to_close=required)
            .execution_options(synchronize_session=False)
        )
    return required
