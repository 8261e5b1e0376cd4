"""The background runner: moves tuning jobs along, one step at a time, from the database.

queued → validating_files (build the training set from golden records, validate it, keep a
held-out slice; upload it where the provider takes a file; create the provider's job) → the
provider's own statuses as it reports them (OpenAI: validating_files, queued, running; Gemini:
running) → succeeded | failed | cancelled. A tuned Gemini model shared with a grantee is then
granted access in a step of its own, retried on its own, that never loses the model.

Every step is recorded before the next, so a restarted runner picks each job up where it was:
a submitted job is simply polled again, and a job whose create may have reached the provider
(``submit_attempts`` counted, no provider job id) is looked for before anything is sent again.
A provider's 4xx ends the job with the provider's message; a 5xx, a 429 or a lost connection
is tried again after a backoff that doubles (at least the provider's Retry-After), at most
``max_retries`` times. Whatever else goes wrong with one job fails that job alone: the round
goes on to the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from engine.store.tuning import TERMINAL, TuningStore
from engine.tuning.dataset import Example, build_examples, split_holdout, too_few_examples, validate
from engine.tuning.providers import Tuner, TuningProviderError
from engine.tuning.request import TuningRequestError, check_request

if TYPE_CHECKING:
    from engine.index.retriever import Hit
    from engine.store.models import GoldenRecord, TuningJob

log = logging.getLogger(__name__)
LEASE_SECONDS = 300.0
MAX_RETRIES = 8
MAX_BACKOFF_SECONDS = 1800.0


class TuningRunner:
    def __init__(self, store: TuningStore, tuners: dict[str, Tuner], *,
                 golden_records: Callable[[], Awaitable[list[GoldenRecord]]],
                 search: Callable[..., Awaitable[list[Hit]]], search_k: int, redact: Callable[[str], str] = str,
                 poll_seconds: float = 30.0, holdout: float = 0.1, variant: str = "rag",
                 max_retries: int = MAX_RETRIES) -> None:
        """``tuners``: provider name -> tuner; ``golden_records``: the review's, read when a job's training set is
        built; ``search`` (and ``search_k``): the retrieval a ``rag`` example is built with; ``redact``: takes known
        secrets out of the errors a job keeps. :meth:`engine.tuning.service.TuningService.runner` builds one."""
        self.store = store
        self.tuners = tuners
        self.golden_records = golden_records
        self.search = search
        self.search_k = search_k
        self.redact = redact
        self.poll_seconds = poll_seconds
        self.holdout = holdout
        self.variant = variant
        self.max_retries = max_retries
        self.wake = asyncio.Event()

    async def _update(self, job_id: str, expect: str, **values: Any) -> TuningJob | None:
        """``store.update`` with known secrets taken out of the errors it keeps: a provider's error may echo
        the credential, and a job's error is stored and shown by the API and the tuning page."""
        for name in ("error", "grant_error"):
            if isinstance(values.get(name), str):
                values[name] = self.redact(values[name])
        return await self.store.update(job_id, expect, **values)

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

    def _backoff(self, retries: int, retry_after: float | None) -> float:
        wait: float = min(self.poll_seconds * 2 ** (retries - 1), MAX_BACKOFF_SECONDS)
        return max(wait, min(retry_after, MAX_BACKOFF_SECONDS)) if retry_after else wait

    async def step(self, job: TuningJob) -> None:
        """One step of one job; whatever fails is recorded on that job, from the status it has now."""
        try:
            if job.status == "succeeded" and job.grant_state == "pending":
                await self._grant(job, self.tuners.get(job.base_llm["model_provider"]))
            else:
                await self._step(job)
        except (TuningProviderError, TuningRequestError) as error:
            await self._failed_step(job.id, error)
        except Exception as error:  # a defect, or data of this job's that nothing checked: it fails alone
            log.exception("tuning job %s: unexpected error", job.id)
            try:
                await self._give_up(job.id, f"internal error: {type(error).__name__}: {error}")
            except Exception:  # the database is down too: the lease runs out and the job is looked at again
                log.exception("tuning job %s: could not record the error", job.id)

    async def _failed_step(self, job_id: str, error: TuningProviderError | TuningRequestError) -> None:
        current = await self.store.job(job_id)
        if current is None or current.status in TERMINAL:
            return
        message = str(error)
        if isinstance(error, TuningProviderError) and error.retryable:  # a request the rules refuse is never retried
            retries = current.retries + 1
            if retries <= self.max_retries:
                log.info("tuning job %s: %s; trying again later", job_id, error)
                await self._update(job_id, current.status, next_in=self._backoff(retries, error.retry_after),
                                        retries=retries, error=message)
                return
            message = f"gave up after {retries} tries: {error}"
        log.warning("tuning job %s failed: %s", job_id, message)
        await self._update(job_id, current.status, status="failed", error=message, retries=0)

    async def _give_up(self, job_id: str, message: str) -> None:
        current = await self.store.job(job_id)
        if current is None:
            return
        if current.status == "succeeded":  # the model exists: only its grant failed
            await self._update(job_id, "succeeded", grant_state="failed", grant_error=message, retries=0)
        elif current.status not in TERMINAL:
            await self._update(job_id, current.status, status="failed", error=message, retries=0)

    async def _step(self, job: TuningJob) -> None:
        provider = job.base_llm["model_provider"]
        tuner = self.tuners.get(provider)
        if job.cancel_requested:
            await self._cancel(job, tuner)
        elif tuner is None:
            await self._update(job.id, job.status, status="failed", error=f"no tuner for provider {provider!r}")
        elif not job.provider_job_id:
            await self._prepare_and_submit(job, tuner)
        else:
            await self._poll(job, tuner)

    async def _cancel(self, job: TuningJob, tuner: Tuner | None) -> None:
        provider_job_id = job.provider_job_id
        if not provider_job_id and job.submit_attempts and tuner is not None:  # an earlier create may have got through
            provider_job_id = await tuner.find(job.id, job.alias)
        if provider_job_id and tuner is not None:
            await tuner.cancel(provider_job_id)
        await self._update(job.id, job.status, status="cancelled", error=job.error or "cancelled")

    async def _prepare_and_submit(self, job: TuningJob, tuner: Tuner) -> None:
        if job.status == "queued":
            updated = await self._update(job.id, "queued", next_in=LEASE_SECONDS, status="validating_files")
            if updated is None:  # cancelled meanwhile
                return
            job = updated
        alias, base = check_request(job.alias, job.base_llm)  # the rules may have changed since it was queued
        provider = base["model_provider"]
        dataset = await self.store.dataset(job.dataset_id) if job.dataset_id else None
        if dataset is None:
            records = await self.golden_records()
            if job.golden_records is not None:
                wanted = set(job.golden_records)
                records = [r for r in records if r.id in wanted]
            examples = await build_examples(records, self.search, variant=self.variant, k=self.search_k)
            kept, dropped = validate(examples, provider)
            train, heldout = split_holdout(kept, self.holdout)
            report = {"examples": len(examples), "kept": len(kept), "dropped": dropped, "train": len(train),
                      "heldout": len(heldout), "variant": self.variant}
            if refusal := too_few_examples(provider, len(train), "to train on after validation and the held-out slice"):
                reasons = "; ".join(f"record {d['record_id']}: {d['reason']}" for d in dropped[:5])
                await self._update(job.id, "validating_files", status="failed",
                                   error=refusal + (f" (dropped: {reasons})" if reasons else ""))
                return
            dataset_id = await self.store.save_dataset(provider, self.variant, [e.as_dict() for e in train],
                                                       [e.as_dict() for e in heldout], report)
            updated = await self._update(job.id, "validating_files", next_in=LEASE_SECONDS, dataset_id=dataset_id)
            if updated is None or updated.cancel_requested:
                return
            job = updated
            dataset = await self.store.dataset(dataset_id)
        assert dataset is not None  # found, or saved just now
        train = [Example(**e) for e in dataset.train]
        if job.provider_file_id is None and (file_id := await tuner.upload(job.id, train)):
            updated = await self._update(job.id, job.status, next_in=LEASE_SECONDS, provider_file_id=file_id, retries=0)
            if updated is None:
                return
            job = updated
        # Counted before the call: if its answer is lost, the next attempt looks for the job instead of making another.
        provider_job_id = await tuner.find(job.id, alias) if job.submit_attempts else None
        if provider_job_id is None:
            updated = await self._update(job.id, job.status, next_in=LEASE_SECONDS,
                                         submit_attempts=job.submit_attempts + 1)
            if updated is None:
                return
            job = updated
            provider_job_id = await tuner.create(job.id, alias, base["model_name"], base["model_parameters"], train,
                                                 job.provider_file_id)
        log.info("tuning job %s submitted to %s as %s (%d examples)", job.id, provider, provider_job_id, len(train))
        submitted = await self._update(job.id, job.status, next_in=self.poll_seconds, status=tuner.submitted_state,
                                            provider_job_id=provider_job_id, error=None, retries=0)
        if submitted is None or submitted.cancel_requested:  # cancelled (perhaps by another process) while it was sent
            await self._cancel_submitted(job.id, provider_job_id, tuner)

    async def _cancel_submitted(self, job_id: str, provider_job_id: str, tuner: Tuner) -> None:
        """A cancel came while the create was on its way: it wins. The provider's job is stopped and kept on record."""
        current = await self.store.job(job_id)
        if current is None or not current.cancel_requested:
            return
        log.info("tuning job %s was cancelled while it was submitted: cancelling %s", job_id, provider_job_id)
        if current.status in TERMINAL:  # another runner already ended it, without the job id it could not find yet
            await tuner.cancel(provider_job_id)
            await self.store.update(job_id, current.status, provider_job_id=provider_job_id)
        else:
            await self._cancel(current, tuner)

    async def _poll(self, job: TuningJob, tuner: Tuner) -> None:
        assert job.provider_job_id is not None  # _step polls only submitted jobs
        progress = await tuner.poll(job.provider_job_id)
        if progress.state == "succeeded":
            log.info("tuning job %s succeeded: %s", job.id, progress.model_id)
            grant = {"grantee": tuner.grantee, "grant_state": "pending", "grant_error": None} if tuner.grantee else {}
            succeeded = await self._update(job.id, job.status, status="succeeded", progress=100.0,
                                           model_id=progress.model_id, provider_progress=progress.detail, error=None,
                                           retries=0, **grant)
            if succeeded is not None and succeeded.grant_state == "pending":
                await self._grant(succeeded, tuner)
        elif progress.state in TERMINAL:
            await self._update(job.id, job.status, status=progress.state, progress=progress.percent,
                                    provider_progress=progress.detail, error=progress.error, retries=0)
        else:
            await self._update(job.id, job.status, next_in=self.poll_seconds, status=progress.state,
                                    progress=progress.percent, provider_progress=progress.detail, error=None, retries=0)

    async def _grant(self, job: TuningJob, tuner: Tuner | None) -> None:
        """Share the tuned model with the grantee; a refusal keeps the model and shows on the job, to retry."""
        if tuner is not None and tuner.grantee and tuner.grantee != job.grantee:  # the setting changed since: use it now
            updated = await self._update(job.id, "succeeded", next_in=LEASE_SECONDS, grantee=tuner.grantee)
            if updated is None:
                return
            job = updated
        if tuner is None or not job.grantee or not job.model_id:
            await self._update(job.id, "succeeded", grant_state="failed", grant_error="nothing to grant access to")
            return
        try:
            await tuner.grant(job.model_id, job.grantee)
        except TuningProviderError as error:
            retries = job.retries + 1
            if error.retryable and retries <= self.max_retries:
                await self._update(job.id, "succeeded", next_in=self._backoff(retries, error.retry_after),
                                        retries=retries, grant_error=str(error))
            else:
                log.warning("tuning job %s: the grant to %s failed: %s", job.id, job.grantee, error)
                await self._update(job.id, "succeeded", grant_state="failed", grant_error=str(error), retries=0)
            return
        await self._update(job.id, "succeeded", grant_state="granted", grant_error=None, retries=0)
