"""Fine-tuning: training sets from golden records, tuning jobs against loopback fakes of Gemini's tuning
REST API (OAuth through google-auth) and of OpenAI-compatible fine-tuning, evaluation, activation."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from engine.api.app import build_app
from engine.tuning.dataset import Example, export, split_holdout, validate
from fakes import gemini, openai
from fakes.gemini_tuning import FakeGeminiTuning
from fakes.server import serve
from tests_support import key_with_every_role

KEY = "sk-tuning"
TOPICS = ["zoom the camera in", "zoom out", "save a screenshot", "install tinyviz", "install from source",
          "change the background colour", "draw spheres", "export a PNG", "use a notebook", "move the camera",
          "rotate the scene", "set the window size", "render offscreen", "pick colours", "make arrays of points",
          "record a movie", "reset the camera", "use the legacy API", "read the changelog", "report a bug",
          "set a title", "hide the axes", "use dark mode", "run the examples"]


async def golden(engine, n: int = 24) -> None:
    await engine.start()
    for i, topic in enumerate(TOPICS[:n]):
        await engine.review.add_golden_record(f"How do I {topic}?", f"Here is how to {topic}: step {i}.", "ada")


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
    return dict(providers=["gemini:gemini-2.0-flash"], gemini_api_key=gemini.API_KEY, gemini_base_url=fake_gemini.url,
                gemini_tuning_base_url=fake_tuning.url, tuning_poll_seconds=0.05, api_keys=[key_with_every_role(KEY)], rate_limit_per_minute=10_000, **more)


def openai_settings(fake_openai, **more) -> dict:
    return dict(providers=["openai:gpt-4o-mini"], openai_base_url=f"{fake_openai.url}/v1", openai_api_key=openai.API_KEY,
                tuning_poll_seconds=0.05, api_keys=[key_with_every_role(KEY)], rate_limit_per_minute=10_000, **more)


class Api:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url, self.session = url, session

    async def __call__(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        async with self.session.request(method, self.url + path, json=body,
                                        headers={"Authorization": f"Bearer {KEY}"}) as response:
            return response.status, await response.json()

    async def until(self, job_id: str, *states: str, timeout: float = 30) -> dict:
        for _ in range(int(timeout / 0.05)):
            status, job = await self("GET", f"/api/v1/finetunings/{job_id}")
            assert status == 200, job
            if job["status"] in states:
                return job
            await asyncio.sleep(0.05)
        raise AssertionError(f"job never reached {states}: {job}")


@pytest.fixture
async def api_for(make_engine):
    opened = []

    async def start(**settings):
        engine = make_engine(**settings)
        server = serve(build_app(engine))
        url = await server.__aenter__()
        session = aiohttp.ClientSession()
        opened.append((server, session))
        await golden(engine)
        return engine, Api(url, session)

    yield start
    for server, session in opened:
        await session.close()
        await server.__aexit__(None, None, None)


CREATE = {"alias": "tinyviz-helper", "base_llm": {"model_provider": "gemini", "model_name": "gemini-1.5-flash-001-tuning",
                                                  "model_parameters": {"epoch_count": 3, "batch_size": 4, "learning_rate": 0.001}},
          "golden_records": None, "metadata": {"ticket": "Q4"}}


async def test_a_gemini_tuning_job_runs_to_a_permitted_model_that_is_evaluated_activated_and_rolled_back(
        api_for, fake_gemini, fake_tuning):
    engine, api = await api_for(**gemini_settings(fake_gemini, fake_tuning, tuned_model_grantee="EVERYONE"))
    status, job = await api("POST", "/api/v1/finetunings", CREATE)
    assert status == 201 and job["status"] == "queued" and job["alias"] == "tinyviz-helper"
    assert set(job) >= {"id", "alias", "status", "error", "base_llm", "dataset_id", "provider_job_id", "model_id",
                        "created_at", "golden_records", "metadata"}
    done = await api.until(job["id"], "succeeded", "failed")
    assert done["status"] == "succeeded" and done["model_id"].startswith("tunedModels/tinyviz-helper-"), done
    assert done["progress"] == 100.0 and done["provider_job_id"].startswith(done["model_id"] + "/operations/")
    assert done["dataset"] == {"examples": 24, "kept": 24, "dropped": [], "train": 22, "heldout": 2, "variant": "rag"}

    [model] = fake_tuning.models.values()
    task = model.body["tuning_task"]
    assert task["hyperparameters"] == {"epoch_count": 3, "batch_size": 4, "learning_rate": 0.001}
    examples = task["training_data"]["examples"]["examples"]
    assert len(examples) == 24 - 2  # 10% held out
    assert "Answer only from the numbered context passages" in examples[0]["text_input"]
    assert "camera" in examples[0]["text_input"].lower() or examples[0]["text_input"].count("[") >= 1
    assert model.permissions == [{"grantee_type": "EVERYONE", "role": "READER"}]
    assert fake_tuning.refused_without_token == 0 and fake_tuning.tokens  # OAuth, through google-auth

    status, evaluation = await api("POST", f"/api/v1/finetunings/{job['id']}/evaluate")
    assert status == 200 and evaluation["heldout"] == 2
    assert evaluation["current"]["model"] == "gemini:gemini-2.0-flash"
    assert evaluation["candidate"]["model"] == f"gemini:{done['model_id']}"
    assert set(evaluation["candidate"]) >= {"similarity", "citation_rate", "abstention_rate"}

    status, activation = await api("POST", f"/api/v1/finetunings/{job['id']}/activate", {"by": "ada"})
    assert status == 200 and activation["model"] == f"gemini:{done['model_id']}"
    assert activation["fallback"] == "gemini:gemini-1.5-flash-001-tuning" and activation["activated_by"] == "api:tests"
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
    assert (await api("POST", "/api/v1/activations/rollback", {}))[0] == 400  # nothing left to roll back


async def test_an_openai_compatible_fine_tuning_job_succeeds_and_an_upstream_failure_is_reported(api_for, fake_openai):
    engine, api = await api_for(**openai_settings(fake_openai, tuning_judge="openai:gpt-4o"))
    body = {**CREATE, "base_llm": {"model_provider": "openai", "model_name": "gpt-4o-mini",
                                   "model_parameters": {"epoch_count": 2}}}
    status, job = await api("POST", "/api/v1/finetunings", body)
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
    [rows] = fake_openai.files.values()
    assert len(rows) == 22 and rows[0]["messages"][2]["content"].startswith("Here is how to")
    assert fake_openai.jobs[done["provider_job_id"]]["hyperparameters"] == {"n_epochs": 2}

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
        runner = engine.tuning_runner(session)
        body = {"model_provider": "openai", "model_name": "gpt-4o-mini", "model_parameters": {}}
        queued = await engine.create_tuning("a", body, None, {})
        assert (await engine.tuning.request_cancel(queued.id)).status == "cancelled"  # nothing was sent anywhere

        fake_openai.steps_per_poll = 1
        running = await engine.create_tuning("b", body, None, {})
        for _ in range(3):
            await runner.run_due()
            await asyncio.sleep(0.06)
        job = await engine.tuning.job(running.id)
        assert job.status == "running" and 0 < job.progress < 100
        assert (await engine.tuning.request_cancel(running.id)).cancel_requested
        await runner.run_due()
        job = await engine.tuning.job(running.id)
        assert job.status == "cancelled" and fake_openai.jobs[job.provider_job_id]["status"] == "cancelled"
        assert await engine.tuning.request_cancel(running.id) is None  # already over

    async with make_engine(**gemini_settings(fake_gemini, fake_tuning)) as engine, aiohttp.ClientSession() as session:
        await golden(engine)
        runner = engine.tuning_runner(session)
        fake_tuning.step = 10
        job = await engine.create_tuning("c", CREATE["base_llm"], None, {})
        await runner.run_due()
        assert (await engine.tuning.job(job.id)).status == "running"
        await engine.tuning.request_cancel(job.id)
        await runner.run_due()
        assert (await engine.tuning.job(job.id)).status == "cancelled"
        [model] = fake_tuning.models.values()
        assert model.deleted  # Gemini has no cancel: the model being tuned is deleted


async def test_a_restart_mid_job_resumes_polling(make_engine, fake_openai, tmp_path):
    database = f"sqlite+aiosqlite:///{tmp_path}/restart.db"
    fake_openai.steps_per_poll = 4
    async with make_engine(database_url=database, **openai_settings(fake_openai)) as engine, aiohttp.ClientSession() as s:
        await golden(engine)
        job = await engine.create_tuning("r", {"model_provider": "openai", "model_name": "gpt-4o-mini"}, None, {})
        await engine.tuning_runner(s).run_due()
        assert (await engine.tuning.job(job.id)).status == "running"
    # The process is gone; a new engine on the same database picks the job up and polls it to the end.
    async with make_engine(database_url=database, **openai_settings(fake_openai)) as engine, aiohttp.ClientSession() as s:
        runner = engine.tuning_runner(s)
        for _ in range(10):
            await runner.run_due()
            if (await engine.tuning.job(job.id)).status == "succeeded":
                break
            await asyncio.sleep(0.06)
        assert (await engine.tuning.job(job.id)).status == "succeeded"
        assert len(fake_openai.jobs) == 1  # polled, not submitted again


async def test_bad_requests_get_a_400_with_a_clear_message(api_for, fake_openai):
    engine, api = await api_for(**openai_settings(fake_openai))
    cases = [
        ({**CREATE, "base_llm": {**CREATE["base_llm"], "model_provider": "anthropic"}}, "model_provider must be one of"),
        ({**CREATE, "golden_records": [1, 2, 3]}, "too few examples: 3 golden records, gemini tuning needs at least 20"),
        ({**CREATE, "golden_records": [999]}, "unknown golden records: 999"),
        ({**CREATE, "alias": ""}, "'alias'"),
        ({**CREATE, "base_llm": {**CREATE["base_llm"], "model_parameters": {"epoch_count": -1}}}, "epoch_count"),
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
    body = {**CREATE, "base_llm": {"model_provider": "openai", "model_name": "gpt-4o-mini", "model_parameters": {}}}
    _, job = await api("POST", "/api/v1/finetunings", body)
    await api.until(job["id"], "succeeded")
    token = await engine.review.add_maintainer("ada")
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
        actions = [e.action for e in await engine.review.audit_events()]
        assert actions[:2] == ["model.rollback", "model.activate"]
    finally:
        await browser.session.close()


def test_tuning_from_the_command_line(tmp_path, monkeypatch, fake_openai):
    """`firstreply tune create|list|status|cancel|export`, as a maintainer types them."""
    import asyncio as aio

    from click.testing import CliRunner

    from engine.cli import cli

    monkeypatch.chdir(tmp_path)
    for name, value in {"DATA_DIR": str(tmp_path / "state"), "PROVIDERS": '["openai:gpt-4o-mini"]',
                        "OPENAI_BASE_URL": f"{fake_openai.url}/v1", "OPENAI_API_KEY": openai.API_KEY}.items():
        monkeypatch.setenv(f"FIRSTREPLY_{name}", value)

    async def seed():
        from engine.config import load_settings
        from engine.service import Engine

        async with Engine(load_settings()) as engine:
            await golden(engine, 12)

    aio.run(seed())
    runner = CliRunner()
    too_few = runner.invoke(cli, ["tune", "create", "--alias", "x", "--provider", "gemini", "--model", "gemini-1.5-flash"])
    assert too_few.exit_code == 1 and "gemini tuning needs at least 20" in too_few.output
    created = runner.invoke(cli, ["tune", "create", "--alias", "helper", "--provider", "openai", "--model", "gpt-4o-mini",
                                  "--epochs", "2"])
    assert created.exit_code == 0 and "queued" in created.output
    job_id = created.output.split()[0]
    assert job_id in runner.invoke(cli, ["tune", "list"]).output
    assert "queued" in runner.invoke(cli, ["tune", "status", job_id]).output
    assert "cancelled" in runner.invoke(cli, ["tune", "cancel", job_id]).output
    assert runner.invoke(cli, ["tune", "cancel", job_id]).exit_code == 1
    exported = runner.invoke(cli, ["tune", "export", "--provider", "openai", "--variant", "plain"])
    assert exported.exit_code == 0 and len(exported.output.splitlines()) == 12
