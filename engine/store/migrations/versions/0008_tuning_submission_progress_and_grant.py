"""tuning jobs: the provider's file id, submission attempts and retries, the provider's own progress, the grant

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-05 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('tuning_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_file_id', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('submit_attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('retries', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('provider_progress', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('grantee', sa.String(length=330), nullable=True))
        batch_op.add_column(sa.Column('grant_state', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('grant_error', sa.Text(), nullable=True))
        batch_op.alter_column('progress', existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE tuning_jobs SET progress = 0 WHERE progress IS NULL")
    with op.batch_alter_table('tuning_jobs', schema=None) as batch_op:
        batch_op.alter_column('progress', existing_type=sa.Float(), nullable=False)
        batch_op.drop_column('grant_error')
        batch_op.drop_column('grant_state')
        batch_op.drop_column('grantee')
        batch_op.drop_column('provider_progress')
        batch_op.drop_column('retries')
        batch_op.drop_column('submit_attempts')
        batch_op.drop_column('provider_file_id')
