"""per-channel settings set by a frontend's admins

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "channel_settings",
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("channel_id", sa.String(length=64), nullable=False),
        sa.Column("help_channel", sa.Boolean(), nullable=True),
        sa.Column("thread_mode", sa.Boolean(), nullable=True),
        sa.Column("updated_by", sa.String(length=64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "channel_id"),
    )


def downgrade() -> None:
    op.drop_table("channel_settings")
