"""after-sales requests, logistics on orders, proactive care, product prices

Revision ID: 0016_aftersales
Revises: 0015_webhooks
Create Date: 2026-12-02

After-sales requests and their append-only ledger (triggers refuse UPDATE and DELETE, as
on payout_ledger); the shop's after-sales and care settings; one row per care rule fired
per order (unique: fired once however many workers run); tracking updates and the
logistics columns of orders; the storefront's current product prices (价保).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import app.db

revision = "0016_aftersales"
down_revision = "0015_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "aftersale_ledger",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("entry", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("aftersale_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("actor_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=True),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("buyer_id", sa.String(length=128), nullable=True),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_aftersale_ledger_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aftersale_ledger")),
    )
    with op.batch_alter_table("aftersale_ledger", schema=None) as batch_op:
        batch_op.create_index("ix_aftersale_ledger_aftersale", ["aftersale_id"], unique=False)
        batch_op.create_index("ix_aftersale_ledger_shop_at", ["shop_id", "at"], unique=False)

    op.create_table(
        "aftersale_settings",
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("fast_refund_max_cents", sa.BigInteger(), nullable=False),
        sa.Column("price_protection_days", sa.Integer(), nullable=False),
        sa.Column("price_protection_auto_cents", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_aftersale_settings_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_aftersale_settings")),
    )
    op.create_table(
        "care_actions",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("buyer_id", sa.String(length=128), nullable=False),
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("message_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("coupon_cents", sa.BigInteger(), nullable=False),
        sa.Column("fired_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("goods_score", sa.Integer(), nullable=True),
        sa.Column("service_score", sa.Integer(), nullable=True),
        sa.Column("answered_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "goods_score IS NULL OR goods_score BETWEEN 1 AND 5",
            name=op.f("ck_care_actions_goods_score_range"),
        ),
        sa.CheckConstraint(
            "service_score IS NULL OR service_score BETWEEN 1 AND 5",
            name=op.f("ck_care_actions_service_score_range"),
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_care_actions_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_actions")),
        sa.UniqueConstraint("shop_id", "order_id", "rule", name="uq_care_actions_order_rule"),
    )
    with op.batch_alter_table("care_actions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_care_actions_shop_rule", ["shop_id", "rule", "fired_at"], unique=False
        )

    op.create_table(
        "care_settings",
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("stalled_on", sa.Boolean(), nullable=False),
        sa.Column("stalled_hours", sa.Integer(), nullable=False),
        sa.Column("stalled_coupon_cents", sa.BigInteger(), nullable=False),
        sa.Column("visit_on", sa.Boolean(), nullable=False),
        sa.Column("visit_days", sa.Integer(), nullable=False),
        sa.Column("apology_on", sa.Boolean(), nullable=False),
        sa.Column("late_shipment_on", sa.Boolean(), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_care_settings_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("shop_id", name=op.f("pk_care_settings")),
    )
    op.create_table(
        "product_prices",
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("price_cents >= 0", name=op.f("ck_product_prices_price_nonnegative")),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_product_prices_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("shop_id", "product_id", name=op.f("pk_product_prices")),
    )
    op.create_table(
        "order_tracking",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("line", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("received_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id", "order_id"],
            ["orders.shop_id", "orders.order_id"],
            name="fk_order_tracking_order_orders",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_tracking")),
    )
    with op.batch_alter_table("order_tracking", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_tracking_order", ["shop_id", "order_id", "at"], unique=False
        )

    op.create_table(
        "aftersales",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("shop_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("buyer_id", sa.String(length=128), nullable=False),
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("upload_ids", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("auto", sa.Boolean(), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("completed_at", app.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_aftersales_amount_nonnegative")),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_aftersales_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by"], ["agents.id"], name=op.f("fk_aftersales_decided_by_agents")
        ),
        sa.ForeignKeyConstraint(
            ["shop_id", "order_id"],
            ["orders.shop_id", "orders.order_id"],
            name="fk_aftersales_order_orders",
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_aftersales_shop_id_shops")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aftersales")),
    )
    with op.batch_alter_table("aftersales", schema=None) as batch_op:
        batch_op.create_index(
            "ix_aftersales_shop_buyer", ["shop_id", "buyer_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_aftersales_shop_order", ["shop_id", "order_id"], unique=False)
        batch_op.create_index(
            "ix_aftersales_shop_status", ["shop_id", "status", "created_at"], unique=False
        )

    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("shipped_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("delivered_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("carrier", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("tracking_no", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True)
        )
        batch_op.add_column(
            sa.Column("tracking_line", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True)
        )
        batch_op.add_column(
            sa.Column("tracking_at", app.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("product_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("unit_price_cents", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_orders_delivered_at", ["delivered_at"], unique=False)
        batch_op.create_index(
            "ix_orders_product", ["shop_id", "product_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_orders_shipped_at", ["shipped_at"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION aftersale_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'aftersale_ledger is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER aftersale_ledger_no_change BEFORE UPDATE OR DELETE ON aftersale_ledger "
            "FOR EACH ROW EXECUTE FUNCTION aftersale_ledger_append_only()"
        )
    else:
        for event in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER aftersale_ledger_no_{event.lower()} BEFORE {event} "
                "ON aftersale_ledger BEGIN SELECT RAISE(ABORT, 'aftersale_ledger is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS aftersale_ledger_no_change ON aftersale_ledger")
        op.execute("DROP FUNCTION IF EXISTS aftersale_ledger_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS aftersale_ledger_no_update")
        op.execute("DROP TRIGGER IF EXISTS aftersale_ledger_no_delete")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_shipped_at")
        batch_op.drop_index("ix_orders_product")
        batch_op.drop_index("ix_orders_delivered_at")
        batch_op.drop_column("unit_price_cents")
        batch_op.drop_column("product_id")
        batch_op.drop_column("tracking_at")
        batch_op.drop_column("tracking_line")
        batch_op.drop_column("tracking_no")
        batch_op.drop_column("carrier")
        batch_op.drop_column("delivered_at")
        batch_op.drop_column("shipped_at")

    with op.batch_alter_table("aftersales", schema=None) as batch_op:
        batch_op.drop_index("ix_aftersales_shop_status")
        batch_op.drop_index("ix_aftersales_shop_order")
        batch_op.drop_index("ix_aftersales_shop_buyer")

    op.drop_table("aftersales")
    with op.batch_alter_table("order_tracking", schema=None) as batch_op:
        batch_op.drop_index("ix_order_tracking_order")

    op.drop_table("order_tracking")
    op.drop_table("product_prices")
    op.drop_table("care_settings")
    with op.batch_alter_table("care_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_care_actions_shop_rule")

    op.drop_table("care_actions")
    op.drop_table("aftersale_settings")
    with op.batch_alter_table("aftersale_ledger", schema=None) as batch_op:
        batch_op.drop_index("ix_aftersale_ledger_shop_at")
        batch_op.drop_index("ix_aftersale_ledger_aftersale")

    op.drop_table("aftersale_ledger")
