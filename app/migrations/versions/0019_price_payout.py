"""payouts.agent_id nullable: a 价保 claim paid by the platform has no agent

Revision ID: 0019_price_payout
Revises: 0018_desk_gaps
Create Date: 2026-12-02

An approved price-protection (价保) claim is paid as a `price_protection` payout. Within
the shop's agent-free amount the platform approves and pays it: the payout has no agent
(`agent_id` NULL), its ledger lines have `actor_kind` "platform", and it counts against
no agent's daily total. Every existing payout keeps its agent.

Downgrading fails while such agent-less payouts exist (they cannot be given an agent).
"""

from __future__ import annotations

import sqlmodel.sql.sqltypes
from alembic import op

revision = "0019_price_payout"
down_revision = "0018_desk_gaps"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.alter_column(
            "agent_id",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=32),
            nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.alter_column(
            "agent_id",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=32),
            nullable=False,
        )
