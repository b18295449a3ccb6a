"""slack: receipts of Events API deliveries (event_id dedupe)

Revision ID: 0002_slack
Revises: 0001_initial
Create Date: 2026-11-23 17:55:00
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0002_slack"
down_revision = "0001_initial"
branch_labels = ("slack",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slack_event_receipt",
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("slack_event_receipt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_slack_event_receipt_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("slack_event_receipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slack_event_receipt_received_at"))
    op.drop_table("slack_event_receipt")
