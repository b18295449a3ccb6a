"""alert delivery (urgent, digest, team) and each person's working hours and interrupting classes

Revision ID: 0080_digest
Revises: 0020_arr_history
Create Date: 2026-11-24
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0080_digest"
down_revision = "0020_arr_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("csm", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "work_start",
                sqlmodel.sql.sqltypes.AutoString(),
                nullable=False,
                server_default="09:00",
            )
        )
        batch_op.add_column(
            sa.Column(
                "work_end",
                sqlmodel.sql.sqltypes.AutoString(),
                nullable=False,
                server_default="18:00",
            )
        )
        batch_op.add_column(sa.Column("interrupts", sa.JSON(), nullable=True))
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.add_column(sa.Column("category", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("delivery", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(
            sa.Column("delivered_in", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.create_index("ix_alert_pending", ["delivered_in", "delivery"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_pending")
        batch_op.drop_column("delivered_in")
        batch_op.drop_column("delivery")
        batch_op.drop_column("category")
    with op.batch_alter_table("csm", schema=None) as batch_op:
        batch_op.drop_column("interrupts")
        batch_op.drop_column("work_end")
        batch_op.drop_column("work_start")
