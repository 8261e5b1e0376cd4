"""The GitHub App's state: its durable job queue, its replies, and the installations it serves.

The tables are in :mod:`github_app.models`; everything here is a short transaction on the engine's database
(SQLite or PostgreSQL, same code), opened through the engine's database kit (:mod:`engine.database`). Claims are compare-and-set updates on one row, so any number of workers in any number
of processes can share the queue without taking a job, or a discussion, twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from engine.database import MicroBatcher, mark_answer_accepted, sessions, utcnow
from github_app.models import GitHubInstallation, GitHubJob, GitHubReply, GitHubRepository

JOB_STATUSES = ("queued", "running", "done", "failed")
REPLY_STATUSES = ("pending", "ready", "draft", "approved", "posted", "abstained", "skipped")


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; they were written in UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


class ReplyConflict(Exception):
    """The reply exists but can't be approved: it is already approved (maybe just now, by another request) or
    posted, abstained, skipped… The message says which."""


@dataclass(frozen=True)
class Job:
    id: int
    delivery_id: str
    event: str
    action: str | None
    kind: str
    payload: dict
    status: str
    attempts: int
    last_error: str | None = None
    outcome: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @classmethod
    def of(cls, row: GitHubJob) -> "Job":
        return cls(row.id, row.delivery_id, row.event, row.action, row.kind, row.payload, row.status, row.attempts,
                   row.last_error, row.outcome, _aware(row.created_at), _aware(row.updated_at))

    def summary(self) -> dict:
        return {"id": self.id, "delivery_id": self.delivery_id, "event": self.event, "action": self.action,
                "kind": self.kind, "status": self.status, "attempts": self.attempts, "last_error": self.last_error,
                "outcome": self.outcome, "created_at": self.created_at.isoformat() if self.created_at else None,
                "updated_at": self.updated_at.isoformat() if self.updated_at else None}


class GitHubStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.session = sessions(engine)
        self._enqueue: MicroBatcher[dict, int | None] = MicroBatcher(self._enqueue_many, max_batch=128)

    # -- the queue ------------------------------------------------------------------------------

    async def enqueue(self, delivery_id: str, event: str, action: str | None, kind: str, payload: dict,
                      key: str | None = None) -> int | None:
        """Record a delivery as a queued job; None when this delivery id was already received.

        Jobs with the same ``key`` (one discussion, one installation) run one at a time, oldest first.
        Concurrent deliveries are committed together (group commit, as the answer log does): under a
        burst one transaction acknowledges many, and each caller returns once its own job is committed.
        """
        return await self._enqueue.submit(dict(delivery_id=delivery_id, event=event, action=action, kind=kind,
                                               payload=payload, key=key))

    async def _enqueue_many(self, items: list[dict]) -> list[int | None]:
        """Insert a batch of jobs in one transaction; a delivery id already stored (or earlier in the batch)
        gets None. ``ON CONFLICT DO NOTHING`` keeps it race-free against other processes too."""
        now = utcnow()
        first: dict[str, dict] = {}
        for item in items:
            first.setdefault(item["delivery_id"], item)
        rows = [dict(item, status="queued", attempts=0, run_after=now, created_at=now, updated_at=now)
                for item in first.values()]
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:  # pragma: no cover - the engine runs on SQLite or PostgreSQL
            return [await self._enqueue_one(item) for item in items]
        statement = (dialect_insert(GitHubJob).values(rows).on_conflict_do_nothing(index_elements=["delivery_id"])
                     .returning(GitHubJob.id, GitHubJob.delivery_id))
        async with self.session.begin() as session:
            inserted = {delivery: job_id for job_id, delivery in (await session.execute(statement)).all()}
        return [inserted.get(item["delivery_id"]) if first[item["delivery_id"]] is item else None for item in items]

    async def _enqueue_one(self, item: dict) -> int | None:
        try:
            async with self.session.begin() as session:
                job = GitHubJob(**item, status="queued", attempts=0, run_after=utcnow())
                session.add(job)
                await session.flush()
                return job.id
        except IntegrityError:
            return None

    async def claim(self, worker: str, lease_seconds: float, limit: int = 5) -> Job | None:
        """Take the oldest due job: a queued one whose time has come, or a running one whose worker died.

        A job waits while an older job with the same key is unfinished, so one discussion's or one
        installation's events are handled in the order they arrived.
        """
        now = utcnow()
        earlier = aliased(GitHubJob)
        due = and_(
            or_(and_(GitHubJob.status == "queued", GitHubJob.run_after <= now),
                and_(GitHubJob.status == "running", GitHubJob.lease_until < now)),
            or_(GitHubJob.key.is_(None), ~exists().where(earlier.key == GitHubJob.key, earlier.id < GitHubJob.id,
                                                         earlier.status.in_(("queued", "running")))),
        )
        async with self.session() as session:
            candidates = (await session.execute(
                select(GitHubJob.id).where(due).order_by(GitHubJob.id).limit(limit)
            )).scalars().all()
        for job_id in candidates:
            async with self.session.begin() as session:
                taken = await session.execute(
                    update(GitHubJob).where(GitHubJob.id == job_id, due)
                    .values(status="running", worker=worker, attempts=GitHubJob.attempts + 1,
                            lease_until=now + timedelta(seconds=lease_seconds), updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                if taken.rowcount == 1:
                    row = await session.get(GitHubJob, job_id)
                    assert row is not None
                    return Job.of(row)
        return None

    async def _settle(self, job_id: int, worker: str, **values) -> bool:
        """Change a job this worker holds; False when it lost the lease to another worker meanwhile."""
        async with self.session.begin() as session:
            changed = await session.execute(
                update(GitHubJob).where(GitHubJob.id == job_id, GitHubJob.worker == worker, GitHubJob.status == "running")
                .values(updated_at=utcnow(), **values)
            )
            return changed.rowcount == 1

    async def extend(self, job_id: int, worker: str, lease_seconds: float) -> bool:
        return await self._settle(job_id, worker, lease_until=utcnow() + timedelta(seconds=lease_seconds))

    async def finish(self, job_id: int, worker: str, outcome: str) -> bool:
        return await self._settle(job_id, worker, status="done", outcome=outcome, lease_until=None)

    async def retry_later(self, job_id: int, worker: str, error: str, delay: float) -> bool:
        return await self._settle(job_id, worker, status="queued", last_error=error, lease_until=None,
                                  run_after=utcnow() + timedelta(seconds=delay))

    async def fail(self, job_id: int, worker: str, error: str) -> bool:
        return await self._settle(job_id, worker, status="failed", last_error=error, lease_until=None)

    async def job(self, job_id: int) -> Job | None:
        async with self.session() as session:
            row = await session.get(GitHubJob, job_id)
            return Job.of(row) if row else None

    async def jobs(self, status: str | None = None, limit: int = 50) -> list[Job]:
        """The newest jobs first, optionally only those with one status (e.g. the failed ones)."""
        query = select(GitHubJob).order_by(GitHubJob.id.desc()).limit(limit)
        if status is not None:
            query = query.where(GitHubJob.status == status)
        async with self.session() as session:
            return [Job.of(r) for r in (await session.execute(query)).scalars()]

    async def count_by_status(self) -> dict[str, int]:
        """Jobs per status (every status named, zero included)."""
        async with self.session() as session:
            rows = dict((await session.execute(select(GitHubJob.status, func.count()).group_by(GitHubJob.status))).all())
        return {status: rows.get(status, 0) for status in JOB_STATUSES}

    async def requeue(self, job_id: int) -> bool:
        """Give a failed job another round of attempts (after a maintainer fixed the cause)."""
        async with self.session.begin() as session:
            changed = await session.execute(
                update(GitHubJob).where(GitHubJob.id == job_id, GitHubJob.status == "failed")
                .values(status="queued", attempts=0, run_after=utcnow(), updated_at=utcnow())
            )
            return changed.rowcount == 1

    # -- replies --------------------------------------------------------------------------------

    async def hold_reply(self, trigger_id: str, job_id: int, lease_seconds: float, **fields) -> GitHubReply | None:
        """Create the trigger's reply row if new, and hold it for this job; None if another job holds it."""
        now = utcnow()
        try:
            async with self.session.begin() as session:
                session.add(GitHubReply(trigger_id=trigger_id, status="pending", **fields))
        except IntegrityError:
            pass  # it exists: hold it below
        async with self.session.begin() as session:
            held = await session.execute(
                update(GitHubReply).where(
                    GitHubReply.trigger_id == trigger_id,
                    or_(GitHubReply.owner_job.is_(None), GitHubReply.owner_job == job_id, GitHubReply.lease_until < now),
                ).values(owner_job=job_id, lease_until=now + timedelta(seconds=lease_seconds))
            )
            if held.rowcount != 1:
                return None
            return (await session.execute(select(GitHubReply).where(GitHubReply.trigger_id == trigger_id))).scalar_one()

    async def update_reply(self, trigger_id: str, *, release: bool = False, **fields) -> None:
        if release:
            fields.update(owner_job=None, lease_until=None)
        async with self.session.begin() as session:
            await session.execute(update(GitHubReply).where(GitHubReply.trigger_id == trigger_id)
                                  .values(updated_at=utcnow(), **fields))

    async def reply(self, trigger_id: str) -> GitHubReply | None:
        async with self.session() as session:
            return (await session.execute(select(GitHubReply).where(GitHubReply.trigger_id == trigger_id))).scalar_one_or_none()

    async def reply_by_id(self, reply_id: int) -> GitHubReply | None:
        async with self.session() as session:
            return await session.get(GitHubReply, reply_id)

    async def reply_for_answer(self, answer_id: str) -> GitHubReply | None:
        """The newest reply made from this answer (the one its review page shows)."""
        async with self.session() as session:
            return (await session.execute(
                select(GitHubReply).where(GitHubReply.answer_id == answer_id).order_by(GitHubReply.id.desc())
            )).scalars().first()

    async def reply_figures(self, since: datetime) -> dict:
        """Replies posted since ``since``, how many of them their discussion's author accepted, and the share."""
        posted_since = and_(GitHubReply.status == "posted", GitHubReply.created_at >= since)
        async with self.session() as session:
            posted = (await session.execute(select(func.count()).select_from(GitHubReply).where(posted_since))).scalar_one()
            accepted = (await session.execute(select(func.count()).select_from(GitHubReply).where(
                posted_since, GitHubReply.accepted.is_(True)))).scalar_one()
        return {"posted": posted, "accepted": accepted, "acceptance_rate": accepted / posted if posted else None}

    async def replies(self, status: str | None = None, limit: int = 50) -> list[GitHubReply]:
        query = select(GitHubReply).order_by(GitHubReply.id.desc()).limit(limit)
        if status is not None:
            query = query.where(GitHubReply.status == status)
        async with self.session() as session:
            return list((await session.execute(query)).scalars())

    async def approve_reply(self, reply_id: int, by: str, body: str | None = None) -> GitHubReply | None:
        """Approve a draft (optionally with a maintainer's corrected text) and queue its posting, in one
        transaction; None if there is no such reply, :class:`ReplyConflict` if it is not (or no longer) a draft.

        The approval is a compare-and-set (``status = 'draft'`` in the update's condition), so of
        concurrent approvals exactly one wins, on SQLite and on PostgreSQL alike.
        """
        values: dict = {"status": "approved", "approved_by": by, "updated_at": utcnow()}
        if body is not None:  # keep the draft as generated when the text changes (SET reads the old values)
            values.update(original_body=case((GitHubReply.body != body, GitHubReply.body), else_=GitHubReply.original_body),
                          body=body)
        async with self.session.begin() as session:
            changed = await session.execute(
                update(GitHubReply).where(GitHubReply.id == reply_id, GitHubReply.status == "draft").values(**values)
                .execution_options(synchronize_session=False)
            )
            if changed.rowcount == 1:
                row = (await session.execute(select(GitHubReply).where(GitHubReply.id == reply_id))).scalar_one()
                session.add(GitHubJob(delivery_id=f"post-reply:{reply_id}", event="firstreply", action="approved",
                                      kind="post_reply", key=f"discussion:{row.discussion_id}",
                                      payload={"reply_id": reply_id}, status="queued", attempts=0, run_after=utcnow()))
                return row
        current = await self.reply_by_id(reply_id)
        if current is None:
            return None
        if current.status == "approved":
            raise ReplyConflict(f"reply {reply_id} is not a draft: it was already approved by "
                                f"{current.approved_by or 'someone'} and is being posted")
        raise ReplyConflict(f"reply {reply_id} is not a draft: it is {current.status}")

    async def accept(self, comment_id: str) -> GitHubReply | None:
        """The discussion's author chose this comment as the answer: record it on the reply and its answer."""
        async with self.session.begin() as session:
            row = (await session.execute(select(GitHubReply).where(GitHubReply.comment_id == comment_id))).scalar_one_or_none()
            if row is None:
                return None
            row.accepted, row.updated_at = True, utcnow()
            if row.answer_id:
                await mark_answer_accepted(session, row.answer_id)
            return row

    # -- installations and repositories ---------------------------------------------------------

    async def save_installation(self, data: dict, *, suspended: bool | None = None, removed: bool | None = None) -> None:
        """Create or update an installation; ``suspended``/``removed`` left as they are when None."""
        try:
            await self._save_installation(data, suspended=suspended, removed=removed)
        except IntegrityError:  # created meanwhile by another worker: now it is an update
            await self._save_installation(data, suspended=suspended, removed=removed)

    async def _save_installation(self, data: dict, *, suspended: bool | None, removed: bool | None) -> None:
        account = data.get("account") or {}
        async with self.session.begin() as session:
            row = await session.get(GitHubInstallation, int(data["id"]))
            if row is None:
                row = GitHubInstallation(id=int(data["id"]), account=account.get("login", ""), suspended=False, removed=False)
                session.add(row)
            row.account = account.get("login", row.account)
            row.account_type = data.get("target_type") or account.get("type")
            row.repository_selection = data.get("repository_selection")
            if removed is not None:
                row.removed = removed
            if suspended is not None:
                row.suspended = suspended
            row.updated_at = utcnow()
            if removed:
                await session.execute(update(GitHubRepository).where(GitHubRepository.installation_id == row.id)
                                      .values(removed=True, updated_at=utcnow()))

    async def save_repositories(self, installation_id: int, repositories: list[dict], *, removed: bool = False) -> int:
        try:
            return await self._save_repositories(installation_id, repositories, removed=removed)
        except IntegrityError:  # one was created meanwhile by another worker: now it is an update
            return await self._save_repositories(installation_id, repositories, removed=removed)

    async def _save_repositories(self, installation_id: int, repositories: list[dict], *, removed: bool) -> int:
        async with self.session.begin() as session:
            for repo in repositories:
                row = await session.get(GitHubRepository, int(repo["id"]))
                if row is None:
                    row = GitHubRepository(id=int(repo["id"]), installation_id=installation_id, full_name=repo["full_name"],
                                           enabled=True)
                    session.add(row)
                row.installation_id, row.full_name = installation_id, repo.get("full_name", row.full_name)
                row.node_id, row.private = repo.get("node_id"), bool(repo.get("private", False))
                row.removed, row.updated_at = removed, utcnow()
        return len(repositories)

    async def installation(self, installation_id: int) -> GitHubInstallation | None:
        async with self.session() as session:
            return await session.get(GitHubInstallation, installation_id)

    async def repository(self, name_or_id: str | int) -> GitHubRepository | None:
        async with self.session() as session:
            if isinstance(name_or_id, int) or str(name_or_id).isdigit():
                return await session.get(GitHubRepository, int(name_or_id))
            return (await session.execute(
                select(GitHubRepository).where(GitHubRepository.full_name == name_or_id).order_by(GitHubRepository.id.desc())
            )).scalars().first()

    async def repositories(self) -> list[GitHubRepository]:
        async with self.session() as session:
            return list((await session.execute(select(GitHubRepository).order_by(GitHubRepository.full_name))).scalars())

    async def set_repository_enabled(self, name_or_id: str | int, enabled: bool, by: str | None = None) -> GitHubRepository | None:
        row = await self.repository(name_or_id)
        if row is None:
            return None
        async with self.session.begin() as session:
            await session.execute(update(GitHubRepository).where(GitHubRepository.id == row.id)
                                  .values(enabled=enabled, updated_by=by, updated_at=utcnow()))
        row.enabled = enabled
        return row
