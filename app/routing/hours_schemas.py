"""Wire shapes of service hours (docs/protocol-notes.md "Service hours and 留言")."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class DatedHours(BaseModel):
    date: str = Field(description="ISO date in the shop's time zone.")
    hours: list[list[str]] = Field(description='[["09:00", "21:00"]]; [] closes the day.')


class ServiceHoursIn(BaseModel):
    # Loose bounds keep bodies small; hours_rules judges the values (422 `bad_hours`).
    weekly: dict[str, Any] = Field(default_factory=dict)
    exceptions: list[Any] = Field(default_factory=list, max_length=1000)
    auto_reply: str | None = Field(default=None, max_length=2000)


class ServiceHoursPublic(BaseModel):
    weekly: dict[str, list[list[str]]]
    exceptions: list[DatedHours]
    auto_reply: str
    time_zone: str
    open_now: bool
    opens_at: str | None = Field(description="Now if open, else the next opening (shop time).")
