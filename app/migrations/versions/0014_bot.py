"""bot: knowledge base, settings, held conversations, answered messages; conversations.handled_by

Revision ID: 0014_bot
Revises: 0019_price_payout
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import app.db

revision = "0014_bot"
down_revision = "0019_price_payout"
branch_labels = None
depends_on = None

_ID = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("handled_by", sa.String(length=8), server_default="human", nullable=False)
        )
    op.create_table(
        "bot_faqs",
        sa.Column("id", _ID(length=32), nullable=False),
        sa.Column("shop_id", _ID(length=32), nullable=False),
        sa.Column("question", sa.String(length=200), nullable=False),
        sa.Column("similar", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("category", _ID(length=64), nullable=True),
        sa.Column("product", sa.JSON(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_bot_faqs_shop_id_shops")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_faqs")),
    )
    op.create_index("ix_bot_faqs_shop", "bot_faqs", ["shop_id", "updated_at"], unique=False)
    op.create_table(
        "bot_settings",
        sa.Column("shop_id", _ID(length=32), nullable=False),
        sa.Column("mode", _ID(length=16), nullable=False),
        sa.Column("queue_modes", sa.JSON(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("handoff_words", sa.JSON(), nullable=False),
        sa.Column("anger_words", sa.JSON(), nullable=False),
        sa.Column("greeting", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_bot_settings_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_bot_settings")),
    )
    op.create_table(
        "bot_conversations",
        sa.Column("conversation_id", _ID(length=32), nullable=False),
        sa.Column("shop_id", _ID(length=32), nullable=False),
        sa.Column("mode", _ID(length=16), nullable=False),
        sa.Column("started_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("low_streak", sa.Integer(), nullable=False),
        sa.Column("handed_off_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("handoff_reason", _ID(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_bot_conversations_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_bot_conversations_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_bot_conversations")),
    )
    op.create_index(
        "ix_bot_conversations_shop_at", "bot_conversations", ["shop_id", "started_at"], unique=False
    )
    op.create_table(
        "bot_replies",
        sa.Column("message_id", _ID(length=32), nullable=False),
        sa.Column("shop_id", _ID(length=32), nullable=False),
        sa.Column("conversation_id", _ID(length=32), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("outcome", _ID(length=16), nullable=False),
        sa.Column("faq_id", _ID(length=32), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("bot_message_id", _ID(length=32), nullable=True),
        sa.Column("helpful", sa.Boolean(), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_bot_replies_message_id_messages")
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_bot_replies_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_bot_replies")),
    )
    op.create_index(
        "ix_bot_replies_shop_at", "bot_replies", ["shop_id", "created_at"], unique=False
    )
    op.create_index("ix_bot_replies_bot_message", "bot_replies", ["bot_message_id"], unique=False)


def downgrade() -> None:
    op.drop_table("bot_replies")
    op.drop_table("bot_conversations")
    op.drop_table("bot_settings")
    op.drop_table("bot_faqs")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("handled_by")
