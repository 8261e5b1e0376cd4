"""Fine-tuning: training sets from golden records, tuning jobs against loopback fakes of Gemini's tuning
REST API (OAuth through google-auth) and of OpenAI-compatible fine-tuning, evaluation, activation."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from fakes import gemini, openai
from fakes.gemini_tuning import FakeGeminiTuning
from fakes.server import serve
from tests_support import key_with_every_role

from engine.api.keys import TUNING_TASK
from engine.tuning.dataset import Example, export, split_holdout, validate
from firstreply.serve import build_app  # the app `firstreply serve` runs

KEY = "sk-tuning"
TOPICS = ["zoom the camera in", "zoom out", "save a screenshot", "install tinyviz", "install from source",
          "change the background colour", "draw spheres", "export a PNG", "use a notebook", "move the camera",
          "rotate the scene", "set the window size", "render offscreen", "pick colours", "make arrays of points",
          "record a movie", "reset the camera", "use the legacy API", "read the changelog", "report a bug",
          "set a title", "hide the axes", "use dark mode", "run the examples"]


async def golden(engine, n: int = 24) -> None:
    """Golden records seeded in the store alone (not indexed: the sample index is shared by the session's tests)."""
    await engine.start()
    for i, topic in enumerate(TOPICS[:n]):
        await engine.review_service.store.add_golden_record(f"How do I {topic}?", f"Here is how to {topic}: step {i}.", "ada")


@pytest.fixture
async def fake_tuning(tmp_path, monkeypatch, rsa_key):
    fake = FakeGeminiTuning(public_key=rsa_key.public_pem)
    async with serve(fake.app()) as url:
        fake.url = url
        # Application-default credentials: a service account whose token endpoint is the fake's.
        credentials = tmp_path / "service-account.json"
        credentials.write_text(json.dumps({
            "type": "service_account", "project_id": "tinyviz", "private_key_id": "k1",
            "private_key": rsa_key.private_pem.decode(), "client_email": "tuner@tinyviz.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": f"{url}/token"}))
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(credentials))
        yield fake


@pytest.fixture
async def fake_openai():
    fake = openai.FakeOpenAI()
    async with serve(fake.app()) as url:
        fake.url = url
        yield fake


def gemini_settings(fake_gemini, fake_tuning, **more) -> dict:
    return {**dict(providers=["gemini:gemini-2.0-flash"], gemini_api_key=gemini.API_KEY, gemini_base_url=fake_gemini.url,
                   gemini_tuning_base_url=fake_tuning.url, tuning_poll_seconds=0.05, api_keys=[key_with_every_role(KEY)],
                   rate_limit_per_minute=10_000), **more}


def openai_settings(fake_openai, **more) -> dict:
    return {**dict(providers=["openai:gpt-4o-mini"], openai_base_url=f"{fake_openai.url}/v1", openai_api_key=openai.API_KEY,
                   tuning_poll_seconds=0.05, api_keys=[key_with_every_role(KEY)], rate_limit_per_minute=10_000), **more}


class Api:
    def __init__(self, url: str, session: aiohttp.ClientSession, app=None) -> None:
        self.url, self.session, self.app = url, session, app

    async def stop_background_runner(self) -> None:
        """Stop the runner ``serve`` starts, so that a test's own runner is the only one moving jobs on."""
        task, _session = self.app[TUNING_TASK]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def __call__(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        async with self.session.request(method, self.url + path, json=body,
                                        headers={"Authorization": f"Bearer {KEY}"}) as response:
            return response.status, await response.json()

    async def until(self, job_id: str, *states: str, timeout: float = 30) -> dict:
        for _ in range(int(timeout / 0.05)):
            status, job = await self("GET", f"/api/v1/finetunings/{job_id}")
            assert status == 200, job
            # A job succeeds, then shares its model in a step of its own: until that step is over, it is still moving.
            if job["status"] in states and (job.get("permission") or {}).get("state") != "pending":
                return job
            await asyncio.sleep(0.05)
        raise AssertionError(f"job never reached {states}: {job}")


@pytest.fixture
async def api_for(make_engine):
    opened = []

    async def start(**settings):
        engine = make_engine(**settings)
        app = build_app(engine)
        server = serve(app)
        url = await server.__aenter__()
        session = aiohttp.ClientSession()
        opened.append((server, session))
        await golden(engine)
        return engine, Api(url, session, app)

    yield start
    for server, session in opened:
        await session.close()
        await server.__aexit__(None, None, None)


CREATE = {"alias": "tinyviz-helper", "base_llm": {"model_provider": "gemini", "model_name": "gemini-1.5-flash-001-tuning",
                                                  "model_parameters": {"n_epochs": 3, "batch_size": 4, "learning_rate": 0.001}},
          "golden_records": None, "metadata": {"ticket": "Q4"}}
OPENAI_BASE = {"model_provider": "openai", "model_name": "gpt-4o-mini", "model_parameters": {}}
JOB_FIELDS = {"id", "alias", "status", "error", "base_llm", "finetuning_file_id", "finetuning_job_id", "model_id",
              "created_at", "golden_records", "metadata", "progress", "provider_progress", "permission",
              "cancel_requested", "evaluation"}


async def drive(engine, runner, job_id: str, *states: str, rounds: int = 60):
    """Run the runner's rounds until the job reaches one of ``states``."""
    for _ in range(rounds):
        await runner.run_due()
        job = await engine.tuning_service.job(job_id)
        if job.status in states:
            return job
        await asyncio.sleep(0.06)
    raise AssertionError(f"job never reached {states}: {job.status} {job.error}")


async def test_a_gemini_tuning_job_runs_to_a_permitted_model_that_is_evaluated_activated_and_rolled_back(
        api_for, fake_gemini, fake_tuning):
    engine, api = await api_for(**gemini_settings(fake_gemini, fake_tuning, tuned_model_grantee="EVERYONE"))
    status, job = await api("POST", "/api/v1/finetunings", CREATE)
    assert status == 201 and job["status"] == "queued" and job["alias"] == "tinyviz-helper"
    assert set(job) == JOB_FIELDS
    done = await api.until(job["id"], "succeeded", "failed")
    assert done["status"] == "succeeded" and done["model_id"].startswith("tunedModels/tinyviz-helper-"), done
    assert done["progress"] == 100.0 and done["finetuning_job_id"].startswith(done["model_id"] + "/operations/")
    assert done["finetuning_file_id"] is None  # Gemini takes the examples inline
    assert done["permission"] == {"grantee": "everyone", "state": "granted", "error": None}
    assert done["dataset"] == {"examples": 24, "kept": 24, "dropped": [], "train": 22, "heldout": 2, "variant": "rag"}

    [model] = fake_tuning.models.values()
    task = model.body["tuningTask"]  # as Google reads it: the proto JSON mapping of TunedModel
    assert task["hyperparameters"] == {"epochCount": 3, "batchSize": 4, "learningRate": 0.001}
    assert model.body["displayName"] == "tinyviz-helper" and model.body["baseModel"] == "models/gemini-1.5-flash-001-tuning"
    examples = task["trainingData"]["examples"]["examples"]
    assert len(examples) == 24 - 2  # 10% held out
    assert "Answer only from the numbered context passages" in examples[0]["textInput"]
    assert "camera" in examples[0]["textInput"].lower() or examples[0]["textInput"].count("[") >= 1
    assert model.permissions == [{"granteeType": "EVERYONE", "role": "READER"}]
    assert fake_tuning.refused_without_token == 0 and fake_tuning.tokens  # OAuth, through google-auth

    status, evaluation = await api("POST", f"/api/v1/finetunings/{job['id']}/evaluate")
    assert status == 200 and evaluation["heldout"] == 2
    assert evaluation["current"]["model"] == "gemini:gemini-2.0-flash"
    assert evaluation["candidate"]["model"] == f"gemini:{done['model_id']}"
    assert set(evaluation["candidate"]) >= {"similarity", "citation_rate", "abstention_rate"}

    status, activation = await api("POST", f"/api/v1/finetunings/{job['id']}/activate", {"by": "ada"})
    assert status == 200 and activation["model"] == f"gemini:{done['model_id']}"
    # The fallback is the model that answered before, not the tuning base snapshot (which may not even serve).
    assert activation["fallback"] == "gemini:gemini-2.0-flash" and activation["activated_by"] == "api:tests"
    fake_gemini.requests.clear()
    async with api.session.post(api.url + "/v1/answer", json={"question": "How do I zoom the camera in?"},
                                headers={"Authorization": f"Bearer {KEY}"}) as response:
        answered = await response.json()
    assert answered["model"] == f"gemini:{done['model_id']}"
    assert fake_gemini.requests[-1]["resource"] == done["model_id"]

    status, ended = await api("POST", "/api/v1/activations/rollback", {"by": "ada"})
    assert status == 200 and ended["rolled_back_by"] == "api:tests"
    status, history = await api("GET", "/api/v1/activations")
    assert history["model"] == "gemini:gemini-2.0-flash"
    assert (await api("POST", "/api/v1/activations/rollback", {}))[0] == 409  # nothing left to roll back: a conflict with the state, documented


async def test_an_openai_compatible_fine_tuning_job_succeeds_and_an_upstream_failure_is_reported(api_for, fake_openai):
    engine, api = await api_for(**openai_settings(fake_openai, tuning_judge="openai:gpt-4o"))
    body = {**CREATE, "base_llm": {"model_provider": "openai", "model_name": "gpt-4o-mini",
                                   "model_parameters": {"n_epochs": 2, "batch_size": 8, "learning_rate_multiplier": 0.3}}}
    status, job = await api("POST", "/api/v1/finetunings", body)
    assert status == 201, job
    done = await api.until(job["id"], "succeeded", "failed")
    # The configured judge grades each held-out answer against the maintainers' (the fake says 4 of 5).
    fake_openai.default = openai.ChatReply(text="4")
    status, evaluation = await api("POST", f"/api/v1/finetunings/{job['id']}/evaluate")
    assert status == 200 and evaluation["candidate"]["judge"] == 0.8 and evaluation["current"]["judge"] == 0.8
    judged = [r for r in fake_openai.requests if r["model"] == "gpt-4o"]
    answered = sum(round(evaluation["heldout"] * (1 - evaluation[m]["abstention_rate"])) for m in ("current", "candidate"))
    assert len(judged) == answered > 0 and "Reference answer" in judged[0]["messages"][-1]["content"]
    fake_openai.default = openai.ChatReply()
    assert done["status"] == "succeeded" and done["model_id"] == "ft:gpt-4o-mini:org:tinyviz-helper:abc123"
    [(file_id, rows)] = fake_openai.files.items()
    assert len(rows) == 22 and rows[0]["messages"][2]["content"].startswith("Here is how to")
    assert done["finetuning_file_id"] == file_id and done["finetuning_job_id"] in fake_openai.jobs
    [sent] = fake_openai.job_requests
    # All three documented parameters reach OpenAI, through `method` (top-level `hyperparameters` is deprecated).
    assert "hyperparameters" not in sent and sent["method"] == {
        "type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": 8, "learning_rate_multiplier": 0.3}}}
    assert sent["training_file"] == file_id and sent["suffix"] == "tinyviz-helper"
    assert done["provider_progress"] == {"status": "succeeded", "trained_tokens": 1234}

    fake_openai.fail_next = "Training file has 3 examples with invalid UTF-8"
    status, job = await api("POST", "/api/v1/finetunings", body)
    failed = await api.until(job["id"], "failed", "succeeded")
    assert failed["status"] == "failed" and failed["error"] == "Training file has 3 examples with invalid UTF-8"


async def test_an_upstream_gemini_failure_ends_the_job_failed_with_googles_reason(api_for, fake_gemini, fake_tuning):
    engine, api = await api_for(**gemini_settings(fake_gemini, fake_tuning))
    fake_tuning.fail_next = "Tuning failed: the learning rate is too high for this base model."
    _, job = await api("POST", "/api/v1/finetunings", CREATE)
    failed = await api.until(job["id"], "failed", "succeeded")
    assert failed["error"] == "Tuning failed: the learning rate is too high for this base model."
    assert (await api("POST", f"/api/v1/finetunings/{job['id']}/activate", {}))[0] == 400


async def test_cancel_works_queued_and_running_and_not_when_over(make_engine, fake_openai, fake_gemini, fake_tuning):
    async with make_engine(**openai_settings(fake_openai)) as engine, aiohttp.ClientSession() as session:
        await golden(engine)
        runner = engine.tuning_service.runner(session)
        body = OPENAI_BASE
        queued = await engine.tuning_service.create("a", body, None, {})
        assert (await engine.tuning_service.store.request_cancel(queued.id)).status == "cancelled"  # nothing was sent anywhere

        fake_openai.steps_per_poll = 1
        running = await engine.tuning_service.create("b", body, None, {})
        await drive(engine, runner, running.id, "running")
        await asyncio.sleep(0.06)
        await runner.run_due()
        job = await engine.tuning_service.job(running.id)
        assert job.status == "running" and job.provider_progress["step"] >= 1
        assert (await engine.tuning_service.store.request_cancel(running.id)).cancel_requested
        await runner.run_due()
        job = await engine.tuning_service.job(running.id)
        assert job.status == "cancelled" and fake_openai.jobs[job.provider_job_id]["status"] == "cancelled"
        assert await engine.tuning_service.store.request_cancel(running.id) is None  # already over

    async with make_engine(**gemini_settings(fake_gemini, fake_tuning)) as engine, aiohttp.ClientSession() as session:
        await golden(engine)
        runner = engine.tuning_service.runner(session)
        fake_tuning.step = 10
        job = await engine.tuning_service.create("c", CREATE["base_llm"], None, {})
        await runner.run_due()
        assert (await engine.tuning_service.job(job.id)).status == "running"
        await engine.tuning_service.store.request_cancel(job.id)
        await runner.run_due()
        assert (await engine.tuning_service.job(job.id)).status == "cancelled"
        [model] = fake_tuning.models.values()
        assert model.deleted  # Gemini has no cancel: the model being tuned is deleted


async def test_a_restart_mid_job_resumes_polling(make_engine, fake_openai, tmp_path):
    database = f"sqlite+aiosqlite:///{tmp_path}/restart.db"
    fake_openai.steps_per_poll = 4
    async with make_engine(database_url=database, **openai_settings(fake_openai)) as engine, aiohttp.ClientSession() as s:
        await golden(engine)
        job = await engine.tuning_service.create("r", {"model_provider": "openai", "model_name": "gpt-4o-mini"}, None, {})
        await engine.tuning_service.runner(s).run_due()
        assert (await engine.tuning_service.job(job.id)).provider_job_id
    # The process is gone; a new engine on the same database picks the job up and polls it to the end.
    async with make_engine(database_url=database, **openai_settings(fake_openai)) as engine, aiohttp.ClientSession() as s:
        runner = engine.tuning_service.runner(s)
        for _ in range(10):
            await runner.run_due()
            if (await engine.tuning_service.job(job.id)).status == "succeeded":
                break
            await asyncio.sleep(0.06)
        assert (await engine.tuning_service.job(job.id)).status == "succeeded"
        assert len(fake_openai.jobs) == 1  # polled, not submitted again


async def test_bad_requests_get_a_400_with_a_clear_message(api_for, fake_openai):
    engine, api = await api_for(**openai_settings(fake_openai))
    cases = [
        ({**CREATE, "base_llm": {**CREATE["base_llm"], "model_provider": "anthropic"}}, "model_provider must be one of"),
        ({**CREATE, "golden_records": [1, 2, 3]}, "too few examples: 3 golden records, gemini tuning needs at least 20"),
        ({**CREATE, "golden_records": [999]}, "unknown golden records: 999"),
        ({**CREATE, "alias": ""}, "'alias'"),
        ({**CREATE, "base_llm": {**CREATE["base_llm"], "model_parameters": {"epoch_count": -1}}}, "epoch_count"),
        ({**CREATE, "alias": "a" * 101}, "'alias'"),
        ({**CREATE, "golden_records": "all"}, "'golden_records'"),
    ]
    for body, message in cases:
        status, error = await api("POST", "/api/v1/finetunings", body)
        assert status == 400 and message in error["error"]["message"], (message, error)
    assert (await api("GET", "/api/v1/finetunings"))[1]["finetunings"] == []
    assert (await api("GET", "/api/v1/finetunings/nope"))[0] == 404


async def test_the_training_set_exports_in_each_providers_format(api_for, fake_openai):
    engine, api = await api_for(**openai_settings(fake_openai))
    async with api.session.get(api.url + "/api/v1/finetunings/training-set?provider=openai&variant=plain",
                               headers={"Authorization": f"Bearer {KEY}"}) as response:
        rows = [json.loads(line) for line in (await response.text()).splitlines()]
    assert len(rows) == 24 and rows[0]["messages"][1]["content"] == "How do I zoom the camera in?"
    async with api.session.get(api.url + "/api/v1/finetunings/training-set?provider=gemini",
                               headers={"Authorization": f"Bearer {KEY}"}) as response:
        rows = [json.loads(line) for line in (await response.text()).splitlines()]
    assert set(rows[0]) == {"text_input", "output"} and "untrusted" in rows[0]["text_input"]


def test_validation_drops_what_a_provider_refuses_and_says_why():
    examples = [Example(1, "q", "sys", "How?", "Like this."), Example(2, "q", "sys", "How?", "  "),
                Example(3, "q", "sys", "x" * 50_000, "ok"), Example(4, "q", "sys", "Why?", "y" * 6000),
                Example(5, "q", "sys", "how?", "like this.")]
    kept, dropped = validate(examples, "gemini")
    assert [e.record_id for e in kept] == [1]
    assert dropped == [{"record_id": 2, "reason": "empty answer"},
                       {"record_id": 3, "reason": "input longer than 40000 characters"},
                       {"record_id": 4, "reason": "answer longer than 5000 characters"},
                       {"record_id": 5, "reason": "duplicate of an earlier example"}]
    many = [Example(i, f"q{i}", "sys", f"q{i}", f"a{i}") for i in range(50)]
    train, held = split_holdout(many, 0.1)
    assert len(held) == 5 and len(train) == 45 and split_holdout(list(reversed(many)), 0.1)[1] == sorted(
        held, key=lambda e: -e.record_id)
    assert export(many[:1], "gemini") == '{"text_input": "sys\\n\\nq0", "output": "a0"}\n'
    assert json.loads(export(many[:1], "openai"))["messages"][0] == {"role": "system", "content": "sys"}
    assert export(many[:1], "gemini", "csv").startswith("input,output")


async def test_the_tuning_page_lists_jobs_and_evaluates_activates_and_rolls_back(api_for, fake_openai):
    from tests_support import Browser

    engine, api = await api_for(**openai_settings(fake_openai))
    body = {**CREATE, "base_llm": OPENAI_BASE}
    _, job = await api("POST", "/api/v1/finetunings", body)
    await api.until(job["id"], "succeeded")
    token = await engine.review_service.add_maintainer("ada")
    browser = Browser(api.url)
    try:
        await browser.sign_in(token)
        status, _, page = await browser.get("/review/tuning")
        assert status == 200 and "tinyviz-helper" in page and "succeeded" in page and 'value="evaluate"' in page
        csrf = await browser.csrf("/review/tuning")
        target = f"/review/tuning/{job['id']}"
        assert (await browser.post(target, {"action": "activate"}))[0] == 403  # no CSRF token
        assert (await browser.post(target, {"action": "evaluate", "csrf_token": csrf}))[1] == "/review/tuning"
        status, _, page = await browser.get("/review/tuning")
        assert "similarity" in page and 'value="activate"' in page
        await browser.post(target, {"action": "activate", "csrf_token": csrf})
        assert engine.chain.primary.name == "openai:ft:gpt-4o-mini:org:tinyviz-helper:abc123"
        status, _, page = await browser.get("/review/tuning")
        assert "Roll back" in page
        await browser.post("/review/tuning/rollback", {"csrf_token": csrf})
        assert engine.chain.primary.name == "openai:gpt-4o-mini"
        actions = [e.action for e in await engine.review_service.audit_events()]
        assert actions[:2] == ["model.rollback", "model.activate"]
    finally:
        await browser.session.close()


@pytest.fixture
def command_line(tmp_path, monkeypatch, fake_openai):
    """`firstreply` as a maintainer runs it, configured for the fake OpenAI, over 12 golden records."""
    from click.testing import CliRunner

    from firstreply.cli import cli

    monkeypatch.chdir(tmp_path)
    for name, value in {"DATA_DIR": str(tmp_path / "state"), "PROVIDERS": '["openai:gpt-4o-mini"]',
                        "OPENAI_BASE_URL": f"{fake_openai.url}/v1", "OPENAI_API_KEY": openai.API_KEY}.items():
        monkeypatch.setenv(f"FIRSTREPLY_{name}", value)

    async def seed():
        from engine.config import load_settings
        from engine.service import Engine

        async with Engine(load_settings()) as engine:
            await golden(engine, 12)

    asyncio.run(seed())
    runner = CliRunner()
    return lambda args: runner.invoke(cli, args)


def test_tuning_from_the_command_line(command_line):
    """`firstreply tune create|list|status|cancel|export`, as a maintainer types them."""
    too_few = command_line(["tune", "create", "--alias", "x", "--provider", "gemini", "--model", "gemini-1.5-flash"])
    assert too_few.exit_code == 1 and "gemini tuning needs at least 20" in too_few.output
    created = command_line(["tune", "create", "--alias", "helper", "--provider", "openai", "--model", "gpt-4o-mini",
                                  "--epochs", "2"])
    assert created.exit_code == 0 and "queued" in created.output
    job_id = created.output.split()[0]
    assert job_id in command_line(["tune", "list"]).output
    assert "queued" in command_line(["tune", "status", job_id]).output
    assert "cancelled" in command_line(["tune", "cancel", job_id]).output
    assert command_line(["tune", "cancel", job_id]).exit_code == 1
    exported = command_line(["tune", "export", "--provider", "openai", "--variant", "plain"])
    assert exported.exit_code == 0 and len(exported.output.splitlines()) == 12


# -- the first submit: failures end or retry the job, never strand it, never submit twice (issue 17, item 1) -----------


async def test_a_provider_4xx_at_the_first_submit_fails_the_job_at_once_with_the_providers_message(make_engine, fake_openai):
    async with make_engine(**openai_settings(fake_openai)) as engine, aiohttp.ClientSession() as session:
        await golden(engine)
        runner = engine.tuning_service.runner(session)
        fake_openai.create_errors = [400]
        job = await engine.tuning_service.create("helper", OPENAI_BASE, None, {})
        await runner.run_due()  # one round: built, uploaded, refused
        job = await engine.tuning_service.job(job.id)
        assert job.status == "failed" and "fake error 400" in job.error and job.lease_until is None
        assert fake_openai.jobs == {} and await runner.run_due() == 0  # nothing left to do, nothing resubmitted


@pytest.mark.parametrize("errors", [[500], [429, 503]])
async def test_a_5xx_or_429_at_the_first_submit_is_retried_with_backoff_and_submitted_once(make_engine, fake_openai, errors):
    async with make_engine(**openai_settings(fake_openai)) as engine, aiohttp.ClientSession() as session:
        await golden(engine)
        runner = engine.tuning_service.runner(session)
        fake_openai.create_errors = list(errors)
        job = await engine.tuning_service.create("helper", OPENAI_BASE, None, {})
        await runner.run_due()
        waiting = await engine.tuning_service.job(job.id)
        assert waiting.status == "validating_files" and "fake error" in waiting.error and waiting.lease_until is not None
        done = await drive(engine, runner, job.id, "succeeded", "failed")
        assert done.status == "succeeded" and done.error is None
        assert len(fake_openai.jobs) == 1 and len(fake_openai.files) == 1  # the file was uploaded once too


async def test_retries_of_the_first_submit_are_bounded(make_engine, fake_openai):
    async with make_engine(**openai_settings(fake_openai)) as engine, aiohttp.ClientSession() as session:
        await golden(engine)
        runner = engine.tuning_service.runner(session)
        runner.max_retries = 2
        fake_openai.create_errors = [500] * 5
        job = await engine.tuning_service.create("helper", OPENAI_BASE, None, {})
        failed = await drive(engine, runner, job.id, "failed", "succeeded")
        assert "gave up after 3 tries" in failed.error and "fake error 500" in failed.error
        assert fake_openai.jobs == {}


async def test_a_create_whose_answer_was_lost_is_found_again_not_submitted_twice(make_engine, fake_openai, fake_gemini,
                                                                              fake_tuning, database_overrides):
    async with make_engine(**openai_settings(fake_openai, **database_overrides)) as engine, \
            aiohttp.ClientSession() as session:
        await golden(engine)
        fake_openai.lose_next_create = True  # OpenAI made the job, the answer never came back
        job = await engine.tuning_service.create("helper", OPENAI_BASE, None, {})
        done = await drive(engine, engine.tuning_service.runner(session), job.id, "succeeded", "failed")
        assert done.status == "succeeded" and len(fake_openai.jobs) == 1 and done.provider_job_id in fake_openai.jobs
    async with make_engine(**gemini_settings(fake_gemini, fake_tuning)) as engine, aiohttp.ClientSession() as session:
        await golden(engine)
        fake_tuning.lose_next_create = True
        job = await engine.tuning_service.create("helper", CREATE["base_llm"], None, {})
        done = await drive(engine, engine.tuning_service.runner(session), job.id, "succeeded", "failed")
        assert done.status == "succeeded" and fake_tuning.create_requests == 1 and len(fake_tuning.models) == 1


async def test_missing_google_credentials_fail_the_job_with_a_clear_error(api_for, fake_gemini, fake_tuning, monkeypatch,
                                                                          tmp_path):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    engine, api = await api_for(**gemini_settings(fake_gemini, fake_tuning))
    _, job = await api("POST", "/api/v1/finetunings", CREATE)
    failed = await api.until(job["id"], "failed", "succeeded", timeout=10)
    assert failed["error"].startswith("Gemini tuning needs Google credentials (application-default)")
    assert fake_tuning.models == {}


async def test_a_job_that_breaks_the_runner_fails_alone_and_the_round_goes_on(make_engine, fake_openai):
    async with make_engine(**openai_settings(fake_openai)) as engine, aiohttp.ClientSession() as session:
        await golden(engine)
        runner = engine.tuning_service.runner(session)
        # Written straight to the store, as a job queued before aliases were checked would be.
        broken = await engine.tuning_service.store.create("evil\r\nX-Injected: 1", OPENAI_BASE, None, {}, None)
        unreadable = await engine.tuning_service.store.create("no-provider", {"model_name": "gpt-4o-mini"}, None, {}, None)
        fine = await engine.tuning_service.create("fine", OPENAI_BASE, None, {})
        await runner.run_due()
        broken, unreadable = await engine.tuning_service.job(broken.id), await engine.tuning_service.job(unreadable.id)
        fine = await engine.tuning_service.job(fine.id)
        assert broken.status == "failed" and "alias" in broken.error and broken.lease_until is None
        assert unreadable.status == "failed" and unreadable.error == "internal error: KeyError: 'model_provider'"
        assert fine.provider_job_id in fake_openai.jobs and fine.error is None


# -- what a job may ask, checked once for the API and the CLI (items 2, 3, 6) ---------------------------------------------


async def test_each_providers_limits_and_parameters_are_checked_when_the_job_is_created(api_for, fake_openai):
    engine, api = await api_for(**openai_settings(fake_openai))
    openai_body = {**CREATE, "base_llm": {**OPENAI_BASE, "model_parameters": {"n_epochs": 2}}}
    gemini_params = CREATE["base_llm"]
    cases = [
        ({**CREATE, "alias": "a" * 41}, "at most 40 characters"),  # Gemini's display name
        ({**openai_body, "alias": "a" * 65}, "at most 64 characters"),  # OpenAI's suffix
        ({**CREATE, "alias": "line\r\nbreak"}, "control characters"),
        ({**openai_body, "base_llm": {**OPENAI_BASE, "model_parameters": {"n_epochs": -3}}}, "'n_epochs'"),
        ({**openai_body, "base_llm": {**OPENAI_BASE, "model_parameters": {"n_epochs": 51}}}, "'n_epochs'"),
        ({**openai_body, "base_llm": {**OPENAI_BASE, "model_parameters": {"learning_rate_multiplier": "high"}}},
         "'learning_rate_multiplier'"),
        ({**openai_body, "base_llm": {**OPENAI_BASE, "model_parameters": {"batch_size": 2.5}}}, "'batch_size'"),
        ({**openai_body, "base_llm": {**OPENAI_BASE, "model_parameters": {"n_epochs": True}}}, "'n_epochs'"),
        # An absolute learning rate is Gemini's; OpenAI only takes a multiplier (never one read as the other).
        ({**openai_body, "base_llm": {**OPENAI_BASE, "model_parameters": {"learning_rate": 0.001}}}, "'learning_rate'"),
        ({**openai_body, "base_llm": {**OPENAI_BASE, "model_parameters": {"epochs": 2}}}, "unknown model parameter 'epochs'"),
        ({**CREATE, "base_llm": {**gemini_params, "model_parameters": {"learning_rate": 0.1, "learning_rate_multiplier": 2}}},
         "not both"),
        ({**CREATE, "base_llm": {**gemini_params, "model_parameters": {"n_epochs": 2, "epoch_count": 3}}}, "not both"),
    ]
    for body, message in cases:
        status, error = await api("POST", "/api/v1/finetunings", body)
        assert status == 400 and message in error["error"]["message"], (body, error)
    assert (await api("GET", "/api/v1/finetunings"))[1]["finetunings"] == []
    status, job = await api("POST", "/api/v1/finetunings", {**openai_body, "alias": "a" * 64})
    assert status == 201 and job["base_llm"]["model_parameters"] == {"n_epochs": 2}


async def test_gemini_gets_its_own_hyperparameter_names_and_a_learning_rate_stays_a_learning_rate(
        make_engine, fake_gemini, fake_tuning):
    async with make_engine(**gemini_settings(fake_gemini, fake_tuning)) as engine, aiohttp.ClientSession() as session:
        await golden(engine)
        base = {**CREATE["base_llm"], "model_parameters": {"epoch_count": 2, "batch_size": 8, "learning_rate_multiplier": 0.5}}
        job = await engine.tuning_service.create("multiplied", base, None, {})
        assert job.base_llm["model_parameters"] == {"n_epochs": 2, "batch_size": 8, "learning_rate_multiplier": 0.5}
        await drive(engine, engine.tuning_service.runner(session), job.id, "succeeded")
        [model] = fake_tuning.models.values()
        assert model.body["tuningTask"]["hyperparameters"] == {"epochCount": 2, "batchSize": 8, "learningRateMultiplier": 0.5}


def test_the_command_line_refuses_what_the_api_refuses(command_line):
    base = ["tune", "create", "--alias", "helper", "--provider", "openai", "--model", "gpt-4o-mini"]
    refused = command_line([*base, "--epochs", "-2"])
    assert refused.exit_code == 1 and "'n_epochs'" in refused.output
    refused = command_line([*base, "--learning-rate", "0.001"])
    assert refused.exit_code == 1 and "'learning_rate'" in refused.output and "learning_rate_multiplier" in refused.output
    refused = command_line(["tune", "create", "--alias", "a" * 41, "--provider", "gemini", "--model",
                                  "gemini-1.5-flash-001-tuning"])
    assert refused.exit_code == 1 and "at most 40 characters" in refused.output
    created = command_line([*base, "--epochs", "2", "--learning-rate-multiplier", "0.3"])
    assert created.exit_code == 0 and "queued" in created.output
    assert len(command_line(["tune", "list"]).output.splitlines()) == 1


# -- OpenAI's own statuses and progress (item 5) ----------------------------------------------------------------------------


async def test_openai_jobs_show_openais_status_and_the_progress_it_reports(api_for, fake_openai):
    engine, api = await api_for(**openai_settings(fake_openai, tuning_poll_seconds=0.01))
    # The app's own runner, woken by the create, would race this test's steps for the job (it used to: a step taken
    # outside the lease, and each extra poll moves the fake on, so a status was sometimes never seen). One runner only.
    await api.stop_background_runner()
    runner = engine.tuning_service.runner(api.session)
    _, job = await api("POST", "/api/v1/finetunings", {**CREATE, "base_llm": OPENAI_BASE})
    seen = []
    for _ in range(12):
        for _ in range(500):  # each step sets the next look 0.01 s on
            if (claimed := await engine.tuning_service.store.claim(60)) is not None:
                break
            await asyncio.sleep(0.01)
        assert claimed is not None, seen
        await runner.step(claimed)
        _, shown = await api("GET", f"/api/v1/finetunings/{job['id']}")
        seen.append((shown["status"], shown["progress"], shown["provider_progress"]))
        if shown["status"] == "succeeded":
            break
    statuses = [s for s, _, _ in seen]
    assert statuses[:3] == ["validating_files", "queued", "running"], seen
    running = [(p, detail) for s, p, detail in seen if s == "running"]
    # OpenAI reports no percentage: none is made up; what it reports (its metrics events) is shown.
    assert all(p is None for p, _ in running) and running[-1][1]["step"] == 10 and "train_loss" in running[-1][1]
    assert seen[-1][:2] == ("succeeded", 100.0)


# -- the permission grant is a step of its own (item 7) ---------------------------------------------------------------------


async def test_a_refused_permission_grant_keeps_the_tuned_model_and_can_be_retried(api_for, fake_gemini, fake_tuning):
    engine, api = await api_for(**gemini_settings(fake_gemini, fake_tuning, tuned_model_grantee="user:alice@example.com"))
    fake_tuning.permission_errors = [403]
    _, job = await api("POST", "/api/v1/finetunings", CREATE)
    done = await api.until(job["id"], "succeeded", "failed")
    [model] = fake_tuning.models.values()
    assert done["status"] == "succeeded" and done["model_id"] == model.name  # ACTIVE at Google: never orphaned
    assert done["permission"]["state"] == "failed" and "The caller does not have permission" in done["permission"]["error"]
    status, refused = await api("POST", f"/api/v1/finetunings/{job['id']}/activate", {"by": "ada"})
    assert status == 400 and "grant" in refused["error"]["message"]

    status, retried = await api("POST", f"/api/v1/finetunings/{job['id']}/grant", {})
    assert status == 200 and retried["permission"]["state"] == "pending"
    for _ in range(100):
        _, shown = await api("GET", f"/api/v1/finetunings/{job['id']}")
        if shown["permission"]["state"] != "pending":
            break
        await asyncio.sleep(0.05)
    assert shown["permission"] == {"grantee": "user:alice@example.com", "state": "granted", "error": None}
    assert model.permissions == [{"granteeType": "USER", "emailAddress": "alice@example.com", "role": "READER"}]
    assert (await api("POST", f"/api/v1/finetunings/{job['id']}/grant", {}))[0] == 400  # nothing left to grant


@pytest.mark.parametrize("value, shown", [("everyone", "everyone"), ("EVERYONE", "everyone"),
                                          ("user:alice@example.com", "user:alice@example.com"),
                                          ("Group:Tuners@Example.com", "group:Tuners@Example.com")])
def test_the_grantee_setting_takes_a_kind_and_an_address(value, shown):
    from engine.config import load_settings

    assert load_settings(tuned_model_grantee=value, _env_file=None).tuned_model_grantee == shown


@pytest.mark.parametrize("value", ["alice@example.com", "user:", "user:alice", "owner:alice@example.com",
                                   "user:alice@example.com\r\nX: 1"])
def test_a_grantee_setting_without_its_kind_stops_start_up_with_one_line(value):
    from engine.config import ConfigError, load_settings

    with pytest.raises(ConfigError) as refused:
        load_settings(tuned_model_grantee=value, _env_file=None)
    message = str(refused.value)
    assert message.startswith("bad setting FIRSTREPLY_TUNED_MODEL_GRANTEE: ") and "\n" not in message
    assert "user:EMAIL" in message and "group:EMAIL" in message and "everyone" in message


# -- activation reaches every engine process (item 8) -----------------------------------------------------------------------


async def test_an_activation_and_a_rollback_reach_every_engine_on_the_database(make_engine, fake_openai, tmp_path,
                                                                              database_overrides):
    from engine.answer.model import Question

    database = database_overrides.get("database_url", f"sqlite+aiosqlite:///{tmp_path}/shared.db")
    settings = openai_settings(fake_openai, providers=["openai:gpt-4o"], activation_check_seconds=0, database_url=database)
    tuner, server = make_engine(**settings), make_engine(**settings)
    async with tuner, server, aiohttp.ClientSession() as session, serve(build_app(server)) as url:
        await golden(tuner)
        question = Question("How do I zoom the camera in?", channel="api")
        assert (await server.answer(question)).model == "openai:gpt-4o"

        job = await tuner.tuning_service.create("helper", OPENAI_BASE, None, {})
        done = await drive(tuner, tuner.tuning_service.runner(session), job.id, "succeeded")
        tuned = f"openai:{done.model_id}"
        activation = await tuner.tuning_service.activate(job.id, "ada")
        assert activation.fallback == "openai:gpt-4o"  # what answered before, not the base snapshot gpt-4o-mini

        answer = await server.answer(question)  # the other engine, from its next question on
        assert answer.model == tuned and fake_openai.requests[-1]["model"] == done.model_id
        async with session.get(f"{url}/api/v1/activations", headers={"Authorization": f"Bearer {KEY}"}) as response:
            shown = await response.json()
        assert shown["model"] == tuned and shown["activations"][0]["model"] == tuned

        await tuner.tuning_service.rollback("ada")
        assert (await server.answer(question)).model == "openai:gpt-4o"
        assert fake_openai.requests[-1]["model"] == "gpt-4o"


async def test_a_second_activation_falls_back_to_the_first(make_engine, fake_openai, tmp_path):
    settings = openai_settings(fake_openai, providers=["openai:gpt-4o"], activation_check_seconds=0)
    async with make_engine(**settings) as engine, aiohttp.ClientSession() as session:
        await golden(engine)
        models = []
        for alias in ("first", "second"):
            job = await engine.tuning_service.create(alias, OPENAI_BASE, None, {})
            models.append(f"openai:{(await drive(engine, engine.tuning_service.runner(session), job.id, 'succeeded')).model_id}")
            await engine.tuning_service.activate(job.id, "ada")
        [second, first] = await engine.tuning_service.activations()
        assert second.fallback == models[0] and first.fallback == "openai:gpt-4o"
        assert [p.name for p in engine.chain.providers] == [models[1], models[0], "openai:gpt-4o", "extractive"]
        await engine.tuning_service.rollback("ada")
        assert [p.name for p in engine.chain.providers] == [models[0], "openai:gpt-4o", "extractive"]


@pytest.mark.subprocess
async def test_firstreply_serve_answers_with_a_model_activated_from_the_command_line(
        make_engine, fake_openai, indexed_sample, tmp_path, monkeypatch):
    """`firstreply tune activate` in one process while `firstreply serve` runs in another, as the issue saw it."""
    import os
    import shutil
    import socket
    import sys
    from pathlib import Path

    from click.testing import CliRunner

    from firstreply.cli import cli

    state = tmp_path / "state"
    shutil.copytree(indexed_sample, state)
    database = f"sqlite+aiosqlite:///{tmp_path}/served.db"
    environment = {"FIRSTREPLY_DATA_DIR": str(state), "FIRSTREPLY_KB": "sample", "FIRSTREPLY_DATABASE_URL": database,
                   "FIRSTREPLY_PROVIDERS": '["openai:gpt-4o"]', "FIRSTREPLY_OPENAI_BASE_URL": f"{fake_openai.url}/v1",
                   "FIRSTREPLY_OPENAI_API_KEY": openai.API_KEY, "FIRSTREPLY_API_KEYS": json.dumps([key_with_every_role(KEY)]),
                   "FIRSTREPLY_QUERY_ENCODER": "torch", "FIRSTREPLY_USER_SALT": "pepper-pepper-pepper-pepper-pepper",
                   "FIRSTREPLY_ACTIVATION_CHECK_SECONDS": "0", "FIRSTREPLY_TUNING_POLL_SECONDS": "3600"}
    monkeypatch.chdir(tmp_path)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    async with make_engine(**openai_settings(fake_openai, providers=["openai:gpt-4o"], database_url=database)) as engine, \
            aiohttp.ClientSession() as session:
        await golden(engine)
        job = await engine.tuning_service.create("served", OPENAI_BASE, None, {})
        done = await drive(engine, engine.tuning_service.runner(session), job.id, "succeeded")
        await engine.tuning_service.evaluate(job.id)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = await asyncio.create_subprocess_exec(str(Path(sys.executable).with_name("firstreply")), "serve", "--port",
                                                  str(port), env={**os.environ, **environment},
                                                  stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {KEY}"}

    async def ask() -> str:
        async with session.post(f"{url}/v1/answer", json={"question": "How do I zoom the camera in?"},
                                headers=headers) as response:
            return (await response.json())["model"]

    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                try:
                    async with session.get(f"{url}/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert server.returncode is None, await server.stderr.read()
                await asyncio.sleep(0.2)
            assert await ask() == "openai:gpt-4o"
            activated = await asyncio.to_thread(CliRunner().invoke, cli, ["tune", "activate", job.id, "--by", "ada"])
            assert activated.exit_code == 0, activated.output
            assert await ask() == f"openai:{done.model_id}"
            async with session.get(f"{url}/api/v1/activations", headers=headers) as response:
                assert (await response.json())["model"] == f"openai:{done.model_id}"
            rolled = await asyncio.to_thread(CliRunner().invoke, cli, ["tune", "rollback", "--by", "ada"])
            assert rolled.exit_code == 0, rolled.output
            assert await ask() == "openai:gpt-4o"
    finally:
        server.terminate()
        await server.wait()


# -- odd text and OpenAI's "auto" (break-it review F3, F10) ------------------------------------------------------------------


async def test_unpaired_surrogates_in_any_field_of_a_finetuning_request_are_a_400(api_for, fake_openai):
    engine, api = await api_for(**openai_settings(fake_openai))
    good = json.dumps({**CREATE, "base_llm": OPENAI_BASE})
    bodies = [good.replace('"tinyviz-helper"', '"tinyviz-\\ud800"'),
              good.replace('"gpt-4o-mini"', '"gpt-4o-\\udfff"'),
              good.replace('"Q4"', '"Q\\ud83d"'),
              good.replace('"ticket"', '"t\\udc00"'),
              good.replace('"model_parameters": {}', '"model_parameters": {"\\ud800": 1}')]
    for body in bodies:
        assert body != good
        async with api.session.post(api.url + "/api/v1/finetunings", data=body.encode(),
                                    headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}) as response:
            error = await response.json()
            assert response.status == 400 and "surrogate" in error["error"]["message"], (body, response.status, error)
    assert (await api("GET", "/api/v1/finetunings"))[1]["finetunings"] == []


async def test_openai_takes_auto_for_its_hyperparameters_and_gets_it_as_given(api_for, fake_openai):
    engine, api = await api_for(**openai_settings(fake_openai))
    await api.stop_background_runner()
    auto = {"n_epochs": "auto", "batch_size": "auto", "learning_rate_multiplier": "auto"}
    status, job = await api("POST", "/api/v1/finetunings", {**CREATE, "base_llm": {**OPENAI_BASE, "model_parameters": auto}})
    assert status == 201 and job["base_llm"]["model_parameters"] == auto, job
    async with aiohttp.ClientSession() as session:
        await drive(engine, engine.tuning_service.runner(session), job["id"], "succeeded")
    assert fake_openai.job_requests[-1]["method"] == {"type": "supervised", "supervised": {"hyperparameters": auto}}
    status, error = await api("POST", "/api/v1/finetunings", {**CREATE, "base_llm": {
        **CREATE["base_llm"], "model_parameters": {"n_epochs": "auto"}}})
    assert status == 400 and "'n_epochs' can't be \"auto\" for gemini" in error["error"]["message"], error
    for bad in ("AUTO", "", "3"):
        status, error = await api("POST", "/api/v1/finetunings", {**CREATE, "base_llm": {
            **OPENAI_BASE, "model_parameters": {"batch_size": bad}}})
        assert status == 400 and "batch_size" in error["error"]["message"], error


# -- a process without the activated provider's key (break-it review F4) --------------------------------------------------


async def test_a_process_without_the_activated_providers_key_keeps_answering_with_the_rest_of_the_chain(
        make_engine, fake_openai, fake_gemini, tmp_path, caplog):
    from engine.answer.model import Question

    database = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    activator = make_engine(**gemini_settings(fake_gemini, fake_openai, database_url=database))  # has the Gemini key
    other = make_engine(**openai_settings(fake_openai, database_url=database, activation_check_seconds=0))  # has not
    async with activator, other:
        before = await other.answer(Question("How do I zoom the camera in?", channel="api"))
        assert before.model == "openai:gpt-4o-mini"
        await activator.tuning_service.store.activate("gemini:tunedModels/tinyviz-helper-abc", "openai:gpt-4o-mini", None, {}, "ada")
        for _ in range(2):  # the first answer after the activation, and the next: neither fails
            answer = await other.answer(Question("How do I zoom the camera in?", channel="api"))
            assert answer.model == "openai:gpt-4o-mini" and not answer.abstained, answer
        assert [p.name for p in other.chain.providers] == ["openai:gpt-4o-mini", "extractive"]
        assert sum("FIRSTREPLY_GEMINI_API_KEY" in r.getMessage() for r in caplog.records) == 1, caplog.text  # said once
        status = await other.status()
        assert status["model"] == "openai:gpt-4o-mini"


# -- finding a lost create finds only our job (break-it review F8) ------------------------------------------------------------


@pytest.mark.parametrize("filtered", [True, False], ids=["openai", "a server that ignores the metadata filter"])
async def test_a_lost_create_is_found_by_its_metadata_never_as_another_job_on_the_same_base_model(
        make_engine, fake_openai, filtered):
    fake_openai.honours_metadata_filter = filtered
    async with make_engine(**openai_settings(fake_openai)) as engine, aiohttp.ClientSession() as session:
        await golden(engine)
        runner = engine.tuning_service.runner(session)
        fake_openai.lose_next_create = True
        job = await engine.tuning_service.create("helper", OPENAI_BASE, None, {})
        await runner.run_due()  # submitted; the answer was lost: a retry is due after a backoff
        [ours] = fake_openai.jobs
        assert (await engine.tuning_service.job(job.id)).provider_job_id is None
        # Meanwhile someone else (another install, a person) fine-tunes the same base model: a newer job on the list.
        for metadata in (None, {"firstreply_job_id": "0d6e5e5e-another-install"}):
            other = f"ftjob-other{len(fake_openai.jobs)}"
            fake_openai.jobs[other] = {**fake_openai.jobs[ours], "id": other, "metadata": metadata, "_events": []}
        done = await drive(engine, runner, job.id, "succeeded", "failed")
        assert done.provider_job_id == ours and len(fake_openai.job_requests) == 1, (done.provider_job_id, ours)


# -- a retried grant goes to the grantee configured now (break-it review F7) -------------------------------------------------


async def test_a_retried_grant_goes_to_the_grantee_configured_now(make_engine, fake_gemini, fake_tuning, tmp_path):
    database = f"sqlite+aiosqlite:///{tmp_path}/grant.db"
    before = make_engine(**gemini_settings(fake_gemini, fake_tuning, database_url=database,
                                           tuned_model_grantee="user:team@example.com"))
    fake_tuning.permission_errors = [404]  # no such user: the team is a group, the operator learns
    async with before, aiohttp.ClientSession() as session:
        await golden(before)
        job = await before.tuning_service.create("helper", CREATE["base_llm"], None, {})
        runner = before.tuning_service.runner(session)
        await drive(before, runner, job.id, "succeeded")
        for _ in range(50):
            if (done := await before.tuning_service.job(job.id)).grant_state != "pending":
                break
            await runner.run_due()
            await asyncio.sleep(0.06)
        assert done.grant_state == "failed" and done.grantee == "user:team@example.com", done.grant_state
    # The setting is corrected and the engine restarted; the retry must not go to the old grantee again.
    after = make_engine(**gemini_settings(fake_gemini, fake_tuning, database_url=database,
                                          tuned_model_grantee="group:team@example.com"))
    async with after, aiohttp.ClientSession() as session:
        retried = await after.tuning_service.retry_grant(job.id)
        assert retried.grant_state == "pending" and retried.grantee == "group:team@example.com"
        await after.tuning_service.runner(session).run_due()
        granted = await after.tuning_service.job(job.id)
    [model] = fake_tuning.models.values()
    assert (granted.grant_state, granted.grantee) == ("granted", "group:team@example.com"), granted.grant_error
    assert model.permissions == [{"granteeType": "GROUP", "emailAddress": "team@example.com", "role": "READER"}]


# -- a cancel that arrives while another process submits the job (break-it review F2) ---------------------------------------


async def test_a_cancel_made_on_one_replica_while_another_submits_the_job_wins(make_engine, fake_openai, postgres_url):
    submitter = make_engine(**openai_settings(fake_openai, database_url=postgres_url))
    canceller = make_engine(**openai_settings(fake_openai, database_url=postgres_url))
    async with submitter, canceller, aiohttp.ClientSession() as session:
        await golden(submitter)
        job = await submitter.tuning_service.create("helper", OPENAI_BASE, None, {})
        fake_openai.create_gate = asyncio.Event()
        submitting = asyncio.create_task(submitter.tuning_service.runner(session).run_due())
        for _ in range(600):  # until the create is on its way to OpenAI
            if fake_openai.files and (await submitter.tuning_service.job(job.id)).submit_attempts:
                break
            await asyncio.sleep(0.05)
        # The other replica: the API's cancel, then its own runner, which finds nothing at OpenAI yet.
        assert (await canceller.tuning_service.store.request_cancel(job.id)).cancel_requested
        await canceller.tuning_service.runner(session).run_due()
        assert (await canceller.tuning_service.job(job.id)).status == "cancelled" and not fake_openai.jobs
        fake_openai.create_gate.set()  # now OpenAI makes the job and answers the first replica
        await asyncio.wait_for(submitting, 60)
        await submitter.tuning_service.runner(session).run_due()
        ended = await canceller.tuning_service.job(job.id)
        [made] = fake_openai.jobs.values()
        assert ended.status == "cancelled" and made["status"] == "cancelled", (ended.status, made["status"])
        assert ended.provider_job_id == made["id"]  # what was made is on record


async def test_an_openai_tuner_refuses_a_grant_it_has_no_way_to_make():
    """OpenAI's fine-tuned models belong to the organisation: a grant (a job left with a grantee) is a clear
    TuningProviderError the runner records on the job, not a missing method."""
    from engine.tuning.providers import OpenAITuner, TuningProviderError

    async with aiohttp.ClientSession() as session:
        tuner = OpenAITuner("http://127.0.0.1:9/v1", None, session)
        with pytest.raises(TuningProviderError, match="no access to grant"):
            await tuner.grant("ft:gpt-4o-mini:org:alias:abc", "everyone")
