"""Who a note mentions: `@username` or `@display name` of a colleague of the shop."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

MAX_MENTIONS = 20


@dataclass(frozen=True)
class Colleague:
    id: str
    username: str
    display_name: str


def _named_at(text: str, name: str) -> bool:
    """`@name` stands in `text` as a whole name: not the start of a longer ASCII word
    (`@bob` is not `@bobby`); a CJK name needs no space after it (`@小王你看下`)."""
    if not name:
        return False
    needle = "@" + name.casefold()
    hay = text.casefold()
    start = hay.find(needle)
    while start != -1:
        end = start + len(needle)
        after = hay[end : end + 1]
        if not after or not (after.isascii() and (after.isalnum() or after in "_-.")):
            return True
        start = hay.find(needle, start + 1)
    return False


def mentioned(text: str, colleagues: Iterable[Colleague], author_id: str) -> list[str]:
    """The ids of the colleagues `text` mentions, in the order given, never the author,
    at most MAX_MENTIONS."""
    if "@" not in text:
        return []
    found = []
    for c in colleagues:
        if c.id == author_id:
            continue
        if _named_at(text, c.username) or _named_at(text, c.display_name):
            found.append(c.id)
            if len(found) == MAX_MENTIONS:
                break
    return found
