"""safety: compliance rules (versioned per shop) and flags, abuse warnings, quality inspection

Revision ID: 0017_safety
Revises: 0013_service_hours
Create Date: 2026-12-02

New tables only: the shop's own banned words and their version, flagged messages, the one
warning per conversation a buyer gets for abusing an agent; the QA settings (scorecard,
daily sample), the daily draws (one per agent and day) and the reviews.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import app.db

revision = "0017_safety"
down_revision = "0013_service_hours"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compliance_abuse_warnings",
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("buyer_id", sa.String(length=128), nullable=False),
        sa.Column("warned_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_compliance_abuse_warnings_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_compliance_abuse_warnings")),
    )
    op.create_table(
        "compliance_flags",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("sender", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("matched", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reviewed_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("reviewed_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_compliance_flags_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_flags")),
        sa.UniqueConstraint("message_id", name=op.f("uq_compliance_flags_message_id")),
    )
    with op.batch_alter_table("compliance_flags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_compliance_flags_conversation", ["conversation_id", "sender"], unique=False
        )
        batch_op.create_index(
            "ix_compliance_flags_shop_at", ["shop_id", "created_at"], unique=False
        )

    op.create_table(
        "compliance_rules",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("word", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_compliance_rules_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compliance_rules")),
        sa.UniqueConstraint("shop_id", "word", name="uq_compliance_rules_shop_word"),
    )
    op.create_table(
        "compliance_settings",
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_compliance_settings_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_compliance_settings")),
    )
    op.create_table(
        "qa_settings",
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("daily_sample", sa.Integer(), nullable=False),
        sa.Column("scorecard", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_qa_settings_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_qa_settings")),
    )
    op.create_table(
        "qa_draws",
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("drawn", sa.Integer(), nullable=False),
        sa.Column("drawn_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_qa_draws_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_qa_draws_shop_id_shops")),
        sa.PrimaryKeyConstraint("agent_id", "day", name=op.f("pk_qa_draws")),
    )
    op.create_table(
        "qa_reviews",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("agent_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.Column("max_total", sa.Integer(), nullable=True),
        sa.Column("comment", sa.Text(), server_default="", nullable=False),
        sa.Column("reviewer_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("reviewed_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_qa_reviews_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_qa_reviews_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_reviews")),
        sa.UniqueConstraint("conversation_id", name=op.f("uq_qa_reviews_conversation_id")),
    )
    with op.batch_alter_table("qa_reviews", schema=None) as batch_op:
        batch_op.create_index("ix_qa_reviews_agent", ["agent_id", "status"], unique=False)
        batch_op.create_index(
            "ix_qa_reviews_shop_status", ["shop_id", "status", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("qa_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_qa_reviews_shop_status")
        batch_op.drop_index("ix_qa_reviews_agent")

    op.drop_table("qa_reviews")
    op.drop_table("qa_draws")
    op.drop_table("qa_settings")
    op.drop_table("compliance_settings")
    op.drop_table("compliance_rules")
    with op.batch_alter_table("compliance_flags", schema=None) as batch_op:
        batch_op.drop_index("ix_compliance_flags_shop_at")
        batch_op.drop_index("ix_compliance_flags_conversation")

    op.drop_table("compliance_flags")
    op.drop_table("compliance_abuse_warnings")
