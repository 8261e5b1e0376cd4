"""The GitHub App's tables: its durable job queue, its replies, and the installations and repositories it serves.

They sit on the engine's shared declarative metadata (:data:`engine.database.Base`), so one database and one
``firstreply migrate`` hold the engine's tables and the App's.

Their schema stays in the engine's Alembic chain (revision ``0003``, ``engine/store/migrations/versions/
0003_github_app.py``): deployed databases already carry that revision, and moving it to a chain of the App's own
would rewrite their history and break upgrades. A change to these tables is a new revision in that same chain.
The engine never imports this module; its migration environment leaves alone the tables it has no model for, so
autogenerate never proposes dropping these whatever was imported first, and compares them only in a process that
imported this module (do that to autogenerate a revision for them).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.database import Base, utcnow


class GitHubJob(Base):
    """One unit of webhook work, durable: acknowledged deliveries wait here until a worker finishes them.

    ``status`` goes queued → running → done | failed. A running job whose lease ran out (its
    worker died) is taken again; ``attempts`` counts every take, so a job that keeps failing ends.
    """

    __tablename__ = "github_jobs"
    __table_args__ = (Index("ix_github_jobs_due", "status", "run_after"), Index("ix_github_jobs_key", "key", "id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(String(100), unique=True)  # X-GitHub-Delivery, or an internal key
    event: Mapped[str] = mapped_column(String(50))
    action: Mapped[str | None] = mapped_column(String(50), nullable=True)
    kind: Mapped[str] = mapped_column(String(40))
    key: Mapped[str | None] = mapped_column(String(200), nullable=True)  # jobs sharing a key run one at a time, in order
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(12), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    worker: Mapped[str | None] = mapped_column(String(64), nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class GitHubReply(Base):
    """What the App said (or will say, or chose not to say) in reply to one trigger.

    The trigger is a discussion (first reply) or a comment that mentioned the App. One row per
    trigger is how a reply is never posted twice; ``owner_job``/``lease_until`` let one worker
    at a time act on it.
    """

    __tablename__ = "github_replies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger_id: Mapped[str] = mapped_column(String(100), unique=True)  # a discussion or comment node id
    kind: Mapped[str] = mapped_column(String(12))  # first | mention
    discussion_id: Mapped[str] = mapped_column(String(100), index=True)
    repository: Mapped[str] = mapped_column(String(200))
    installation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    discussion_number: Mapped[int | None] = mapped_column(Integer, nullable=True)
    discussion_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reply_to_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    status: Mapped[str] = mapped_column(String(12), default="pending")  # pending|ready|draft|approved|posted|abstained
    answer_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)
    original_body: Mapped[str | None] = mapped_column(Text, nullable=True)  # the draft as generated, when edited
    comment_id: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    comment_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    owner_job: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class GitHubInstallation(Base):
    __tablename__ = "github_installations"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    account: Mapped[str] = mapped_column(String(200))
    account_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    repository_selection: Mapped[str | None] = mapped_column(String(20), nullable=True)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    removed: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class GitHubRepository(Base):
    __tablename__ = "github_repositories"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    installation_id: Mapped[int] = mapped_column(BigInteger, index=True)
    full_name: Mapped[str] = mapped_column(String(200), index=True)
    node_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)  # a maintainer's switch
    removed: Mapped[bool] = mapped_column(Boolean, default=False)  # the App no longer has access
    updated_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
