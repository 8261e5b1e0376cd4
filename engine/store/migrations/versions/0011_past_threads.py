"""the community's answered history: past threads (candidate golden records) and a cursor per source

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 04:15:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('past_threads',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('thread_id', sa.String(length=100), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('author_hash', sa.String(length=64), nullable=True),
    sa.Column('answerer_hash', sa.String(length=64), nullable=True),
    sa.Column('answer_kind', sa.String(length=12), nullable=False),
    sa.Column('thread_updated_at', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('golden_record_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_by', sa.String(length=100), nullable=True),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('source', 'thread_id')
    )
    op.create_index(op.f('ix_past_threads_status'), 'past_threads', ['status'], unique=False)
    op.create_table('history_cursors',
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('cursor', sa.String(length=500), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('source')
    )


def downgrade() -> None:
    op.drop_table('history_cursors')
    op.drop_index(op.f('ix_past_threads_status'), table_name='past_threads')
    op.drop_table('past_threads')
