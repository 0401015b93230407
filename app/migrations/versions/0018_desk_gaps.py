"""desk gaps: stored @mentions of internal notes (note_mentions)

Revision ID: 0018_desk_gaps
Revises: 0017_safety
Create Date: 2026-12-02

A new table only: each colleague a note names, until they have read it.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import app.db

revision = "0018_desk_gaps"
down_revision = "0017_safety"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "note_mentions",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("author_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_note_mentions_shop_id_shops")
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_note_mentions_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["agents.id"], name=op.f("fk_note_mentions_author_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_note_mentions_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_note_mentions_conversation_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_note_mentions")),
        sa.UniqueConstraint("message_id", "agent_id", name="uq_note_mentions_message_agent"),
    )
    with op.batch_alter_table("note_mentions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_note_mentions_agent", ["agent_id", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("note_mentions", schema=None) as batch_op:
        batch_op.drop_index("ix_note_mentions_agent")
    op.drop_table("note_mentions")
