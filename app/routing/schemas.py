"""Wire shapes of routing: a skill queue with its live numbers."""

from __future__ import annotations

from pydantic import BaseModel


class QueuePublic(BaseModel):
    name: str
    overflow_after_s: int
    waiting: int
    agents_online: int
    longest_wait_s: int
