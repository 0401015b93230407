"""recall at scale: consultations by shop and time; joins the groups and recall branches

Revision ID: 0006_recall_scale
Revises: 0005_groups, 0005_recall
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0006_recall_scale"
down_revision = ("0005_groups", "0005_recall")
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The audience query reads a shop's consultations of the last 30 days.
    op.create_index("ix_conversations_shop_opened", "conversations", ["shop_id", "opened_at"])


def downgrade() -> None:
    op.drop_index("ix_conversations_shop_opened", table_name="conversations")
