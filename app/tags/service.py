"""Reads of tags: a shop's list, the tags of conversations, the shop's close rule."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.errors import BadInput, DomainError
from app.tags import rules
from app.tags.models import ConversationTag, Tag, TagSettings


class TagRequired(DomainError):
    """Closing refused: the shop asks for a tag on every conversation closed by an agent."""

    code = "tag_required"
    status = 409


async def shop_tags(session: AsyncSession, shop_id: str) -> list[Tag]:
    rows = await session.execute(
        select(Tag).where(col(Tag.shop_id) == shop_id).order_by(col(Tag.name))
    )
    return list(rows.scalars())


async def tag_usage(session: AsyncSession, shop_id: str) -> dict[str, int]:
    """How many conversations carry each tag (by tag id)."""
    rows = await session.execute(
        select(col(ConversationTag.tag_id), func.count())
        .where(col(ConversationTag.shop_id) == shop_id)
        .group_by(col(ConversationTag.tag_id))
    )
    return {tag_id: int(n) for tag_id, n in rows}


async def tags_of(session: AsyncSession, conversation_ids: Iterable[str]) -> dict[str, list[str]]:
    """The tag names of each conversation, by name (conversations without tags are absent)."""
    ids = list(set(conversation_ids))
    out: dict[str, list[str]] = {}
    if not ids:
        return out
    rows = await session.execute(
        select(col(ConversationTag.conversation_id), col(Tag.name))
        .join(Tag, col(Tag.id) == col(ConversationTag.tag_id))
        .where(col(ConversationTag.conversation_id).in_(ids))
        .order_by(col(Tag.name))
    )
    for conversation_id, name in rows:
        out.setdefault(conversation_id, []).append(name)
    return out


async def required_to_close(session: AsyncSession, shop_id: str) -> bool:
    value = (
        await session.execute(
            select(col(TagSettings.required_to_close)).where(col(TagSettings.shop_id) == shop_id)
        )
    ).scalar()
    return bool(value)


async def check_may_close(session: AsyncSession, shop_id: str, conversation_id: str) -> None:
    """Raise `TagRequired` if the shop asks for a tag and the conversation has none."""
    if not await required_to_close(session, shop_id):
        return
    count = (
        await session.execute(
            select(func.count())
            .select_from(ConversationTag)
            .where(col(ConversationTag.conversation_id) == conversation_id)
        )
    ).scalar()
    if not rules.may_close(True, int(count or 0)):
        raise TagRequired("Tag this conversation before closing it: the shop requires a tag.")


async def tag_id_named(session: AsyncSession, shop_id: str, name: str) -> str | None:
    """The id of the shop's tag called `name`, or None."""
    found = await session.execute(
        select(col(Tag.id)).where(col(Tag.shop_id) == shop_id, col(Tag.name) == name)
    )
    return found.scalar_one_or_none()


async def known_tag_id(session: AsyncSession, shop_id: str, name: str | None) -> str | None:
    """The id of the shop's tag called `name` (None when no tag is asked for); `422
    unknown_tag` when the shop has no such tag (a filter by it would silently match nothing)."""
    if name is None:
        return None
    tag_id = await tag_id_named(session, shop_id, name)
    if tag_id is None:
        raise BadInput(f"The shop has no tag named {name!r}.", code="unknown_tag")
    return tag_id


def tagged(conversation_id: Any, tag_id: str | None) -> ColumnElement[bool]:
    """SQL: the conversation (`conversation_id`, a column) carries the tag (any conversation
    when no tag is asked for). Filters by tag (exports, metrics) read it."""
    if tag_id is None:
        return true()
    return exists().where(
        col(ConversationTag.conversation_id) == conversation_id,
        col(ConversationTag.tag_id) == tag_id,
    )
