"""Typed HTTP shapes of tags (docs/protocol-notes.md, "Tags, history and search")."""

from __future__ import annotations

from pydantic import BaseModel, Field

from app.tags.models import Tag


class TagIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)


class TagPublic(BaseModel):
    id: str
    name: str
    conversations: int  # how many conversations carry it


class ConversationTagsIn(BaseModel):
    tags: list[str] = Field(max_length=50)


class TagSettingsIn(BaseModel):
    required_to_close: bool


class TagSettingsPublic(BaseModel):
    required_to_close: bool


def tag_public(tag: Tag, usage: dict[str, int]) -> TagPublic:
    return TagPublic(id=tag.id, name=tag.name, conversations=usage.get(tag.id, 0))
