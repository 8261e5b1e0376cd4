"""Tuning jobs, their datasets and model activations, in the engine's database."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from engine.store.database import rowcount, sessions
from engine.store.models import ModelActivation, TuningDataset, TuningJob, utcnow

TERMINAL = ("succeeded", "failed", "cancelled")


class TuningStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.session = sessions(engine)

    async def create(self, alias: str, base_llm: dict[str, Any], golden_records: list[int] | None, metadata: dict[str, Any],
                     by: str | None) -> TuningJob:
        async with self.session.begin() as session:
            job = TuningJob(id=str(uuid.uuid4()), alias=alias, status="queued", base_llm=base_llm,
                            golden_records=golden_records, job_metadata=metadata, progress=0.0, cancel_requested=False,
                            created_by=by)
            session.add(job)
            return job

    async def job(self, job_id: str) -> TuningJob | None:
        async with self.session() as session:
            return await session.get(TuningJob, job_id)

    async def jobs(self, limit: int = 100) -> list[TuningJob]:
        async with self.session() as session:
            return list((await session.execute(select(TuningJob).order_by(TuningJob.created_at.desc()).limit(limit))).scalars())

    async def count_by_status(self) -> dict[str, int]:
        async with self.session() as session:
            rows = dict((await session.execute(select(TuningJob.status, func.count()).group_by(TuningJob.status))).all())
        return {status: rows.get(status, 0)
                for status in ("queued", "validating_files", "running", "succeeded", "failed", "cancelled")}

    async def claim(self, lease_seconds: float) -> TuningJob | None:
        """Take a job that has work to do now (not finished, or a grant to make; not held by a live runner)."""
        now = utcnow()
        work = or_(TuningJob.status.notin_(TERMINAL), TuningJob.grant_state == "pending")
        due = and_(work, or_(TuningJob.lease_until.is_(None), TuningJob.lease_until < now))
        async with self.session() as session:
            ids = (await session.execute(select(TuningJob.id).where(due).order_by(TuningJob.created_at).limit(5))).scalars().all()
        for job_id in ids:
            async with self.session.begin() as session:
                taken = await session.execute(update(TuningJob).where(TuningJob.id == job_id, due)
                                              .values(lease_until=now + timedelta(seconds=lease_seconds)))
                if rowcount(taken) == 1:
                    return await session.get(TuningJob, job_id)
        return None

    async def update(self, job_id: str, expect: str, *, next_in: float | None = None, **values: Any) -> TuningJob | None:
        """Move a job on from status ``expect`` (compare-and-set: None if it changed meanwhile, e.g. was
        cancelled); ``next_in``: seconds before the runner looks at it again (None: at once)."""
        values["lease_until"] = utcnow() + timedelta(seconds=next_in) if next_in else None
        values["updated_at"] = utcnow()
        async with self.session.begin() as session:
            changed = await session.execute(update(TuningJob).where(TuningJob.id == job_id, TuningJob.status == expect)
                                            .values(**values))
            return await session.get(TuningJob, job_id) if rowcount(changed) == 1 else None

    async def request_cancel(self, job_id: str) -> TuningJob | None:
        """Ask for a job to stop; a job not yet submitted is cancelled at once. None if it is already over."""
        async with self.session.begin() as session:
            job = await session.get(TuningJob, job_id)
            if job is None or job.status in TERMINAL:
                return None
            job.cancel_requested, job.updated_at = True, utcnow()
            if job.status == "queued" and job.provider_job_id is None and not job.submit_attempts:  # nothing sent yet
                job.status, job.error = "cancelled", "cancelled before it started"
            job.lease_until = None  # the runner stops the provider's job at its next look
            return job

    async def retry_grant(self, job_id: str, grantee: str) -> TuningJob | None:
        """Ask the runner to grant access to a job's tuned model again, to ``grantee`` (the one configured now: the
        failure may have been the old setting's); None if no grant failed."""
        async with self.session.begin() as session:
            changed = await session.execute(update(TuningJob).where(TuningJob.id == job_id, TuningJob.grant_state == "failed")
                                            .values(grant_state="pending", grantee=grantee, grant_error=None, retries=0,
                                                    lease_until=None, updated_at=utcnow()))
            return await session.get(TuningJob, job_id) if rowcount(changed) == 1 else None

    async def save_dataset(self, provider: str, variant: str, train: list[dict[str, Any]], heldout: list[dict[str, Any]], report: dict[str, Any]) -> str:
        async with self.session.begin() as session:
            dataset = TuningDataset(id=str(uuid.uuid4()), provider=provider, variant=variant, train=train,
                                    heldout=heldout, report=report)
            session.add(dataset)
            return dataset.id

    async def dataset(self, dataset_id: str) -> TuningDataset | None:
        async with self.session() as session:
            return await session.get(TuningDataset, dataset_id)

    # -- activations ----------------------------------------------------------------------------

    async def in_force(self, limit: int = 20) -> list[ModelActivation]:
        """The activations not rolled back, newest (the one answering) first: each fell back to the one after it."""
        async with self.session() as session:
            return list((await session.execute(select(ModelActivation).where(ModelActivation.rolled_back_at.is_(None))
                                               .order_by(ModelActivation.id.desc()).limit(limit))).scalars())

    async def activations(self, limit: int = 50) -> list[ModelActivation]:
        async with self.session() as session:
            return list((await session.execute(select(ModelActivation).order_by(ModelActivation.id.desc()).limit(limit))).scalars())

    async def activate(self, model: str, fallback: str | None, job_id: str | None, evaluation: dict[str, Any], by: str) -> ModelActivation:
        async with self.session.begin() as session:
            activation = ModelActivation(model=model, fallback=fallback, job_id=job_id, evaluation=evaluation, activated_by=by)
            session.add(activation)
            return activation

    async def roll_back(self, by: str) -> ModelActivation | None:
        """End the activation in force; the one before it (or the configured models) answers again."""
        async with self.session.begin() as session:
            current = (await session.execute(select(ModelActivation).where(ModelActivation.rolled_back_at.is_(None))
                                             .order_by(ModelActivation.id.desc()).limit(1))).scalar_one_or_none()
            if current is None:
                return None
            current.rolled_back_by, current.rolled_back_at = by, utcnow()
            return current
