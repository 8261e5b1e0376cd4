"""maintainer sessions kept on the server, so signing out and removal end them

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('maintainer_sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('maintainer_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['maintainer_id'], ['maintainers.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index(op.f('ix_maintainer_sessions_maintainer_id'), 'maintainer_sessions', ['maintainer_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_maintainer_sessions_maintainer_id'), table_name='maintainer_sessions')
    op.drop_table('maintainer_sessions')
