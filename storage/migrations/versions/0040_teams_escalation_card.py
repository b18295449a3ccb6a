"""teams: the activity id of an escalation's card, so every update edits it for everyone

Revision ID: 0040_teams_escalation_card
Revises: 0060_kpi_history
Create Date: 2026-11-24
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel

revision = "0040_teams_escalation_card"
down_revision = "0060_kpi_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("teams_activity_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.drop_column("teams_activity_id")
