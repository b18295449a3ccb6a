"""access: idempotency keys for escalations and their notes; Teams activity receipts

Revision ID: 0030_access
Revises: 0080_digest
Create Date: 2026-11-24
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0030_access"
down_revision = "0080_digest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("origin_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.create_unique_constraint("uq_escalation_origin_key", ["origin_key"])
    with op.batch_alter_table("escalation_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("origin_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        batch_op.create_unique_constraint("uq_escalation_event_origin_key", ["origin_key"])
    op.create_table(
        "teams_activity_receipt",
        sa.Column("activity_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("activity_key"),
    )
    with op.batch_alter_table("teams_activity_receipt", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_teams_activity_receipt_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("teams_activity_receipt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_teams_activity_receipt_received_at"))
    op.drop_table("teams_activity_receipt")
    with op.batch_alter_table("escalation_event", schema=None) as batch_op:
        batch_op.drop_constraint("uq_escalation_event_origin_key", type_="unique")
        batch_op.drop_column("origin_key")
    with op.batch_alter_table("escalation", schema=None) as batch_op:
        batch_op.drop_constraint("uq_escalation_origin_key", type_="unique")
        batch_op.drop_column("origin_key")
