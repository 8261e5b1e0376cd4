"""The tables. Every answer is logged here; review, analytics and training data start from it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # a Discord thread, a discussion node id
    channel: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Turn(Base):
    __tablename__ = "turns"
    __table_args__ = (Index("ix_turns_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(10))  # user | assistant
    text: Mapped[str] = mapped_column(Text)
    tokens: Mapped[int] = mapped_column(Integer)
    answer_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnswerRecord(Base):
    __tablename__ = "answers"
    __table_args__ = (
        Index("ix_answers_created", "created_at"),
        Index("ix_answers_channel_created", "channel", "created_at"),
        Index("ix_answers_verdict_created", "verdict", "created_at"),
        Index("ix_answers_down_votes", "down_votes", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str] = mapped_column(String(20))
    conversation_id: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    user_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kb: Mapped[str] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(Text)
    search_query: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    abstained: Mapped[bool] = mapped_column(Boolean, default=False)
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    sources: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # what retrieval gave the model, with scores
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    model: Mapped[str] = mapped_column(String(200))
    fallback_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    trimmed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # what the token budget dropped
    link: Mapped[str | None] = mapped_column(String(500), nullable=True)  # where the question was asked
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)  # chosen as the answer on GitHub
    # review: unreviewed | approved | corrected | rejected
    verdict: Mapped[str] = mapped_column(String(12), default="unreviewed")
    corrected_text: Mapped[str | None] = mapped_column(Text, nullable=True)  # kept beside the original `text`
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it was rejected
    reviewed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    up_votes: Mapped[int] = mapped_column(Integer, default=0)  # kept in step with `feedback`, for fast filters
    down_votes: Mapped[int] = mapped_column(Integer, default=0)


class Feedback(Base):
    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("answer_id", "user_hash", name="uq_feedback_answer_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    answer_id: Mapped[str] = mapped_column(ForeignKey("answers.id", ondelete="CASCADE"), index=True)
    user_hash: Mapped[str] = mapped_column(String(64))
    vote: Mapped[int] = mapped_column(Integer)  # +1 or -1
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ChannelSettings(Base):
    """Per-channel overrides a frontend's admins set (e.g. a Discord help channel on or off)."""

    __tablename__ = "channel_settings"

    platform: Mapped[str] = mapped_column(String(20), primary_key=True)  # discord | github
    channel_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    help_channel: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    thread_mode: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class DiscordThread(Base):
    """A Discord thread the bot answered in: follow-ups there need no mention, in every bot process."""

    __tablename__ = "discord_threads"

    thread_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    answered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DiscordEscalation(Base):
    """“Ask a maintainer” was pressed here: the maintainer role is pinged once per thread (outside threads, once
    per answer message). The primary key makes the first press win, whichever bot process sees it."""

    __tablename__ = "discord_escalations"

    thread_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    escalated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SharedSecret(Base):
    """A secret every replica must agree on: the user-id salt, the key that signs sessions.

    ``value`` is kept only for a secret generated because none was configured: the database is then
    how replicas share it. A configured secret is never stored; ``fingerprint`` (scrypt) is enough for
    a replica to check that its setting agrees with the one the others use.
    """

    __tablename__ = "shared_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str | None] = mapped_column(String(200), nullable=True)
    fingerprint: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# -- review -------------------------------------------------------------------------------------


class GoldenRecord(Base):
    """A question and the answer maintainers stand behind: from a review, an import, or typed in."""

    __tablename__ = "golden_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(12))  # review | import | manual | history
    answer_id: Mapped[str | None] = mapped_column(String(36), nullable=True, unique=True)
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    updated_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class PastThread(Base):
    """An answered thread from the community's history (a GitHub Discussion, a Discord forum post): the question
    and its answer, searchable as a past answer while a *candidate*; a maintainer accepts it (it becomes a
    golden record) or rejects it (hidden: no longer searched or listed). Authors are kept only as pseudonyms."""

    __tablename__ = "past_threads"
    __table_args__ = (UniqueConstraint("source", "thread_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200))  # github:OWNER/NAME | discord:CHANNEL_ID
    thread_id: Mapped[str] = mapped_column(String(100))  # the discussion's node id, the Discord thread's id
    url: Mapped[str] = mapped_column(String(500))
    title: Mapped[str] = mapped_column(Text)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    author_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    answerer_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    answer_kind: Mapped[str] = mapped_column(String(12))  # accepted | maintainers
    thread_updated_at: Mapped[str] = mapped_column(String(40))  # as the source gave it (ISO 8601)
    status: Mapped[str] = mapped_column(String(12), default="candidate", index=True)  # candidate | accepted | rejected
    golden_record_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reviewed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class HistoryCursor(Base):
    """Where an import of a source's history got to: the last page stored (committed with that page's threads)."""

    __tablename__ = "history_cursors"

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(500), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Maintainer(Base):
    __tablename__ = "maintainers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the token; the token is never stored
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class MaintainerSession(Base):
    """A maintainer signed in through the web pages. The cookie holds a random token; only its hash is
    kept here, so signing out (or removing the maintainer) ends the session on the server, wherever
    a copy of the cookie went."""

    __tablename__ = "maintainer_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    maintainer_id: Mapped[int] = mapped_column(ForeignKey("maintainers.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEvent(Base):
    """Who did what: every review action, sign-in and golden-record change."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# -- tuning -------------------------------------------------------------------------------------


class TuningJob(Base):
    """A fine-tuning job: queued → validating_files → (submitted: the provider's own validating_files, queued,
    running) → succeeded | failed | cancelled; then, for a Gemini model shared with a grantee, the grant.

    The runner owns a job while ``lease_until`` is in the future; after a restart another
    runner takes it over and resumes from its status (e.g. polls the provider again).
    ``submit_attempts`` is counted before each call that creates the provider's job, so a
    runner that finds it above 0 without a ``provider_job_id`` first looks for the job an
    earlier attempt may have made instead of making a second one.
    """

    __tablename__ = "tuning_jobs"
    __table_args__ = (Index("ix_tuning_jobs_status", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    base_llm: Mapped[dict[str, Any]] = mapped_column(JSON)  # {model_provider, model_name, model_parameters}
    golden_records: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)  # ids, or None for all
    job_metadata: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    dataset_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    provider_file_id: Mapped[str | None] = mapped_column(String(300), nullable=True)  # OpenAI's uploaded training file
    provider_job_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    submit_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # transient failures in a row
    model_id: Mapped[str | None] = mapped_column(String(300), nullable=True)
    progress: Mapped[float | None] = mapped_column(Float, nullable=True, default=0.0)  # 0..100; None: not reported
    provider_progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # the provider's own figures
    grantee: Mapped[str | None] = mapped_column(String(330), nullable=True)  # everyone | user:EMAIL | group:EMAIL
    grant_state: Mapped[str | None] = mapped_column(String(20), nullable=True)  # pending | granted | failed
    grant_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    evaluation: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class TuningDataset(Base):
    """The examples a job trained on, and the held-out slice it is evaluated on, as validated."""

    __tablename__ = "tuning_datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    variant: Mapped[str] = mapped_column(String(10))  # rag | plain
    train: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{record_id, system, input, output}]
    heldout: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)  # kept, dropped (with reasons), held out
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelActivation(Base):
    """The engine's model, as maintainers chose it; the newest not rolled back is in force."""

    __tablename__ = "model_activations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(300))  # a provider spec, e.g. gemini:tunedModels/abc
    fallback: Mapped[str | None] = mapped_column(String(300), nullable=True)  # the model that answered before it
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    evaluation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    activated_by: Mapped[str] = mapped_column(String(100))
    activated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    rolled_back_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    rolled_back_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
