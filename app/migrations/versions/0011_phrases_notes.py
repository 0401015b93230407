"""phrases: quick phrases (快捷短语), the shop's and each agent's, with pinyin initials

Revision ID: 0011_phrases_notes
Revises: 0010_login_failures_by_address
Create Date: 2026-12-02

Internal notes need no schema change: they are messages of kind `note`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.db import UTCDateTime

revision = "0011_phrases_notes"
down_revision = "0010_login_failures_by_address"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phrases",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("shop_id", sa.String(length=32), nullable=False),
        sa.Column("owner_key", sa.String(length=32), nullable=False),
        sa.Column("group_name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("initials", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("shop_id", "owner_key", "text", name="uq_phrases_owner_text"),
    )
    op.create_index(
        "ix_phrases_owner_position", "phrases", ["shop_id", "owner_key", "position"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_phrases_owner_position", table_name="phrases")
    op.drop_table("phrases")
