"""Who may read a buyer's history, and how a conversation is summed up in one line."""

from __future__ import annotations

FIRST_LINE_CHARS = 60


def may_read_history(*, supervises: bool, serves_buyer_now: bool) -> bool:
    """A buyer's list of conversations: supervisors and admins for any buyer of the shop;
    an agent only while serving that buyer (an assigned conversation of theirs)."""
    return supervises or serves_buyer_now


def may_read_conversation(*, supervises: bool, serves_buyer_now: bool, served_it: bool) -> bool:
    """One past conversation, read-only: as the history, and also an agent who served it
    (their search hits open where they were, whoever they serve today)."""
    return supervises or serves_buyer_now or served_it


def first_line(body: str, kind: str) -> str:
    """The opening words of a message on one line (a card or image by its kind)."""
    if kind != "text" or not body.strip():
        return f"[{kind}]"
    line = " ".join(body.split())
    return line if len(line) <= FIRST_LINE_CHARS else line[: FIRST_LINE_CHARS - 1] + "…"
