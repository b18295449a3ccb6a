"""delivery guarantees: delivery id, attempt state and deadline; workspace pauses; shared pacing

Revision ID: 0050_delivery_guarantees
Revises: 0030_access
Create Date: 2026-11-30
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0050_delivery_guarantees"
down_revision = "0030_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uid", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(
            sa.Column("attempt_state", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("first_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(
            sa.Column("deadline", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    op.create_table(
        "delivery_pause",
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("workspace", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("next_probe_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("probes", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("platform", "workspace"),
    )
    op.create_table(
        "delivery_gate",
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("blocked_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "delivery_slot",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delivery_slot_key_at", "delivery_slot", ["key", "at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_delivery_slot_key_at", table_name="delivery_slot")
    op.drop_table("delivery_slot")
    op.drop_table("delivery_gate")
    op.drop_table("delivery_pause")
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("deadline")
        batch_op.drop_column("first_attempt_at")
        batch_op.drop_column("attempt_state")
        batch_op.drop_column("uid")
