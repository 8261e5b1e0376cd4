"""Issue 19: the GitHub App owns its state (store, tables, metrics, its part of the review pages) and reaches the
engine only through its public surface; the engine knows nothing of GitHub but a hook."""

from __future__ import annotations

import ast
from pathlib import Path

from prometheus_client import generate_latest

from engine.answer.model import Question
from engine.metrics import Metrics

ROOT = Path(__file__).resolve().parents[1]
ENGINE_PUBLIC = {"engine", "engine.protocol", "engine.client", "engine.config", "engine.logs", "engine.metrics",
                 "engine.database", "engine.web", "engine.markdown"}
GITHUB_SERIES = ("firstreply_github_deliveries_total", "firstreply_github_jobs_total", "firstreply_github_queue_jobs")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_app_imports_only_the_engines_public_surface():
    reached = {f"{path.relative_to(ROOT)}: {name}" for path in sorted((ROOT / "github_app").glob("*.py"))
               for name in imported_modules(path) if name.split(".")[0] == "engine" and name not in ENGINE_PUBLIC}
    assert reached == set()


def test_the_engine_knows_no_github_table_store_or_series():
    for path in (ROOT / "engine").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        assert not any(name.split(".")[0] == "github_app" for name in imported_modules(path)), path
    from engine.api.auth import OPEN_ROUTES

    assert not any("github" in route for route in OPEN_ROUTES)  # the App opens its webhook itself
    assert not (ROOT / "engine" / "store" / "github.py").exists()
    text = generate_latest(Metrics().registry).decode()
    assert not any(series in text for series in GITHUB_SERIES)


async def test_the_apps_series_keep_their_names_on_the_registry_it_is_given_once_however_many_apps():
    from github_app.app import GitHubApp
    from github_app.config import AppConfig

    class Answerer:
        metrics = Metrics()

    config = AppConfig.__new__(AppConfig)  # the series need no settings
    first, second = GitHubApp(config, Answerer()), GitHubApp(config, Answerer())
    assert first.metrics is second.metrics and first.metrics.registry is Answerer.metrics.registry
    first.metrics.webhook_deliveries.labels("discussion", "queued").inc()
    first.metrics.github_jobs.labels("discussion_created", "done").inc()
    first.metrics.github_queue.labels("queued").set(3)
    text = Answerer.metrics.render().decode()
    assert 'firstreply_github_deliveries_total{event="discussion",outcome="queued"} 1.0' in text
    assert 'firstreply_github_jobs_total{kind="discussion_created",result="done"} 1.0' in text
    assert 'firstreply_github_queue_jobs{status="queued"} 3.0' in text


async def test_the_review_pages_see_the_apps_drafts_only_through_its_extension(make_engine):
    from github_app.review import GitHubReview
    from github_app.store import GitHubStore

    async with make_engine() as engine:
        answer = await engine.answer(Question("How do I zoom the camera in?", channel="github", user_id="github:1"))
        store = GitHubStore(engine.store.engine)
        await store.hold_reply("D_1", 1, 30, kind="first", discussion_id="D_1", repository="org/tinyviz",
                               discussion_number=1, discussion_url="https://github.com/org/tinyviz/discussions/1")
        await store.update_reply("D_1", status="draft", body="Use scene.zoom(2).", answer_id=answer.id, release=True)

        detail = await engine.review_service.detail(answer.id)
        assert "github" not in detail and "github" not in await engine.review_service.overview(30)  # no App: no GitHub parts
        assert await engine.review_service.post_draft(answer.id, "ada") is None

        woken = []
        engine.register_review_extension(GitHubReview(store, wake=lambda: woken.append(True)))
        engine.register_review_extension(GitHubReview(store, wake=lambda: woken.append(True)))  # replaces, not adds
        assert len(engine.review_extensions) == 1
        detail = await engine.review_service.detail(answer.id)
        assert detail["github"].status == "draft" and detail["github"].repository == "org/tinyviz"
        assert (await engine.review_service.overview(30))["github"] == {"posted": 0, "accepted": 0, "acceptance_rate": None}
        reply_id = detail["github"].id
        assert await engine.review_service.post_draft(answer.id, "ada", "Use scene.zoom(2) to zoom in.") == {"reply": reply_id}
        assert woken == [True]
        reply = await store.reply("D_1")
        assert reply.status == "approved" and reply.body == "Use scene.zoom(2) to zoom in."
        [event] = [e for e in await engine.review_service.audit_events(10) if e.action == "github.post"]
        assert event.actor == "ada" and event.target == answer.id and event.detail == {"reply": reply_id}
