"""Workers that drain the durable job queue: claim a job, run its handler, settle it.

A transient failure puts the job back with jittered exponential backoff (never sooner than
GitHub's ``Retry-After``; after a secondary rate limit that names no wait, at least
``secondary_limit_seconds``, doubling per attempt); a permanent one, or running out of attempts, ends it as failed
with the reason. While a job runs, its lease is renewed, so only a dead worker's jobs are
taken over by others.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import uuid

from engine.logs import CORRELATION, REDACTED, Redactor
from github_app.api import PermanentError, TransientError
from github_app.config import AppConfig
from github_app.handlers import Handlers
from github_app.store import GitHubStore, Job

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 900.0
# GitHub's tokens by their documented prefixes (installation tokens are ghs_), and the older v1 form:
# an installation token is minted at run time, so it is in no setting to redact by value.
_GITHUB_TOKEN = re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|v1\.[0-9a-f]{40})\b")


def backoff(attempt: int, base: float, retry_after: float | None = None, *, rng: random.Random | None = None) -> float:
    """Seconds before the next try: base·2^(attempt-1), capped, with jitter; at least what GitHub asked for."""
    delay = min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempt - 1)) * (rng or random).uniform(0.5, 1.0)
    return max(delay, retry_after or 0.0)


def secondary_limit_wait(attempt: int, base: float) -> float:
    """Seconds before the next try after a secondary rate limit that named no wait: at least ``base``
    (GitHub says a minute), doubling with each attempt, capped."""
    return min(MAX_BACKOFF_SECONDS, base * 2 ** max(0, attempt - 1))


class Worker:
    def __init__(self, config: AppConfig, store: GitHubStore, handlers: Handlers, wake: asyncio.Event,
                 name: str | None = None, metrics=None, before_claim=None) -> None:
        self.metrics = metrics
        self.before_claim = before_claim  # awaited before taking a job (the App lets a burst be acknowledged first)
        self.config = config
        self.store = store
        self.handlers = handlers
        self.wake = wake
        self.name = name or f"worker-{uuid.uuid4().hex[:12]}"
        self._redactor = Redactor([config.private_key, config.webhook_secret])

    def redact(self, text: str) -> str:
        """A job's error as it may be stored (and shown on the review pages): no key, secret or token in it."""
        return _GITHUB_TOKEN.sub(REDACTED, self._redactor.redact(text))

    async def run_forever(self) -> None:
        while True:
            if self.before_claim is not None:
                await self.before_claim()
            try:
                job = await self.store.claim(self.name, self.config.lease_seconds)
            except Exception:  # the database blinked: keep the worker alive and try again
                log.exception("%s: could not claim a job", self.name)
                job = None
            if job is not None:
                await self.run(job)
                continue
            try:
                await asyncio.wait_for(self.wake.wait(), self.config.poll_seconds)
            except asyncio.TimeoutError:
                pass
            self.wake.clear()

    async def drain(self) -> int:
        """Run every due job now, then return how many ran (for the CLI and tests)."""
        ran = 0
        while (job := await self.store.claim(self.name, self.config.lease_seconds)) is not None:
            await self.run(job)
            ran += 1
        return ran

    def _count(self, job: Job, result: str) -> None:
        if self.metrics is not None:
            self.metrics.github_jobs.labels(job.kind, result).inc()

    async def _heartbeat(self, job: Job) -> None:
        while True:
            await asyncio.sleep(self.config.lease_seconds / 3)
            await self.store.extend(job.id, self.name, self.config.lease_seconds)

    async def run(self, job: Job) -> None:
        CORRELATION.set(f"delivery:{job.delivery_id}")
        config = self.config
        if job.attempts > config.max_attempts:  # e.g. a job whose worker died every time it ran it
            await self.store.fail(job.id, self.name,
                                  self.redact(f"gave up after {job.attempts - 1} attempts; last error: {job.last_error}"))
            return
        heartbeat = asyncio.create_task(self._heartbeat(job))
        try:
            outcome = await self.handlers.run(job)
        except asyncio.CancelledError:  # shutting down: hand the job straight back for the next worker
            await asyncio.shield(self.store.retry_later(job.id, self.name, "interrupted by shutdown", 0))
            raise
        except PermanentError as error:
            log.warning("job %s (%s) failed: %s", job.id, job.kind, self.redact(str(error)))
            await self.store.fail(job.id, self.name, self.redact(str(error)))
            self._count(job, "failed")
        except Exception as error:
            retry_after = error.retry_after if isinstance(error, TransientError) else None
            if isinstance(error, TransientError) and error.secondary:
                retry_after = max(retry_after or 0.0, secondary_limit_wait(job.attempts, config.secondary_limit_seconds))
            if not isinstance(error, TransientError):
                log.exception("job %s (%s) raised", job.id, job.kind)
            message = self.redact(str(error) if isinstance(error, TransientError) else f"{type(error).__name__}: {error}")
            if job.attempts >= config.max_attempts:
                await self.store.fail(job.id, self.name, f"{message} (gave up after {job.attempts} attempts)")
                self._count(job, "failed")
            else:
                self._count(job, "retry")
                delay = backoff(job.attempts, config.retry_base_seconds, retry_after)
                log.info("job %s (%s) will retry in %.1fs: %s", job.id, job.kind, delay, message)
                await self.store.retry_later(job.id, self.name, message, delay)
        else:
            log.info("job %s (%s): %s", job.id, job.kind, outcome)
            await self.store.finish(job.id, self.name, outcome)
            self._count(job, "done")
        finally:
            heartbeat.cancel()
