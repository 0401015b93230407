"""messages: the index of who wrote where holds agents' messages only

Revision ID: 0024_agent_wrote_index
Revises: 0023_append_locks_by_key
Create Date: 2026-12-05

0012 indexed every message by `(shop_id, sender, sender_id, conversation_id)` for one
question, search's "the conversations this agent wrote in" (`search.service._served`),
which only ever asks about agents. Every buyer's message paid for it all the same: on
SQLite it was the most written index of the message path, 1.1 WAL pages per message stored
on an empty database and 1.8 on the 5,000,000-message one, where a returning buyer's
entries land in the middle of the index and split full pages (`bench.steady --big`, WAL
frames mapped to their B-trees). Now the index holds the rows `sender = 'agent'` and the
query names that value in its text, which both databases need before they use a partial
index.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024_agent_wrote_index"
down_revision = "0023_append_locks_by_key"
branch_labels = None
depends_on = None

AGENTS = "sender = 'agent'"


def upgrade() -> None:
    op.create_index(
        "ix_messages_agent_wrote",
        "messages",
        ["shop_id", "sender_id", "conversation_id"],
        sqlite_where=sa.text(AGENTS),
        postgresql_where=sa.text(AGENTS),
    )
    op.drop_index("ix_messages_shop_sender", table_name="messages")


def downgrade() -> None:
    op.create_index(
        "ix_messages_shop_sender",
        "messages",
        ["shop_id", "sender", "sender_id", "conversation_id"],
    )
    op.drop_index("ix_messages_agent_wrote", table_name="messages")
