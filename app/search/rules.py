"""Search rules over plain values: the query, how it is served, the cursor, the highlight.

A query of `INDEXED_MIN` characters or more is served by the text index (pg_trgm on
PostgreSQL, FTS5 trigram on SQLite): both index 3-character grams, so a shorter query
has nothing to look up. Such a query is served by a bounded scan instead: newest first
through the messages the other filters allow, at most `SCAN_BUDGET` of them per page; a
page that ends on the budget rather than on a full page of hits says so (`partial`) and
gives a cursor to scan on from there.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from datetime import datetime

from app.errors import BadInput

INDEXED_MIN = 3
MAX_QUERY = 100
PAGE = 20
SCAN_BUDGET = 20_000
EXCERPT_BEFORE = 30
EXCERPT_CHARS = 160


def query_text(raw: str) -> str:
    q = " ".join(raw.split())
    if not q:
        raise BadInput("Expected a search text (q), but got an empty one.", code="bad_request")
    if len(q) > MAX_QUERY:
        raise BadInput(
            f"Expected a search text of at most {MAX_QUERY} characters, but got {len(q)}.",
            code="bad_request",
        )
    return q


def uses_index(q: str) -> bool:
    return len(q) >= INDEXED_MIN


def like_pattern(q: str) -> str:
    """`%q%` for LIKE ... ESCAPE '\\': the user's % and _ match themselves."""
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def fts_phrase(q: str) -> str:
    """An FTS5 phrase matching `q` as a substring (trigram tokenizer): quoted, quotes doubled."""
    return '"' + q.replace('"', '""') + '"'


def encode_cursor(created_at: datetime, message_id: str) -> str:
    raw = f"{created_at.isoformat()}|{message_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, message_id = raw.split("|", 1)
        when = datetime.fromisoformat(at)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadInput("Expected a cursor from an earlier answer.", code="bad_request") from None
    if when.tzinfo is None or not message_id or len(message_id) > 32:
        raise BadInput("Expected a cursor from an earlier answer.", code="bad_request")
    return when, message_id


def highlight(body: str, q: str) -> str:
    """HTML of the body around its first hit: every hit in <mark>, everything escaped.

    Case-insensitive as the databases' matching (ASCII letters); long bodies are cut to an
    excerpt that starts a little before the first hit, with … where cut."""
    hits = list(re.finditer(re.escape(q), body, flags=re.IGNORECASE))
    start = 0
    if hits and hits[0].start() > EXCERPT_BEFORE and len(body) > EXCERPT_CHARS:
        start = hits[0].start() - EXCERPT_BEFORE
    end = min(len(body), start + EXCERPT_CHARS)
    out: list[str] = ["…"] if start > 0 else []
    pos = start
    for m in hits:
        if m.start() < pos:
            continue
        if m.start() >= end:
            break
        out.append(html.escape(body[pos : m.start()]))
        out.append(f"<mark>{html.escape(m.group(0))}</mark>")
        pos = m.end()
    if pos < end:
        out.append(html.escape(body[pos:end]))
    if end < len(body):
        out.append("…")
    return "".join(out)
