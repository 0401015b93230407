"""Tags on conversations, and the message-text search index on both databases

Revision ID: 0012_tags_search
Revises: 0016_aftersales
Create Date: 2026-12-02

- `tags` (a shop's list, names unique per shop), `conversation_tags` (which conversation
  carries which tag, one row per pair) and `tag_settings` (whether closing needs a tag).
- `messages`: an index by (shop, time) for newest-first search and the bounded walk that
  serves 1-2 character queries (with the conversation, so filters are probed from the
  index alone), and one by (shop, sender) for "conversations an agent served".
- The text index. PostgreSQL: a pg_trgm GIN index on `messages.body`, used by `ILIKE`
  for queries of 3 characters or more. SQLite: an FTS5 external-content table with the
  trigram tokenizer over `messages.body` (rowid = messages.rowid), kept in step by
  triggers, so every append path (the group commit's plain SQL, the full path, bulk
  loads) is indexed without knowing of it. Existing messages are indexed here.

A later migration that makes SQLite rebuild `messages` (batch "move and copy") must
recreate the three triggers and `INSERT INTO messages_fts(messages_fts) VALUES('rebuild')`,
then `VALUES('optimize')` (0022 says why): the rebuilt table has new rowids.
(`tests/test_search.py` finds freshly sent messages, so a lost trigger fails it.)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision = "0012_tags_search"
down_revision = "0016_aftersales"
branch_labels = None
depends_on = None

SQLITE_FTS = [
    (
        "CREATE VIRTUAL TABLE messages_fts USING fts5("
        "body, content='messages', content_rowid='rowid', tokenize='trigram')"
    ),
    (
        "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
        "INSERT INTO messages_fts(rowid, body) VALUES (new.rowid, new.body); END"
    ),
    (
        "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body); "
        "END"
    ),
    (
        "CREATE TRIGGER messages_fts_au AFTER UPDATE OF body ON messages BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.rowid, old.body); "
        "INSERT INTO messages_fts(rowid, body) VALUES (new.rowid, new.body); END"
    ),
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
]


def upgrade() -> None:
    op.create_table(
        "tags",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("shop_id", sa.String(length=32), sa.ForeignKey("shops.id"), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("shop_id", "name", name="uq_tags_shop_name"),
    )
    op.create_table(
        "conversation_tags",
        sa.Column("shop_id", sa.String(length=32), sa.ForeignKey("shops.id"), nullable=False),
        sa.Column(
            "conversation_id",
            sa.String(length=32),
            sa.ForeignKey("conversations.id"),
            nullable=False,
        ),
        sa.Column("tag_id", sa.String(length=32), sa.ForeignKey("tags.id"), nullable=False),
        sa.Column("tagged_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "tag_id", name="pk_conversation_tags"),
    )
    op.create_index("ix_conversation_tags_shop_tag", "conversation_tags", ["shop_id", "tag_id"])
    op.create_table(
        "tag_settings",
        sa.Column("shop_id", sa.String(length=32), sa.ForeignKey("shops.id"), primary_key=True),
        sa.Column("required_to_close", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_index(
        "ix_messages_shop_created", "messages", ["shop_id", "created_at", "id", "conversation_id"]
    )
    op.create_index(
        "ix_messages_shop_sender",
        "messages",
        ["shop_id", "sender", "sender_id", "conversation_id"],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute("CREATE INDEX ix_messages_body_trgm ON messages USING gin (body gin_trgm_ops)")
    else:
        for statement in SQLITE_FTS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_messages_body_trgm")
    else:
        for trigger in ("messages_fts_ai", "messages_fts_ad", "messages_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    op.drop_index("ix_messages_shop_sender", table_name="messages")
    op.drop_index("ix_messages_shop_created", table_name="messages")
    op.drop_table("tag_settings")
    op.drop_index("ix_conversation_tags_shop_tag", table_name="conversation_tags")
    op.drop_table("conversation_tags")
    op.drop_table("tags")
