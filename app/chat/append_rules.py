"""The rules for appending a message to a conversation, stated once for its three paths.

A message is stored by one of three paths, and each must follow every rule below:

- **ORM** ("the full path"): `app.chat.actions.send_from_buyer`, `send_from_agent` and
  `append_message` (with `routing.open_conversation`). It knows every case, and is the
  only path for system messages (close, transfer, payouts), images and a first message
  that is not plain text.
- **SQLite SQL**: `app.chat.appender._plan`, a batch on the appender's own thread.
- **PostgreSQL function**: `homing_append_messages` (migration 0008, which replaced the
  looping body of 0007 in place: one function exists), a batch in one statement.

The two fast paths (the group commit, `app.chat.appender`) store only the common case
and hand everything else back (`None`) to the full path, untouched: nothing of a handed-
back message is written. `tests/test_append_paths.py` runs one table of cases through
every path on both databases and compares the rows stored and the events published.

| Rule | What holds | ORM | SQLite SQL | PG function |
|------|------------|-----|------------|-------------|
| R1 numbering | A conversation's messages are numbered 1, 2, 3 … without gaps, in the order the conversation row is locked; `last_seq` is the last number given. | `append_message`: conditional `UPDATE … RETURNING` (locks), insert; a savepoint undoes the increment if the insert loses a race | `_TAKE_SEQ_*`, then the batch's inserts | step 1: lock in id order, `last_seq + row_number()` in batch order |
| R2 idempotency | One stored message per `send_key` (shop, sender, sender id, `client_msg_id`). A resend stores nothing and returns the original, announced again. | `_replay` (and `find_sent` after a lost race) | resend handed back (`NOT EXISTS`, `_SENT`); in one batch only the first copy is tried (`first_sends`) | the same `NOT EXISTS`; the caller passes `first_sends` only |
| R3 opening | A buyer with no open conversation opens one with their message: `new_conversation` (queued, in the queue `routing.rules.choose_queue` picks, elder flag, opened and queued now), the message is seq 1. They hear `conversation.opened`, then the message, then their place (1 + those queued ahead by `queued_at`, then id); routing is signalled (`dispatch`). | `routing.open_conversation`, `announce_position` | `_OPEN`, `_AHEAD` | step 2 and 3 |
| R4 one open per buyer | At most one open conversation per buyer and shop (partial unique index). A second opening finds the first and appends to it. | `open_conversation` finds it (and after a lost race) | `INSERT OR IGNORE` misses: handed back | `ON CONFLICT DO NOTHING`: handed back |
| R5 closed | A closed conversation takes no message: an agent's is refused (`conversation_closed`); a buyer's opens a new conversation (R3). | `append_message` raises `ConversationClosed`; `send_from_buyer` opens anew | `status <> 'closed'`: handed back | the same |
| R6 membership | A buyer writes only into their own conversation, an agent only into the one they serve (`may_write`): others are refused (`forbidden`, or `not_found` outside the shop). | `conversation_for_agent`, `may_write` | the `WHERE` of `_TAKE_SEQ_*`: handed back | the `CASE` in step 1: handed back |
| R7 buyer's last word | A buyer's message sets `last_buyer_message_at` to its time (the auto-close clock); an agent's or the system's leaves it (`stamps_buyer_time`). | `append_message` | `_TAKE_SEQ_BUYER`, `_OPEN` | step 1 (latest in the batch), step 2 |
| R8 who hears it | `message.new` to the buyer and, if one serves it, the agent — as the row was locked, not as read earlier — after commit. An internal note (`kind` `note`, ORM path only) to the agent alone (`app.chat.visibility`). | `append_message` | `_stored` from `RETURNING` | `_stored` from the returned agent and buyer |
| R9 content | Stored as sent, with the time the server took it; a card's payload as given. An image must name an upload of the shop. | `_checked_payload` | images handed back | images handed back |
| R10 nothing else | No unread counters (unread is `last_seq` minus a read mark), no buyer record (written on connect), no other row. | | | |

A first message whose queue depends on what it names (a product or order card, R3)
also takes the full path: the fast paths only open with `actions.plain_opening`.

System messages use the ORM path's `append_message` (R1, R5, R8): a close's rating
invitation, a transfer's note, a card posted into an open conversation
(`chat.notices.post`, case 2). One writer stands outside these rules by design: a
notice to a buyer who is not chatting (`chat.notices.post`, case 3) is the one message
(seq 1, `last_seq` 1) of a conversation born closed; it opens nothing for routing and has
no `client_msg_id` to resend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from app.chat.models import Conversation

SendKey = tuple[str, str, str, str]  # shop, sender, sender id, client message id


def send_key(shop_id: str, sender: str, sender_id: str, client_msg_id: str) -> SendKey:
    """R2: what makes two sends the same message."""
    return (shop_id, sender, sender_id, client_msg_id)


def first_sends(keys: Sequence[SendKey], order: Iterable[int]) -> list[int]:
    """R2 within one batch: the indices in `order`, each message's first copy only.

    A second copy of a message in the same batch is a resend of the first: it is not
    tried (the full path returns the original once the batch has committed).
    """
    seen: set[SendKey] = set()
    out = []
    for i in order:
        if keys[i] not in seen:
            seen.add(keys[i])
            out.append(i)
    return out


def may_write(sender: str, sender_id: str | None, *, buyer_id: str, agent_id: str | None) -> bool:
    """R6: a buyer writes into their own conversation, an agent into the one they serve."""
    if sender == "buyer":
        return sender_id == buyer_id
    return agent_id is not None and sender_id == agent_id


def stamps_buyer_time(sender: str) -> bool:
    """R7: whether the message moves the conversation's `last_buyer_message_at`."""
    return sender == "buyer"


def new_conversation(
    *,
    shop_id: str,
    buyer_id: str,
    queue: str,
    elder: bool,
    now: datetime,
    conversation_id: str | None = None,
    held_by_bot: bool = False,
) -> Conversation:
    """R3: the conversation a buyer's first message opens, before that message is numbered.

    `held_by_bot` (the shop's bot answers first, app/bot): it waits in no queue until the
    bot hands it over, so routing leaves it alone (status "bot").
    """
    conv = Conversation(
        shop_id=shop_id,
        buyer_id=buyer_id,
        queue=queue,
        status="bot" if held_by_bot else "queued",
        handled_by="bot" if held_by_bot else "human",
        elder=elder,
        last_seq=0,
        opened_at=now,
        queued_at=None if held_by_bot else now,
    )
    if conversation_id is not None:
        conv.id = conversation_id
    return conv
