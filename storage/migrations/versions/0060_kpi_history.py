"""KPI history for success plans: measured KPI readings per objective, a KPI target per milestone

Revision ID: 0060_kpi_history
Revises: 0005_merge
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0060_kpi_history"
down_revision = "0005_merge"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kpi_reading",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("objective_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["objective_id"], ["objective.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("objective_id", "day", name="uq_kpi_reading_day"),
    )
    with op.batch_alter_table("kpi_reading", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_kpi_reading_objective_id"), ["objective_id"], unique=False
        )
    with op.batch_alter_table("milestone", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kpi_target", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("milestone", schema=None) as batch_op:
        batch_op.drop_column("kpi_target")
    with op.batch_alter_table("kpi_reading", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_kpi_reading_objective_id"))
    op.drop_table("kpi_reading")
