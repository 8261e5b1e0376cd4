"""github app: jobs, replies, installations, accepted answers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 08:33:56.707453
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('github_installations',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('account', sa.String(length=200), nullable=False),
    sa.Column('account_type', sa.String(length=40), nullable=True),
    sa.Column('repository_selection', sa.String(length=20), nullable=True),
    sa.Column('suspended', sa.Boolean(), nullable=False),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('github_jobs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('delivery_id', sa.String(length=100), nullable=False),
    sa.Column('event', sa.String(length=50), nullable=False),
    sa.Column('action', sa.String(length=50), nullable=True),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('run_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('worker', sa.String(length=64), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('outcome', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('delivery_id')
    )
    with op.batch_alter_table('github_jobs', schema=None) as batch_op:
        batch_op.create_index('ix_github_jobs_due', ['status', 'run_after'], unique=False)
        batch_op.create_index('ix_github_jobs_key', ['key', 'id'], unique=False)

    op.create_table('github_replies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('trigger_id', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('discussion_id', sa.String(length=100), nullable=False),
    sa.Column('repository', sa.String(length=200), nullable=False),
    sa.Column('installation_id', sa.BigInteger(), nullable=True),
    sa.Column('discussion_number', sa.Integer(), nullable=True),
    sa.Column('discussion_url', sa.String(length=500), nullable=True),
    sa.Column('reply_to_id', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('answer_id', sa.String(length=36), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('original_body', sa.Text(), nullable=True),
    sa.Column('comment_id', sa.String(length=100), nullable=True),
    sa.Column('comment_url', sa.String(length=500), nullable=True),
    sa.Column('accepted', sa.Boolean(), nullable=False),
    sa.Column('approved_by', sa.String(length=100), nullable=True),
    sa.Column('owner_job', sa.Integer(), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('trigger_id')
    )
    with op.batch_alter_table('github_replies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_github_replies_answer_id'), ['answer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_github_replies_comment_id'), ['comment_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_github_replies_discussion_id'), ['discussion_id'], unique=False)

    op.create_table('github_repositories',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('installation_id', sa.BigInteger(), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=False),
    sa.Column('node_id', sa.String(length=100), nullable=True),
    sa.Column('private', sa.Boolean(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.Column('updated_by', sa.String(length=100), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('github_repositories', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_github_repositories_full_name'), ['full_name'], unique=False)
        batch_op.create_index(batch_op.f('ix_github_repositories_installation_id'), ['installation_id'], unique=False)

    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.drop_column('accepted_at')

    with op.batch_alter_table('github_repositories', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_github_repositories_installation_id'))
        batch_op.drop_index(batch_op.f('ix_github_repositories_full_name'))

    op.drop_table('github_repositories')
    with op.batch_alter_table('github_replies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_github_replies_discussion_id'))
        batch_op.drop_index(batch_op.f('ix_github_replies_comment_id'))
        batch_op.drop_index(batch_op.f('ix_github_replies_answer_id'))

    op.drop_table('github_replies')
    with op.batch_alter_table('github_jobs', schema=None) as batch_op:
        batch_op.drop_index('ix_github_jobs_key')
        batch_op.drop_index('ix_github_jobs_due')

    op.drop_table('github_jobs')
    op.drop_table('github_installations')
