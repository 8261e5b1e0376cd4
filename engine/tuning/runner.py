"""The background runner: moves tuning jobs along, one step at a time, from the database.

queued → validating_files (build the training set from golden records, validate it, keep a
held-out slice) → running (submitted; polled every ``poll_seconds``) → succeeded | failed |
cancelled. Every step is recorded before the next, so a restarted runner picks each job up
where it was: a running job is simply polled again.
"""

from __future__ import annotations

import asyncio
import logging

from engine.store.tuning import TuningStore
from engine.tuning.dataset import LIMITS, Example, build_examples, split_holdout, validate
from engine.tuning.providers import TuningError

log = logging.getLogger(__name__)
LEASE_SECONDS = 300.0


class TuningRunner:
    def __init__(self, engine, store: TuningStore, tuners: dict, *, poll_seconds: float = 30.0,
                 holdout: float = 0.1, variant: str = "rag") -> None:
        self.engine = engine
        self.store = store
        self.tuners = tuners  # provider name -> tuner
        self.poll_seconds = poll_seconds
        self.holdout = holdout
        self.variant = variant
        self.wake = asyncio.Event()

    async def run_forever(self) -> None:
        while True:
            try:
                worked = await self.run_due()
            except Exception:  # the database blinked: try again at the next tick
                log.exception("the tuning runner failed a round")
                worked = 0
            if not worked:
                try:
                    await asyncio.wait_for(self.wake.wait(), self.poll_seconds)
                except asyncio.TimeoutError:
                    pass
                self.wake.clear()

    async def run_due(self) -> int:
        """Take every job that has a step due now, and do that step."""
        done = 0
        while (job := await self.store.claim(LEASE_SECONDS)) is not None:
            await self.step(job)
            done += 1
        return done

    async def step(self, job) -> None:
        provider = job.base_llm["model_provider"]
        tuner = self.tuners.get(provider)
        try:
            if job.cancel_requested:
                await self._cancel(job, tuner)
            elif tuner is None:
                await self.store.update(job.id, job.status, status="failed", error=f"no tuner for provider {provider!r}")
            elif job.status in ("queued", "validating_files") and not job.provider_job_id:
                await self._prepare_and_submit(job, tuner)
            else:
                await self._poll(job, tuner)
        except TuningError as error:
            if error.retryable:
                log.info("tuning job %s: %s; trying again later", job.id, error)
                await self.store.update(job.id, job.status, next_in=self.poll_seconds, error=str(error))
            else:
                log.warning("tuning job %s failed: %s", job.id, error)
                await self.store.update(job.id, job.status, status="failed", error=str(error))

    async def _cancel(self, job, tuner) -> None:
        if job.provider_job_id and tuner is not None:
            await tuner.cancel(job.provider_job_id)
        await self.store.update(job.id, job.status, status="cancelled", error=job.error or "cancelled")

    async def _prepare_and_submit(self, job, tuner) -> None:
        if job.status == "queued":
            job = await self.store.update(job.id, "queued", next_in=LEASE_SECONDS, status="validating_files")
            if job is None:  # cancelled meanwhile
                return
        provider = job.base_llm["model_provider"]
        dataset = await self.store.dataset(job.dataset_id) if job.dataset_id else None
        if dataset is None:
            records = await self.engine.review.all_golden_records()
            if job.golden_records is not None:
                wanted = set(job.golden_records)
                records = [r for r in records if r.id in wanted]
            examples = await build_examples(records, self.engine.asearch, variant=self.variant, k=self.engine.settings.search_k)
            kept, dropped = validate(examples, provider)
            train, heldout = split_holdout(kept, self.holdout)
            report = {"examples": len(examples), "kept": len(kept), "dropped": dropped, "train": len(train),
                      "heldout": len(heldout), "variant": self.variant}
            minimum = LIMITS[provider].min_examples
            if len(train) < minimum:
                reasons = "; ".join(f"record {d['record_id']}: {d['reason']}" for d in dropped[:5])
                await self.store.update(job.id, "validating_files", status="failed",
                                        error=f"too few examples: {len(train)} to train on after validation and the "
                                              f"held-out slice, {provider} needs at least {minimum}"
                                              + (f" (dropped: {reasons})" if reasons else ""))
                return
            dataset_id = await self.store.save_dataset(provider, self.variant, [e.as_dict() for e in train],
                                                       [e.as_dict() for e in heldout], report)
            job = await self.store.update(job.id, "validating_files", next_in=LEASE_SECONDS, dataset_id=dataset_id)
            if job is None or job.cancel_requested:
                return
            dataset = await self.store.dataset(dataset_id)
        train = [Example(**e) for e in dataset.train]
        base = job.base_llm
        provider_job_id = await tuner.submit(job.alias, base["model_name"], base.get("model_parameters") or {}, train)
        log.info("tuning job %s submitted to %s as %s (%d examples)", job.id, provider, provider_job_id, len(train))
        await self.store.update(job.id, "validating_files", next_in=self.poll_seconds, status="running",
                                provider_job_id=provider_job_id, error=None)

    async def _poll(self, job, tuner) -> None:
        progress = await tuner.poll(job.provider_job_id)
        if progress.state == "running":
            await self.store.update(job.id, job.status, next_in=self.poll_seconds, status="running",
                                    progress=progress.percent, error=None)
        elif progress.state == "succeeded":
            log.info("tuning job %s succeeded: %s", job.id, progress.model_id)
            await self.store.update(job.id, job.status, status="succeeded", progress=100.0, model_id=progress.model_id,
                                    error=None)
        else:
            await self.store.update(job.id, job.status, status=progress.state, progress=progress.percent,
                                    error=progress.error)
