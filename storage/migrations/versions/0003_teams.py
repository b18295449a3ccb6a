"""teams: stored conversation references for proactive messages

Revision ID: 0003_teams
Revises: 0001_initial
Create Date: 2026-11-23 17:50:00
"""
from alembic import op
import sqlalchemy as sa
import sqlmodel


revision = "0003_teams"
down_revision = "0001_initial"
branch_labels = ("teams",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams_conversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("conversation_type", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("tenant_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("service_url", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("bot_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("team_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("user_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("aad_object_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("csm_id", sa.Integer(), nullable=True),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["csm_id"], ["csm.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("teams_conversation", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_teams_conversation_conversation_id"), ["conversation_id"], unique=True
        )
        batch_op.create_index(batch_op.f("ix_teams_conversation_csm_id"), ["csm_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("teams_conversation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_teams_conversation_csm_id"))
        batch_op.drop_index(batch_op.f("ix_teams_conversation_conversation_id"))
    op.drop_table("teams_conversation")
