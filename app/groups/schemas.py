"""Wire shapes of fan groups (PROTOCOL.md "Groups"); service.py and actions.py build the dicts."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.chat.schemas import MessagePublic


class GroupPublic(BaseModel):
    id: str
    name: str
    max_members: int
    member_count: int
    last_seq: int
    muted_until: str | None
    created_at: str | None
    # Only in a buyer's view: their own membership.
    member_status: str | None = Field(default=None, description="Buyers only: their membership.")
    my_muted_until: str | None = Field(default=None, description="Buyers only: their own mute.")


class GroupMessagePublic(MessagePublic):
    """MSG with `group_id`; `conversation_id` is always null."""

    conversation_id: None
    group_id: str


class SensitiveWordsPublic(BaseModel):
    words: list[str]


class CheckinOut(BaseModel):
    group_id: str
    day: str = Field(description="The shop's calendar day, ISO 8601.")
    streak: int
    checked_in_today: bool


class MuteOut(BaseModel):
    group_id: str
    buyer_id: str | None = Field(description="Null: the whole group.")
    until: str | None = Field(description="Null: the mute is lifted.")


class GiveawayPublic(BaseModel):
    id: str
    group_id: str
    title: str
    quantity: int
    claimed: int
    remaining: int
    coupon: dict[str, Any]
    created_at: str | None


class GiveawayClaimOut(BaseModel):
    giveaway_id: str
    coupon: dict[str, Any]
    claimed_at: str
    remaining: int
