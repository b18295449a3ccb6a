"""merge the slack, teams and scheduler branches; index account.updated_at

Revision ID: 0005_merge
Revises: 0002_slack, 0003_teams, 0004_scheduler
Create Date: 2026-11-23
"""

from alembic import op

revision = "0005_merge"
down_revision = ("0002_slack", "0003_teams", "0004_scheduler")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_account_updated_at", "account", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_account_updated_at", table_name="account")
