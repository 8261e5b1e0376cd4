"""The review and tuning services built from their explicit dependencies alone, with no Engine: the real
stores on their own SQLite database, and fakes (recorded calls) for what the engine would give them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from types import SimpleNamespace

import pytest

from engine.config import Settings
from engine.review.errors import ReviewConflict, ReviewError, ReviewNotFound
from engine.review.service import ReviewService
from engine.store.database import sessions
from engine.store.models import AnswerRecord, TuningJob
from engine.store.repository import Store
from engine.store.review import ReviewStore
from engine.store.tuning import TuningStore
from engine.tuning.errors import TooFewExamples, TuningConflict, TuningError, TuningNotFound
from engine.tuning.service import TuningService
from engine.web import DraftConflict


@pytest.fixture
async def database(tmp_path):
    store = await Store.open(f"sqlite+aiosqlite:///{tmp_path}/services.db")
    yield store.engine
    await store.close()


async def logged_answer(database, text: str = "Use `tinyviz.plot()` [1].", *, abstained: bool = False) -> str:
    answer_id = str(uuid.uuid4())
    async with sessions(database).begin() as session:
        session.add(AnswerRecord(id=answer_id, channel="api", kb="sample", question="How do I plot?",
                                 search_query="plot", text=text, abstained=abstained, model="extractive"))
    return answer_id


class Calls:
    """An async callable that records each call and returns what it is told to."""

    def __init__(self, result=None) -> None:
        self.calls: list[tuple] = []
        self.result = result

    async def __call__(self, *args, **kwargs):
        self.calls.append((*args, *kwargs.values()))
        return self.result


class Drafts:
    """A frontend's review extension (engine.web.ReviewExtension) with one draft, or one already posted."""

    name = "github"

    def __init__(self, answer_id: str, *, posted: bool = False) -> None:
        self.answer_id, self.posted = answer_id, posted

    async def detail(self, answer_id):
        return {"draft": "a draft"} if answer_id == self.answer_id else None

    def summary(self, part) -> dict:
        return dict(part)

    async def overview(self, since) -> dict:
        return {"drafts": 1}

    async def post_draft(self, answer_id, by, body=None):
        if answer_id != self.answer_id:
            return None
        if self.posted:
            raise DraftConflict("the draft was already posted")
        self.posted = True
        return {"reply": 12}


def review_service(database, index: Calls, extensions=()) -> ReviewService:
    return ReviewService(ReviewStore(database, extensions), index_golden=index, extensions=extensions,
                         quote=lambda text: text.replace(" [1]", ""))


async def test_a_verdict_makes_or_removes_a_golden_record_and_indexes_it(database):
    index = Calls()
    review = review_service(database, index)
    answer_id = await logged_answer(database)

    record, golden = await review.review(answer_id, "approved", "ada")
    assert record.verdict == "approved" and golden.answer == "Use `tinyviz.plot()`."  # quoted as told
    assert len(index.calls) == 1
    with pytest.raises(ReviewError, match="say why"):
        await review.review(answer_id, "rejected", "ada", reason=" ")
    assert len(index.calls) == 1  # a refusal changes nothing to index
    with pytest.raises(ReviewNotFound) as missing:
        await review.review("no-such-answer", "approved", "ada")
    assert isinstance(missing.value, LookupError)
    _record, gone = await review.review(answer_id, "rejected", "ada", reason="wrong call")
    assert gone is None and await review.all_golden_records() == [] and len(index.calls) == 2


async def test_golden_record_changes_are_indexed_and_a_miss_is_not(database):
    index = Calls()
    review = review_service(database, index)
    record = await review.add_golden_record("How do I plot?", "tinyviz.plot()", "ada")
    assert await review.update_golden_record(record.id + 1, "q", "a", "ada") is None
    assert await review.delete_golden_record(record.id + 1, "ada") is False
    assert len(index.calls) == 1
    assert (await review.update_golden_record(record.id, "How do I plot?", "plot()", "ada")).answer == "plot()"
    assert await review.import_golden_csv("question,answer\nWhy?,Because.\n", "ada") == {"added": 1, "skipped": []}
    assert await review.delete_golden_record(record.id, "ada") is True
    assert len(index.calls) == 4
    assert (await review.export_golden("jsonl")).count("\n") == 1
    with pytest.raises(ReviewError, match="jsonl or csv"):
        await review.export_golden("xml")


async def test_a_draft_is_posted_once_and_audited_and_a_second_post_is_a_conflict(database):
    answer_id = await logged_answer(database)
    drafts = Drafts(answer_id)
    review = review_service(database, Calls(), [drafts])
    assert (await review.detail(answer_id))["github"] == {"draft": "a draft"}
    assert await review.post_draft(await logged_answer(database), "ada") is None  # no draft for that answer
    assert await review.post_draft(answer_id, "ada") == {"reply": 12}
    [event] = await review.audit_events()
    assert (event.actor, event.action, event.target, event.detail) == ("ada", "github.post", answer_id, {"reply": 12})
    with pytest.raises(ReviewConflict, match="already posted"):
        await review.post_draft(answer_id, "grace")


@dataclass
class Golden:
    id: int
    question: str
    answer: str


class Chain:
    """The chain answering now, as far as the service looks at it (its primary model's name)."""

    def __init__(self, name: str) -> None:
        self.primary = SimpleNamespace(name=name)


def tuning_service(database, tmp_path, *, records=12, answering="gemini:gemini-2.0-flash", backends=None, **overrides):
    settings = Settings(data_dir=tmp_path / "state", _env_file=None, **overrides)
    golden = Calls([Golden(i, f"How do I do thing {i}?", f"Do it the {i} way.") for i in range(1, records + 1)])
    audit, reload = Calls(), Calls()

    async def chain_in_force():
        return Chain(answering)

    async def no_search(*_args, **_kwargs):
        return []

    service = TuningService(TuningStore(database), settings, golden_records=golden, audit=audit, search=no_search,
                            embedder=lambda: pytest.fail("nothing here needs the embedder"),
                            pipeline_settings=None, chain_in_force=chain_in_force, reload_chain=reload,
                            tuning_backends=lambda: backends or {})
    return service, audit, reload


OPENAI = {"model_provider": "openai", "model_name": "gpt-4o-mini", "model_parameters": {}}


async def test_creating_a_job_refuses_bad_requests_unknown_records_and_too_few_examples(database, tmp_path):
    service, _audit, _reload = tuning_service(database, tmp_path)
    with pytest.raises(TuningError, match="alias"):
        await service.create("", OPENAI, None, {})
    with pytest.raises(TuningError, match="unknown golden records: 99") as unknown:
        await service.create("mine", OPENAI, [1, 99], {})
    assert not isinstance(unknown.value, LookupError)  # a bad request (400), not a missing job (404)
    with pytest.raises(TooFewExamples, match="too few examples: 3 golden records, openai tuning needs at least 10"):
        await service.create("mine", OPENAI, [1, 2, 3], {})
    job = await service.create("mine", OPENAI, None, {"team": "docs"}, "ada")
    assert (job.status, job.alias, job.created_by) == ("queued", "mine", "ada")
    assert [j.id for j in await service.jobs()] == [job.id]


async def test_cancelling_names_an_unknown_job_and_a_job_already_over(database, tmp_path):
    service, _audit, _reload = tuning_service(database, tmp_path)
    with pytest.raises(TuningNotFound):
        await service.cancel("no-such-job")
    job = await service.create("mine", OPENAI, None, {})
    assert (await service.cancel(job.id)).status == "cancelled"  # nothing was sent yet: at once
    with pytest.raises(TuningConflict, match="^the job is already cancelled$"):
        await service.cancel(job.id)


async def succeeded_job(database, **values) -> str:
    job_id = str(uuid.uuid4())
    async with sessions(database).begin() as session:
        session.add(TuningJob(id=job_id, alias="mine", status="succeeded", base_llm=OPENAI, job_metadata={},
                              progress=100.0, cancel_requested=False, model_id="ft:gpt-4o-mini:mine", **values))
    return job_id


async def test_activation_records_the_fallback_audits_and_reloads_and_a_rollback_undoes_it(database, tmp_path):
    service, audit, reload = tuning_service(database, tmp_path)
    queued = await service.create("mine", OPENAI, None, {})
    with pytest.raises(TuningConflict, match="only a succeeded job can be activated"):
        await service.activate(queued.id, "ada")
    with pytest.raises(TuningNotFound):
        await service.activate("no-such-job", "ada")
    pending = await succeeded_job(database, evaluation={"heldout": 1}, grantee="everyone", grant_state="failed")
    with pytest.raises(TuningConflict, match="not shared with everyone yet"):
        await service.activate(pending, "ada")

    job_id = await succeeded_job(database, evaluation={"heldout": 1})
    activation = await service.activate(job_id, "ada")
    assert (activation.model, activation.fallback) == ("openai:ft:gpt-4o-mini:mine", "gemini:gemini-2.0-flash")
    assert audit.calls == [("ada", "model.activate", job_id, {"model": activation.model,
                                                               "fallback": "gemini:gemini-2.0-flash"})]
    assert len(reload.calls) == 1
    assert await service.models_in_force() == ["openai:ft:gpt-4o-mini:mine", "gemini:gemini-2.0-flash"]
    ended = await service.rollback("grace")
    assert ended.model == activation.model and audit.calls[-1][:2] == ("grace", "model.rollback")
    assert len(reload.calls) == 2 and await service.models_in_force() == []
    assert await service.rollback("grace") is None and len(reload.calls) == 2


async def test_a_grant_retry_needs_the_grantee_setting(database, tmp_path):
    service, _audit, _reload = tuning_service(database, tmp_path)
    job_id = await succeeded_job(database, grantee="user:old@example.com", grant_state="failed")
    with pytest.raises(TuningError, match="FIRSTREPLY_TUNED_MODEL_GRANTEE is not set"):
        await service.retry_grant(job_id)
    configured, _audit, _reload = tuning_service(database, tmp_path, tuned_model_grantee="everyone")
    with pytest.raises(TuningNotFound):
        await configured.retry_grant("no-such-job")
    job = await configured.retry_grant(job_id)
    assert (job.grant_state, job.grantee) == ("pending", "everyone")
    assert await configured.retry_grant(job_id) is None  # no failed grant any more


class Tuner:
    """A provider's tuner as the runner uses it: no upload, and a create that returns the provider's job id."""

    submitted_state = "validating_files"
    grantee = None

    def __init__(self) -> None:
        self.created: list[tuple] = []

    async def upload(self, job_id, examples):
        return None

    async def find(self, job_id, alias):
        return None

    async def create(self, job_id, alias, base_model, parameters, examples, file_id):
        self.created.append((alias, base_model, [e.record_id for e in examples]))
        return "ftjob-1"


async def test_the_runner_works_from_the_services_dependencies_not_an_engine(database, tmp_path):
    tuner = Tuner()
    service, _audit, _reload = tuning_service(
        database, tmp_path, backends={"openai": SimpleNamespace(tuner=lambda settings, session: tuner)},
        tuning_variant="plain", tuning_holdout_fraction=0.0)
    runner = service.runner(session=None)
    assert runner.tuners == {"openai": tuner} and not hasattr(runner, "engine")
    job = await service.create("mine", OPENAI, [*range(1, 12)], {})
    assert await runner.run_due() == 1
    assert tuner.created == [("mine", "gpt-4o-mini", [*range(1, 12)])]  # the golden records it was given
    job = await service.job(job.id)
    assert (job.status, job.provider_job_id) == ("validating_files", "ftjob-1")
    assert (await service.dataset_report(job))["train"] == 11


async def test_a_reason_longer_than_the_limit_is_refused_whichever_way_it_came(database):
    # The API checked the reason's length, the review page did not: the limit is the service's now.
    from engine.review.service import MAX_REASON_CHARS

    index = Calls()
    review = review_service(database, index)
    answer_id = await logged_answer(database)
    with pytest.raises(ReviewError, match=f"at most {MAX_REASON_CHARS}"):
        await review.review(answer_id, "rejected", "ada", reason="x" * (MAX_REASON_CHARS + 1))
    assert index.calls == []
    record, _ = await review.review(answer_id, "rejected", "ada", reason="x" * MAX_REASON_CHARS)
    assert record.verdict == "rejected"
