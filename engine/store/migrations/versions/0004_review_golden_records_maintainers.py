"""review: verdicts, vote counts and where-asked links on answers, golden records, maintainers, audit events

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 08:50:07.182170
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=100), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('target', sa.String(length=100), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_at'), ['at'], unique=False)

    op.create_table('golden_records',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('answer_id', sa.String(length=36), nullable=True),
    sa.Column('created_by', sa.String(length=100), nullable=True),
    sa.Column('updated_by', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('answer_id')
    )
    op.create_table('maintainers',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('link', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('verdict', sa.String(length=12), nullable=False, server_default='unreviewed'))
        batch_op.add_column(sa.Column('corrected_text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('review_note', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('up_votes', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('down_votes', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_answers_down_votes', ['down_votes', 'created_at'], unique=False)
        batch_op.create_index('ix_answers_verdict_created', ['verdict', 'created_at'], unique=False)
    # Votes cast before this migration: count them onto their answers.
    op.execute("UPDATE answers SET up_votes = (SELECT count(*) FROM feedback f WHERE f.answer_id = answers.id AND f.vote = 1), "
               "down_votes = (SELECT count(*) FROM feedback f WHERE f.answer_id = answers.id AND f.vote = -1)")


def downgrade() -> None:
    with op.batch_alter_table('answers', schema=None) as batch_op:
        batch_op.drop_index('ix_answers_verdict_created')
        batch_op.drop_index('ix_answers_down_votes')
        batch_op.drop_column('down_votes')
        batch_op.drop_column('up_votes')
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by')
        batch_op.drop_column('review_note')
        batch_op.drop_column('corrected_text')
        batch_op.drop_column('verdict')
        batch_op.drop_column('link')

    op.drop_table('maintainers')
    op.drop_table('golden_records')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_events_at'))

    op.drop_table('audit_events')
