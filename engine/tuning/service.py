"""``TuningService``: fine-tuning as maintainers drive it, whoever asks (the API, the tuning page, the CLI).

Jobs (queue one after the checks that need no provider, cancel, retry a failed grant), their datasets,
evaluation of a tuned model against the one answering now, activation and roll-back, the training
set export, and the background :class:`~engine.tuning.runner.TuningRunner` built with what it needs.

Its dependencies are given, never looked up: the store, the golden records and the audit trail (the
review's), the search the answer pipeline uses and its settings, the embedder (loaded on first use),
the provider registry's tuning backends and provider factory, and the engine's answering side (the
chain in force, and a rebuild after an activation). Everything it refuses is a
:class:`~engine.tuning.errors.TuningError`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from engine.answer.pipeline import PipelineSettings
from engine.config import Settings
from engine.llm import registry
from engine.llm.chain import ProviderChain
from engine.llm.factory import build_provider
from engine.llm.retry import RetryPolicy
from engine.logs import Redactor, secrets_of
from engine.store.models import ModelActivation, TuningJob
from engine.store.tuning import TuningStore
from engine.tuning.dataset import LIMITS, Example, build_examples, export, too_few_examples, validate
from engine.tuning.errors import TooFewExamples, TuningConflict, TuningError, TuningNotFound
from engine.tuning.evaluation import score
from engine.tuning.request import check_request

if TYPE_CHECKING:
    import aiohttp

    from engine.index.embedder import Embedder
    from engine.index.retriever import Hit
    from engine.llm.base import Provider
    from engine.store.models import GoldenRecord
    from engine.tuning.providers import Tuner
    from engine.tuning.runner import TuningRunner

Search = Callable[..., Awaitable[list["Hit"]]]


def activated(in_force: list[ModelActivation]) -> list[str]:
    """The activated models in answering order: the newest activation's, then what answered before it
    (its recorded fallback), then what answered before that, for as long as each kept a fallback."""
    specs: list[str] = []
    for activation in in_force:  # newest first
        specs = specs or [activation.model]
        if not activation.fallback:
            break
        specs.append(activation.fallback)
    return specs


def build_tuners(settings: Settings, session: aiohttp.ClientSession,
                 backends: dict[str, registry.TuningBackend] | None = None) -> dict[str, Tuner]:
    """Each tunable provider's tuner (by provider kind), built from the registry's tuning backends."""
    backends = registry.tuning_backends() if backends is None else backends
    return {kind: backend.tuner(settings, session) for kind, backend in backends.items()}


def require_credentials(spec: str, settings: Settings) -> None:
    """Refuse (a :class:`TuningError` naming the setting) to call a model whose provider lacks its credential."""
    if (setting := registry.missing_setting(spec, settings)) is not None:
        kind = registry.kind_of(spec)
        raise TuningError(f"{setting} is required to call a {kind.title if kind else spec} model")


class TuningService:
    def __init__(self, store: TuningStore, settings: Settings, *,
                 golden_records: Callable[[], Awaitable[list[GoldenRecord]]],
                 audit: Callable[..., Awaitable[None]],
                 search: Search,
                 embedder: Callable[[], Embedder],
                 pipeline_settings: PipelineSettings,
                 chain_in_force: Callable[[], Awaitable[ProviderChain]],
                 reload_chain: Callable[[], Awaitable[None]],
                 tuning_backends: Callable[[], dict[str, registry.TuningBackend]] = registry.tuning_backends,
                 provider: Callable[[str, Settings], Provider] = build_provider) -> None:
        """``golden_records``/``audit``: the review's; ``search``: the pipeline's (``answer_search``: hits widened to sections); ``embedder``: returns
        the embedder (loaded when first called); ``chain_in_force``: the chain answering now as the database says;
        ``reload_chain``: answer with the activated models from now on; ``tuning_backends`` and ``provider``: the
        provider registry's tuning backends and its provider factory."""
        self.store = store
        self.settings = settings
        self._golden_records = golden_records
        self._audit = audit
        self._search = search
        self._embedder = embedder
        self._pipeline_settings = pipeline_settings
        self._chain_in_force = chain_in_force
        self._reload_chain = reload_chain
        self._tuning_backends = tuning_backends
        self._provider = provider

    # -- jobs -----------------------------------------------------------------------------------------

    async def create(self, alias: Any, base_llm: Any, golden_records: list[int] | None, metadata: dict[str, Any],
                     by: str | None = None) -> TuningJob:
        """Queue a tuning job, after the checks that need no provider: the alias and hyperparameters as the provider
        takes them (:mod:`engine.tuning.request`), the golden records asked for, and enough of them."""
        alias, base_llm = check_request(alias, base_llm)  # a TuningRequestError is a TuningError
        provider = base_llm["model_provider"]
        records = await self._golden_records()
        if golden_records is not None:
            known = {r.id for r in records}
            missing = sorted(set(golden_records) - known)
            if missing:
                raise TuningError(f"unknown golden records: {', '.join(map(str, missing[:10]))}")
            records = [r for r in records if r.id in set(golden_records)]
        if refusal := too_few_examples(provider, len(records), "golden records"):
            raise TooFewExamples(refusal)
        return await self.store.create(alias, base_llm, golden_records, metadata, by)

    async def jobs(self, limit: int = 100) -> list[TuningJob]:
        """The jobs, newest first."""
        return await self.store.jobs(limit)

    async def job(self, job_id: str) -> TuningJob | None:
        return await self.store.job(job_id)

    async def dataset_report(self, job: TuningJob) -> dict[str, Any] | None:
        """The validation report of a job's dataset (kept, dropped and why, held out), once the runner built it."""
        dataset = await self.store.dataset(job.dataset_id) if job.dataset_id else None
        return dataset.report if dataset else None

    async def count_by_status(self) -> dict[str, int]:
        return await self.store.count_by_status()

    async def _known(self, job_id: str) -> TuningJob:
        job = await self.store.job(job_id)
        if job is None:
            raise TuningNotFound(f"no such fine-tuning job: {job_id}")
        return job

    async def cancel(self, job_id: str) -> TuningJob:
        """Ask for a job to stop (a queued one stops at once, a running one at the runner's next look).
        :class:`TuningNotFound` for an unknown job, :class:`TuningConflict` for one already over."""
        job = await self.store.request_cancel(job_id)
        if job is None:
            known = await self._known(job_id)
            raise TuningConflict(f"the job is already {known.status}")
        return job

    async def retry_grant(self, job_id: str) -> TuningJob | None:
        """Try the permission grant of a job's tuned model again (after it failed), to the grantee configured now
        (FIRSTREPLY_TUNED_MODEL_GRANTEE, perhaps corrected since); None if none failed."""
        await self._known(job_id)
        grantee = self.settings.tuning.tuned_model_grantee
        if grantee is None:
            raise TuningError("FIRSTREPLY_TUNED_MODEL_GRANTEE is not set: say who may call the tuned model "
                              "(everyone, user:EMAIL or group:EMAIL), then retry the grant")
        return await self.store.retry_grant(job_id, grantee)

    @staticmethod
    def _check_granted(job: TuningJob) -> None:
        if job.grant_state in ("pending", "failed"):
            raise TuningConflict(f"the tuned model is not shared with {job.grantee} yet (grant {job.grant_state}"
                                 + (f": {job.grant_error}" if job.grant_error else "")
                                 + "); retry the grant with POST /api/v1/finetunings/{id}/grant or `firstreply tune grant`")

    # -- evaluation and activation ---------------------------------------------------------------------

    async def evaluate(self, job_id: str) -> dict[str, Any]:
        """The tuned model against the model answering now, on the job's held-out slice (kept on the job)."""
        job = await self._known(job_id)
        if job.status != "succeeded" or not job.model_id:
            raise TuningConflict(f"only a succeeded job can be evaluated (this one is {job.status})")
        self._check_granted(job)
        dataset = await self.store.dataset(job.dataset_id) if job.dataset_id else None
        heldout = [Example(**e) for e in (dataset.heldout if dataset else [])]
        if not heldout:
            raise TuningError("the job kept no held-out examples (FIRSTREPLY_TUNING_HOLDOUT_FRACTION is 0?)")
        spec = f"{job.base_llm['model_provider']}:{job.model_id}"
        require_credentials(spec, self.settings)
        s = self.settings
        candidate = ProviderChain([self._provider(spec, s)], RetryPolicy(attempts=s.answer.llm_retries))
        judge = self._provider(s.tuning.tuning_judge, s) if s.tuning.tuning_judge else None
        try:
            current_chain = await self._chain_in_force()  # compared with the model really answering now
            embedder = self._embedder()
            current = await score(current_chain, self._search, embedder, self._pipeline_settings, heldout, judge)
            tuned = await score(candidate, self._search, embedder, self._pipeline_settings, heldout, judge)
        finally:
            await candidate.aclose()
            if judge is not None:
                await judge.aclose()
        evaluation: dict[str, Any] = {"heldout": len(heldout), "current": current.as_dict(), "candidate": tuned.as_dict()}
        await self.store.update(job.id, "succeeded", evaluation=evaluation)
        return evaluation

    async def current_model(self) -> str:
        """The model answering now, as the database says it should be."""
        return (await self._chain_in_force()).primary.name

    async def activate(self, job_id: str, by: str, *, fallback: bool = True) -> ModelActivation:
        """Make a succeeded, evaluated job's model the one every engine process answers with (evaluated first if it
        wasn't); with ``fallback``, the model that answered until now (and what it fell back to) answers when the
        tuned one fails."""
        job = await self._known(job_id)
        if job.status != "succeeded" or not job.model_id:
            raise TuningConflict(f"only a succeeded job can be activated (this one is {job.status})")
        self._check_granted(job)
        evaluation = job.evaluation or await self.evaluate(job_id)
        answering = await self.current_model()
        previous = answering if fallback and answering != "extractive" else None
        activation = await self.store.activate(f"{job.base_llm['model_provider']}:{job.model_id}", previous, job.id,
                                               evaluation, by)
        await self._audit(by, "model.activate", job.id, {"model": activation.model, "fallback": previous})
        await self._reload_chain()
        return activation

    async def rollback(self, by: str) -> ModelActivation | None:
        """End the activation in force (the one before it answers again); None when none is in force."""
        ended = await self.store.roll_back(by)
        if ended is not None:
            await self._audit(by, "model.rollback", ended.job_id, {"model": ended.model})
            await self._reload_chain()
        return ended

    async def activations(self, limit: int = 50) -> list[ModelActivation]:
        """Every activation, newest first, rolled back or not."""
        return await self.store.activations(limit)

    async def models_in_force(self) -> list[str]:
        """The activated models, in answering order (empty: the configured ones answer)."""
        return activated(await self.store.in_force())

    # -- training data and the runner -------------------------------------------------------------------

    async def training_set(self, provider: str, fmt: str = "jsonl", variant: str | None = None) -> tuple[str, list[dict[str, Any]]]:
        """Every golden record as the provider's training data (validated), and what was dropped and why."""
        if provider not in LIMITS:
            raise TuningError(f"provider must be one of {', '.join(LIMITS)}")
        examples = await build_examples(await self._golden_records(), self._search,
                                        variant=variant or self.settings.tuning.tuning_variant,
                                        k=self.settings.index.search_k)
        kept, dropped = validate(examples, provider)
        return export(kept, provider, fmt), dropped

    def tuners(self, session: aiohttp.ClientSession) -> dict[str, Tuner]:
        """Each tunable provider's tuner, calling out through ``session`` (an ``aiohttp.ClientSession``)."""
        return build_tuners(self.settings, session, self._tuning_backends())

    def runner(self, session: aiohttp.ClientSession) -> TuningRunner:
        """The background runner that moves this service's jobs along (see :mod:`engine.tuning.runner`)."""
        from engine.tuning.runner import TuningRunner

        s = self.settings
        return TuningRunner(self.store, self.tuners(session), golden_records=self._golden_records, search=self._search,
                            search_k=s.index.search_k, redact=Redactor(secrets_of(s)).redact,
                            poll_seconds=s.tuning.tuning_poll_seconds, holdout=s.tuning.tuning_holdout_fraction,
                            variant=s.tuning.tuning_variant)
