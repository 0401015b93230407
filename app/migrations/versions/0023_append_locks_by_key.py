"""PostgreSQL: homing_append_messages finds a batch's conversations by their key

Revision ID: 0023_append_locks_by_key
Revises: 0022_text_index_merged
Create Date: 2026-12-03

Same signature, same rows returned, same rules as 0008. Its first statement locked the
batch's conversations with `WHERE c.id IN (<the batch's>) AND c.status <> 'closed'`. That
predicate lets the planner read the partial index of open conversations
(`uq_conversations_open_buyer`) instead of the primary key, and it does whenever the
table's statistics say few conversations are open: a big database analysed at a quiet
hour, before the 20:00 rush. Every batch then walked every open conversation (1,000 in
the bench, 12-15 ms of a 17 ms batch on the 5,000,000-message database; issue 20), and
the walk grows with the rush itself. Now the lock reads the batch's conversations by id
alone, which only the primary key serves, and a closed one is turned away by the next
step (`accepted`), as before: its messages take the full path.
"""

from __future__ import annotations

from pathlib import Path

from alembic import op
from alembic.script import ScriptDirectory

revision = "0023_append_locks_by_key"
down_revision = "0022_text_index_merged"
branch_labels = None
depends_on = None

_LOCKED_0008 = """    locked AS (
        SELECT c.id, c.shop_id, c.buyer_id, c.agent_id, c.last_seq FROM conversations c
         WHERE c.id IN (SELECT conversation_id FROM appends) AND c.status <> 'closed'
         ORDER BY c.id
           FOR UPDATE
    ),"""
_LOCKED = """    locked AS (
        -- By id alone: only the primary key serves it (see migration 0023).
        SELECT c.id, c.shop_id, c.buyer_id, c.agent_id, c.last_seq, c.status FROM conversations c
         WHERE c.id IN (SELECT conversation_id FROM appends)
         ORDER BY c.id
           FOR UPDATE
    ),"""
_ACCEPTED_0008 = """         WHERE a.sender_id = CASE WHEN a.sender = 'buyer' THEN l.buyer_id ELSE l.agent_id END
"""
_ACCEPTED = """         WHERE l.status <> 'closed'
           AND a.sender_id = CASE WHEN a.sender = 'buyer' THEN l.buyer_id ELSE l.agent_id END
"""


def _function_0008() -> str:
    """The function as migration 0008 made it (alembic loads the revision's module)."""
    scripts = ScriptDirectory(str(Path(__file__).resolve().parent.parent))
    revision_0008 = scripts.get_revision("0008_append_messages_set_based")
    assert revision_0008 is not None
    return str(revision_0008.module.FUNCTION)


def function() -> str:
    before = _function_0008()
    assert before.count(_LOCKED_0008) == 1 and before.count(_ACCEPTED_0008) == 1
    return before.replace(_LOCKED_0008, _LOCKED).replace(_ACCEPTED_0008, _ACCEPTED)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(function())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_function_0008())
