"""agents.active: an admin may deactivate an agent (no login, no sessions, no assignments)

Revision ID: 0009_agent_active
Revises: 0008_append_messages_set_based
Create Date: 2026-12-02

Every existing agent stays active (the server default fills the column for them).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_agent_active"
down_revision = "0008_append_messages_set_based"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("active")
