"""Parsing and checking client frames (PROTOCOL.md), with exact error messages.

Every field a handler reads goes through `get_int`, `get_str` or `get_bool`: the value
is checked for its type and bounded here, at parse time, so nothing out of range (an
integer past what the columns hold, a nested structure where a scalar belongs) reaches
the database or an error message. Values are shown in messages by `shown`, never `repr`.
"""

from __future__ import annotations

from typing import Any

import orjson

from app.chat.actions import Outgoing
from app.errors import BadInput, TooLarge
from app.limits import MAX_NUMBER, MAX_SEQ

MAX_ID = 128


def parse_frame(text: str | bytes) -> dict[str, Any]:
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"Expected a JSON object, but the frame is not valid JSON ({exc}).") from exc
    if not isinstance(frame, dict):
        raise BadInput(f"Expected a JSON object, but got {type(frame).__name__}.")
    if not isinstance(frame.get("type"), str):
        raise BadInput('Expected a string "type" field.')
    return frame


def get_str(
    frame: dict[str, Any], key: str, *, max_len: int = MAX_ID, required: bool = True
) -> str:
    value = frame.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value:
        raise BadInput(f'Expected a non-empty string "{key}", but got {_kind(value)}.')
    if len(value) > max_len:
        raise BadInput(f'"{key}" is longer than {max_len} characters.')
    return value


def get_int(frame: dict[str, Any], key: str, *, minimum: int = 0, maximum: int = MAX_SEQ) -> int:
    """An integer in [minimum, maximum]; by default a sequence number (what a column holds)."""
    value = frame.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadInput(f'Expected an integer "{key}", but got {_kind(value)}.')
    if not minimum <= value <= maximum:
        raise BadInput(f'"{key}" must be {minimum} to {maximum}, but got {shown(value)}.')
    return value


def get_text(frame: dict[str, Any], key: str, *, max_len: int) -> str:
    """Optional free text ("" when absent or null), at most `max_len` characters."""
    value = frame.get(key)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > max_len:
        raise BadInput(
            f'"{key}" must be text of at most {max_len} characters, but got {_kind(value)}.'
        )
    return value


def get_choice(frame: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = frame.get(key)
    if not isinstance(value, str) or value not in choices:
        raise BadInput(f'Expected "{key}" one of {", ".join(choices)}, but got {_kind(value)}.')
    return value


def get_bool(frame: dict[str, Any], key: str) -> bool:
    value = frame.get(key)
    if not isinstance(value, bool):
        raise BadInput(f'Expected true or false for "{key}", but got {_kind(value)}.')
    return value


def parse_outgoing(frame: dict[str, Any], *, max_chars: int, staff: bool = False) -> Outgoing:
    """A `message.send` frame's message, checked for shape and size. Staff (agent
    sockets) may also send an internal note (`"kind": "note"`, text only)."""
    client_msg_id = get_str(frame, "client_msg_id")
    body = frame.get("body", "")
    if not isinstance(body, str):
        raise BadInput(f'Expected a string "body", but got {_kind(body)}.')
    if len(body) > max_chars:
        raise TooLarge(f"The message is {len(body)} characters; the limit is {max_chars}.")
    if "\x00" in body:
        # PostgreSQL text cannot hold NUL; refuse it the same way on every backend.
        raise BadInput("The message contains a NUL character, which cannot be stored.")
    kind = frame.get("kind", "text")
    payload = frame.get("payload") or {}
    if not isinstance(payload, dict):
        raise BadInput(f'Expected an object "payload", but got {_kind(payload)}.')
    if kind == "text" or (staff and kind == "note"):
        if not body.strip():
            raise BadInput("A text message needs a non-empty body.")
        payload = {}
    elif kind == "product_card":
        payload = {
            "product_id": get_str(payload, "product_id"),
            "title": get_str(payload, "title", max_len=500),
            "category": get_str(payload, "category", required=False) or None,
            "price_cents": get_int(payload, "price_cents", maximum=MAX_NUMBER),
        }
    elif kind == "order_card":
        payload = {"order_id": get_str(payload, "order_id")}
    elif kind == "image":
        payload = {"upload_id": get_str(payload, "upload_id")}
    else:
        raise BadInput(
            f'Expected "kind" one of text, image, product_card, order_card, but got {_kind(kind)}.'
        )
    return Outgoing(client_msg_id=client_msg_id, body=body, kind=kind, payload=payload)


def shown(value: Any) -> str:
    """A client's value, short and safe to put in a message (never `repr` of a structure:
    a 1,000-deep list would exhaust the recursion limit, a long string flood the frame)."""
    if isinstance(value, str):
        return repr(value[:40]) + ("…" if len(value) > 40 else "")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # JSON integers parse to at most 64 bits
    return _kind(value)


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return shown(value)
    return type(value).__name__
