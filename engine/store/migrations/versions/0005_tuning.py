"""tuning: jobs, their datasets, and model activations

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 09:07:22.457567
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('model_activations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('model', sa.String(length=300), nullable=False),
    sa.Column('fallback', sa.String(length=300), nullable=True),
    sa.Column('job_id', sa.String(length=36), nullable=True),
    sa.Column('evaluation', sa.JSON(), nullable=False),
    sa.Column('activated_by', sa.String(length=100), nullable=False),
    sa.Column('activated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('rolled_back_by', sa.String(length=100), nullable=True),
    sa.Column('rolled_back_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('tuning_datasets',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('variant', sa.String(length=10), nullable=False),
    sa.Column('train', sa.JSON(), nullable=False),
    sa.Column('heldout', sa.JSON(), nullable=False),
    sa.Column('report', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('tuning_jobs',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('alias', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('base_llm', sa.JSON(), nullable=False),
    sa.Column('golden_records', sa.JSON(), nullable=True),
    sa.Column('metadata', sa.JSON(), nullable=False),
    sa.Column('dataset_id', sa.String(length=36), nullable=True),
    sa.Column('provider_job_id', sa.String(length=300), nullable=True),
    sa.Column('model_id', sa.String(length=300), nullable=True),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('cancel_requested', sa.Boolean(), nullable=False),
    sa.Column('evaluation', sa.JSON(), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('tuning_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_tuning_jobs_status', ['status'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('tuning_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_tuning_jobs_status')

    op.drop_table('tuning_jobs')
    op.drop_table('tuning_datasets')
    op.drop_table('model_activations')

