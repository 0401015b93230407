"""login_failures by (address, at): the login throttle counts one address's failures

Revision ID: 0010_login_failures_by_address
Revises: 0009_agent_active
Create Date: 2026-12-02

The throttle now counts failures per address across every account (and the account's own
among them) in one query filtered on address and time; the older index leads with the
shop and username, so it could not serve that query and each login scanned the table.
"""

from __future__ import annotations

from alembic import op

revision = "0010_login_failures_by_address"
down_revision = "0009_agent_active"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_login_failures_address_at", "login_failures", ["address", "at"])


def downgrade() -> None:
    op.drop_index("ix_login_failures_address_at", table_name="login_failures")
