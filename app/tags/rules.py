"""Tag rules over plain values: what a tag name may be, a conversation's tag list, closing."""

from __future__ import annotations

import unicodedata

from app.errors import BadInput

MAX_NAME = 32  # characters
MAX_PER_CONVERSATION = 10
MAX_PER_SHOP = 200


def tag_name(raw: str) -> str:
    """The stored form of a tag name: trimmed, inner spaces collapsed, no control
    characters, 1..MAX_NAME characters (NFC, so 退款 typed two ways is one tag)."""
    name = " ".join(unicodedata.normalize("NFC", raw).split())
    if not name:
        raise BadInput("Expected a tag name, but got an empty one.", code="bad_request")
    if len(name) > MAX_NAME:
        raise BadInput(
            f"Expected a tag name of at most {MAX_NAME} characters, but got {len(name)}.",
            code="bad_request",
        )
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise BadInput("A tag name may not contain control characters.", code="bad_request")
    return name


def tag_list(raw: list[str]) -> list[str]:
    """A conversation's tags as asked: each name normalised, duplicates dropped, order kept."""
    names: list[str] = []
    for item in raw:
        name = tag_name(item)
        if name not in names:
            names.append(name)
    if len(names) > MAX_PER_CONVERSATION:
        raise BadInput(
            f"Expected at most {MAX_PER_CONVERSATION} tags on a conversation, but got {len(names)}.",
            code="bad_request",
        )
    return names


def may_close(required_to_close: bool, tag_count: int) -> bool:
    """Whether an agent may close a conversation carrying `tag_count` tags."""
    return not required_to_close or tag_count > 0
