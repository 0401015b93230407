"""groups: fan groups, members, messages, check-ins, giveaways

Revision ID: 0005_groups
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import app.db

revision = "0005_groups"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "group_sensitive_words",
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("word", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_group_sensitive_words_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("shop_id", "word", name=op.f("pk_group_sensitive_words")),
    )
    op.create_table(
        "groups",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("max_members", sa.Integer(), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("muted_until", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_groups_shop_id_shops")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_groups")),
    )
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.create_index("ix_groups_shop", ["shop_id", "created_at"], unique=False)

    op.create_table(
        "giveaways",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("claimed", sa.Integer(), nullable=False),
        sa.Column("coupon", sa.JSON(), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_giveaways_group_id_groups")
        ),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_giveaways_shop_id_shops")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_giveaways")),
    )
    with op.batch_alter_table("giveaways", schema=None) as batch_op:
        batch_op.create_index("ix_giveaways_group", ["group_id", "created_at"], unique=False)

    op.create_table(
        "group_checkins",
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("buyer_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_checkins_group_id_groups")
        ),
        sa.PrimaryKeyConstraint("group_id", "buyer_id", "day", name=op.f("pk_group_checkins")),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("buyer_id", sa.String(length=128), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("muted_until", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("joined_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_members_group_id_groups")
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_group_members_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("group_id", "buyer_id", name=op.f("pk_group_members")),
    )
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.create_index(
            "ix_group_members_buyer", ["shop_id", "buyer_id", "status"], unique=False
        )

    op.create_table(
        "group_messages",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("group_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("sender", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("client_msg_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"], ["groups.id"], name=op.f("fk_group_messages_group_id_groups")
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_group_messages_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_group_messages")),
        sa.UniqueConstraint("group_id", "seq", name="uq_group_messages_group_seq"),
    )
    with op.batch_alter_table("group_messages", schema=None) as batch_op:
        batch_op.create_index(
            "uq_group_messages_client_msg",
            ["group_id", "sender", "sender_id", "client_msg_id"],
            unique=True,
            sqlite_where=sa.text("client_msg_id IS NOT NULL"),
            postgresql_where=sa.text("client_msg_id IS NOT NULL"),
        )

    op.create_table(
        "giveaway_claims",
        sa.Column("giveaway_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("buyer_id", sa.String(length=128), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("claimed_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["giveaway_id"], ["giveaways.id"], name=op.f("fk_giveaway_claims_giveaway_id_giveaways")
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_giveaway_claims_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("giveaway_id", "buyer_id", name=op.f("pk_giveaway_claims")),
    )


def downgrade() -> None:
    op.drop_table("giveaway_claims")
    with op.batch_alter_table("group_messages", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_group_messages_client_msg",
            sqlite_where=sa.text("client_msg_id IS NOT NULL"),
            postgresql_where=sa.text("client_msg_id IS NOT NULL"),
        )

    op.drop_table("group_messages")
    with op.batch_alter_table("group_members", schema=None) as batch_op:
        batch_op.drop_index("ix_group_members_buyer")

    op.drop_table("group_members")
    op.drop_table("group_checkins")
    with op.batch_alter_table("giveaways", schema=None) as batch_op:
        batch_op.drop_index("ix_giveaways_group")

    op.drop_table("giveaways")
    with op.batch_alter_table("groups", schema=None) as batch_op:
        batch_op.drop_index("ix_groups_shop")

    op.drop_table("groups")
    op.drop_table("group_sensitive_words")
