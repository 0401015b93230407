"""service_hours and left_messages (留言); indexes the exports read periods by

Revision ID: 0013_service_hours
Revises: 0012_tags_search
Create Date: 2026-12-02

- service_hours: a shop's weekly plan, dated exceptions and auto-reply (no row: always open).
- left_messages: conversations whose buyer was told nobody could answer, claimed once.
- The message export reads a shop's period page by page (keyset) by 0012's
  ix_messages_shop_created (shop_id, created_at, id, conversation_id); conversations already
  have (shop_id, opened_at) from 0006.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.db

revision = "0013_service_hours"
down_revision = "0012_tags_search"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_hours",
        sa.Column("shop_id", sa.String(length=32), sa.ForeignKey("shops.id"), primary_key=True),
        sa.Column("weekly", sa.JSON(), nullable=False),
        sa.Column("exceptions", sa.JSON(), nullable=False),
        sa.Column("auto_reply", sa.Text(), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "left_messages",
        sa.Column(
            "conversation_id",
            sa.String(length=32),
            sa.ForeignKey("conversations.id"),
            primary_key=True,
        ),
        sa.Column("shop_id", sa.String(length=32), sa.ForeignKey("shops.id"), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("since", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("opens_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("told_at", app.db.UTCDateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_left_messages_shop_since", "left_messages", ["shop_id", "since"])


def downgrade() -> None:
    op.drop_index("ix_left_messages_shop_since", table_name="left_messages")
    op.drop_table("left_messages")
    op.drop_table("service_hours")
