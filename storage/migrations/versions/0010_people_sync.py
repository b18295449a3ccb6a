"""sync runs: what each pull from Salesforce, HubSpot or a SQL source changed or refused

Revision ID: 0010_people_sync
Revises: 0040_teams_escalation_card
Create Date: 2026-11-24
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010_people_sync"
down_revision = "0040_teams_escalation_card"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_sync_run_source_started", "sync_run", ["source", "started_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_sync_run_source_started", table_name="sync_run")
    op.drop_table("sync_run")
