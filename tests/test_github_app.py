"""The GitHub App end to end: signed deliveries to the real webhook server (the engine's app), the
durable queue, gidgethub talking to a loopback fake GitHub that checks the JWT and validates
every GraphQL document against GitHub's schema, and the engine answering from the sample docs.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
import uuid
from pathlib import Path

import aiohttp
import pytest
from fakes.github import SCHEMA, FakeGitHub, Fault, secondary_limit
from fakes.server import serve
from sqlalchemy import func, select
from tests_support import key_with_every_role

from engine.store.models import AnswerRecord
from firstreply.serve import build_app
from github_app import sansio
from github_app.models import GitHubInstallation, GitHubJob, GitHubReply, GitHubRepository
from github_app.store import GitHubStore

PAYLOADS = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "github" / "payload-examples" / "api.github.com"
SECRET = "webhook-secret-for-tests"
SLUG = "firstreply-test"
APP_ID = 29310
KEY = "sk-maintainer"
pytestmark = pytest.mark.skipif(not (SCHEMA.is_file() and PAYLOADS.is_dir()),
                                reason="../shared/fixtures/github (GitHub's schema and payloads) is absent")
REPO = "Codertocat/Hello-World"
QUESTION_TITLE = "How do I zoom the camera in?"
QUESTION_BODY = "I render a scene with tinyviz and want to zoom the camera in closer. How?"


def payload(event: str, name: str) -> dict:
    return json.loads((PAYLOADS / event / name).read_text())


def qa_discussion(node_id: str = "D_kwDOQA", number: int = 7, **changes) -> dict:
    """The fixture's `discussion created` payload, as a new question in the Q&A category."""
    data = payload("discussion", "created.payload.json")
    d = data["discussion"]
    d.update(node_id=node_id, number=number, title=QUESTION_TITLE, body=QUESTION_BODY,
             html_url=f"https://github.com/{REPO}/discussions/{number}")
    d["category"].update(name="Q&A", slug="q-a", is_answerable=True)
    for key, value in changes.items():
        d[key] = value
    return data


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Harness:
    def __init__(self, url: str, engine, github: FakeGitHub, session: aiohttp.ClientSession) -> None:
        self.url, self.engine, self.github, self.session = url, engine, github, session

    @property
    def store(self) -> GitHubStore:
        return GitHubStore(self.engine.store.engine)

    async def deliver(self, event: str, data: dict | bytes, *, delivery: str | None = None,
                      signature: str | None = None, headers: dict | None = None) -> tuple[int, dict]:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        sent = {"Content-Type": "application/json", "X-GitHub-Event": event,
                "X-GitHub-Delivery": delivery or str(uuid.uuid4()), "X-Hub-Signature-256": signature or sign(body),
                "User-Agent": "GitHub-Hookshot/test"}
        sent.update(headers or {})
        sent = {k: v for k, v in sent.items() if v is not None}
        async with self.session.post(f"{self.url}/github/webhook", data=body, headers=sent) as response:
            return response.status, await response.json()

    async def settle(self, timeout: float = 30) -> list:
        """Wait until no job is queued or running; return every job."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            jobs = await self.store.jobs(limit=500)
            if all(j.status in ("done", "failed") for j in jobs):
                return jobs
            if loop.time() > deadline:
                raise AssertionError(f"jobs did not settle: {[j.summary() for j in jobs]}")
            await asyncio.sleep(0.05)

    async def new_discussion(self, data: dict | None = None) -> list:
        """A discussion appears on GitHub and its `created` delivery arrives; returns the settled jobs."""
        data = data or qa_discussion()
        self.github.add_discussion_from_payload(data)
        assert (await self.deliver("discussion", data))[0] == 202
        return await self.settle()

    async def api(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        async with self.session.request(method, f"{self.url}{path}", json=body,
                                        headers={"Authorization": f"Bearer {KEY}"}) as response:
            return response.status, await response.json()

    async def count(self, model) -> int:
        async with self.engine.store.session() as session:
            return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


@pytest.fixture
async def app_harness(make_engine, rsa_key, tmp_path):
    """Build a harness with GitHub App settings (overridable); yields a factory."""
    opened = []

    async def start(**overrides) -> Harness:
        github = FakeGitHub(APP_ID, rsa_key.public_pem, SLUG)
        github.add_installation(1, "Codertocat", [REPO])  # the fixture payloads' installation
        github_server = serve(github.app())
        github.url = await github_server.__aenter__()
        key_file = tmp_path / "app.pem"
        key_file.write_bytes(rsa_key.private_pem)
        settings = dict(
            api_keys=[key_with_every_role(KEY)], github_app_id=APP_ID, github_private_key_file=key_file, github_webhook_secret=SECRET,
            github_app_slug=SLUG, github_api_url=github.url, github_retry_base_seconds=0.05, github_poll_seconds=0.05,
            github_lease_seconds=5, github_workers=2, rate_limit_per_minute=10_000,
        )
        settings.update(overrides)
        engine = make_engine(**settings)
        engine_server = serve(build_app(engine))
        url = await engine_server.__aenter__()
        session = aiohttp.ClientSession()
        opened.append((session, engine_server, github_server))
        return Harness(url, engine, github, session)

    yield start
    for session, engine_server, github_server in reversed(opened):
        await session.close()
        await engine_server.__aexit__(None, None, None)
        await github_server.__aexit__(None, None, None)


async def test_a_new_qa_discussion_gets_exactly_one_reply_even_when_delivered_twice(app_harness):
    h = await app_harness()
    data = qa_discussion()
    h.github.add_discussion_from_payload(data)
    first = await h.deliver("discussion", data, delivery="delivery-1")
    again = await h.deliver("discussion", data, delivery="delivery-1")  # GitHub's redelivery
    assert first[0] == 202 and first[1]["status"] == "queued"
    assert again == (200, {"status": "duplicate", "delivery": "delivery-1"})
    jobs = await h.settle()
    assert [j.status for j in jobs] == ["done"] and jobs[0].outcome.startswith("posted")

    [comment] = h.github.bot_comments()
    assert comment["discussion"]["id"] == "D_kwDOQA" and comment["replyTo"] is None
    assert "scene.zoom(2)" in comment["body"] and "**Sources**" in comment["body"]
    assert "https://github.com/org/tinyviz/blob/v0.3.0/docs/guide/camera.rst" in comment["body"]
    assert "AI-generated first reply" in comment["body"] and sansio.marker("D_kwDOQA") in comment["body"]

    # The answer was logged for the discussion, as the conversation, on the github channel.
    reply = await h.store.reply("D_kwDOQA")
    assert reply.status == "posted" and reply.comment_id == comment["id"] and reply.answer_id
    record = await h.engine.store.answer(reply.answer_id)
    assert record.channel == "github" and record.conversation_id == "D_kwDOQA"
    assert record.link == f"https://github.com/{REPO}/discussions/7"

    # The mutation carried everything as variables; the JWT was checked and the token reused.
    mutations = [(q, v) for q, v in h.github.documents if q.lstrip().startswith("mutation")]
    assert len(mutations) == 1 and mutations[0][1]["input"]["discussionId"] == "D_kwDOQA"
    assert h.github.exchanges == 1

    # A second, different delivery of the same discussion (a manual re-send) posts nothing more.
    await h.deliver("discussion", data, delivery="delivery-2")
    jobs = await h.settle()
    assert jobs[0].outcome == "nothing to do: the reply is posted"
    assert len(h.github.bot_comments()) == 1 and h.github.exchanges == 1

    async with h.session.get(f"{h.url}/metrics", headers={"Authorization": f"Bearer {KEY}"}) as response:
        metrics = await response.text()
    assert 'firstreply_github_deliveries_total{event="discussion",outcome="queued"} 2.0' in metrics
    assert 'firstreply_github_deliveries_total{event="discussion",outcome="duplicate"} 1.0' in metrics
    assert 'firstreply_github_jobs_total{kind="discussion_created",result="done"} 2.0' in metrics
    assert 'firstreply_github_queue_jobs{status="done"} 2.0' in metrics


@pytest.mark.conformance
async def test_every_fixture_payload_is_handled_as_it_should_be(app_harness):
    h = await app_harness()
    fixture = payload("discussion", "created.payload.json")
    h.github.add_discussion_from_payload(fixture)  # category General: not answered by default
    statuses = {}
    for path in sorted(PAYLOADS.glob("*/*.json")):
        event = path.parent.name
        if event == "issue_comment":
            continue
        status, _ = await h.deliver(event, path.read_bytes())
        statuses[f"{event}/{path.name}"] = status
    assert statuses["discussion/created.payload.json"] == 202
    assert statuses["discussion/answered.payload.json"] == 202
    assert statuses["discussion/edited.payload.json"] == 200  # edits never trigger a second answer
    assert statuses["discussion_comment/created.payload.json"] == 200  # it doesn't mention the App
    assert all(s == 202 for name, s in statuses.items() if name.startswith("installation"))
    jobs = {j.kind + ":" + (j.action or ""): j for j in await h.settle()}
    assert all(j.status == "done" for j in jobs.values()), [j.summary() for j in jobs.values()]
    assert jobs["discussion_created:created"].outcome == "skipped: category 'General' is not answered"
    assert jobs["discussion_answered:answered"].outcome == "the chosen answer is not one of the App's replies"
    assert h.github.bot_comments() == []

    async with h.engine.store.session() as session:
        installations = {i.id: i for i in (await session.execute(select(GitHubInstallation))).scalars()}
        repos = {r.full_name: r for r in (await session.execute(select(GitHubRepository))).scalars()}
    assert installations[957387].account == "Codertocat" and not installations[957387].removed
    assert installations[2].removed  # installation deleted
    assert installations[16598467].suspended is False  # suspended, then unsuspended (files sort that way)
    added = payload("installation_repositories", "added.payload.json")["repositories_added"]
    removed = payload("installation_repositories", "removed.payload.json")["repositories_removed"]
    assert all(not repos[r["full_name"]].removed for r in added if r["full_name"] not in {x["full_name"] for x in removed})
    assert all(repos[r["full_name"]].removed for r in removed)


async def test_bad_deliveries_get_their_status_and_change_nothing(app_harness):
    h = await app_harness()
    data = qa_discussion()
    h.github.add_discussion_from_payload(data)
    body = json.dumps(data).encode()
    cases = [
        ("bad signature", dict(signature=sign(body, "wrong-secret")), body, 401),
        ("missing signature", dict(headers={"X-Hub-Signature-256": None}), body, 401),
        ("truncated body", dict(signature=sign(body)), body[: len(body) // 2], 401),
        ("truncated, signed as sent", dict(signature=sign(body[: len(body) // 2])), body[: len(body) // 2], 400),
        ("no delivery id", dict(headers={"X-GitHub-Delivery": None}), body, 400),
        ("HMAC-SHA1 in the SHA-256 header", dict(signature="sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()),
         body, 401),
        ("non-ASCII signature", dict(signature="sha256=" + "\u00e9" * 64), body, 401),
    ]
    for name, options, sent, status in cases:
        got, response = await h.deliver("discussion", sent, **options)
        assert got == status, name
        assert response["error"]["status"] == status and response["error"]["message"], name
    unknown = await h.deliver("repository_vulnerability_alert", {"action": "create"})
    assert unknown == (200, {"status": "ignored", "reason": "event 'repository_vulnerability_alert' is not handled"})
    ping = await h.deliver("ping", {"zen": "Design for failure.", "hook_id": 1})
    assert ping[0] == 200 and ping[1]["status"] == "pong"
    assert await h.count(GitHubJob) == 0 and await h.count(GitHubReply) == 0 and h.github.documents == []


async def test_unsigned_or_unknown_events_add_no_metric_series(app_harness):
    h = await app_harness()
    for n in range(60):  # unsigned, each with its own event name
        assert (await h.deliver(f"random-event-{n}", {"n": n}, signature="sha256=" + "0" * 64))[0] == 401
    for n in range(20):  # signed, but events the App doesn't know
        assert (await h.deliver(f"made-up-{n}", {"action": "x"}))[0] == 200
    assert (await h.deliver("discussion", {"action": "edited"}))[0] == 200
    async with h.session.get(f"{h.url}/metrics", headers={"Authorization": f"Bearer {KEY}"}) as response:
        metrics = await response.text()
    series = [line for line in metrics.splitlines() if line.startswith("firstreply_github_deliveries_total{")]
    assert sorted(series) == sorted([
        'firstreply_github_deliveries_total{event="unverified",outcome="rejected_401"} 60.0',
        'firstreply_github_deliveries_total{event="other",outcome="ignored"} 20.0',
        'firstreply_github_deliveries_total{event="discussion",outcome="ignored"} 1.0',
    ]), series


async def test_an_oversized_delivery_is_refused_before_anything_is_read_into_the_queue(app_harness):
    h = await app_harness(github_max_payload_bytes=4096)
    data = qa_discussion(body="x" * 10_000)
    status, response = await h.deliver("discussion", data)
    assert status == 413 and "4096" in response["error"]["message"]
    assert await h.count(GitHubJob) == 0


async def test_a_502_then_success_posts_once(app_harness):
    h = await app_harness()
    data = qa_discussion()
    h.github.add_discussion_from_payload(data)
    h.github.mutation_faults = [Fault(502)]
    await h.deliver("discussion", data)
    [job] = await h.settle()
    assert job.status == "done" and job.attempts == 2 and "HTTP 502" in job.last_error
    assert len(h.github.bot_comments()) == 1


async def test_a_502_after_github_created_the_comment_still_posts_once(app_harness):
    h = await app_harness()
    data = qa_discussion()
    h.github.add_discussion_from_payload(data)
    h.github.mutation_faults = [Fault(502, after_commit=True)]
    await h.deliver("discussion", data)
    [job] = await h.settle()
    assert job.status == "done" and job.outcome.startswith("already posted")
    [comment] = h.github.bot_comments()
    assert (await h.store.reply("D_kwDOQA")).comment_id == comment["id"]


async def test_a_secondary_rate_limit_is_waited_out(app_harness):
    h = await app_harness()
    data = qa_discussion()
    h.github.add_discussion_from_payload(data)
    h.github.mutation_faults = [Fault(403, {"Retry-After": "1"})]
    await h.deliver("discussion", data)
    loop = asyncio.get_running_loop()
    started = loop.time()
    [job] = await h.settle()
    assert job.status == "done" and job.attempts == 2 and "HTTP 403" in job.last_error
    assert loop.time() - started >= 1.0  # not before GitHub's Retry-After, though the backoff base is 0.05 s
    assert len(h.github.bot_comments()) == 1


async def test_a_secondary_rate_limit_without_retry_after_is_retried_then_fails_with_the_reason(app_harness):
    # GitHub: 403 "You have exceeded a secondary rate limit", requests left, no Retry-After. Wait (at least a
    # minute in production; FIRSTREPLY_GITHUB_SECONDARY_LIMIT_SECONDS here), then back off exponentially.
    h = await app_harness(github_secondary_limit_seconds=0.1, github_max_attempts=3)
    data = qa_discussion()
    h.github.add_discussion_from_payload(data)
    h.github.mutation_faults = [secondary_limit()]
    await h.deliver("discussion", data)
    [job] = await h.settle()
    assert job.status == "done" and job.attempts == 2 and "secondary rate limit" in job.last_error, job.summary()
    assert len(h.github.bot_comments()) == 1

    other = qa_discussion("D_other", 8)
    h.github.add_discussion_from_payload(other)
    h.github.mutation_faults = [secondary_limit() for _ in range(3)]
    await h.deliver("discussion", other)
    failed = [j for j in await h.settle() if j.payload["discussion"]["node_id"] == "D_other"][0]
    assert failed.status == "failed" and failed.attempts == 3, failed.summary()
    assert "secondary rate limit" in failed.last_error and "gave up after 3 attempts" in failed.last_error
    assert len(h.github.bot_comments()) == 1


async def test_a_job_that_keeps_failing_ends_failed_visible_and_retryable(app_harness):
    h = await app_harness(github_max_attempts=3)
    data = qa_discussion()
    h.github.add_discussion_from_payload(data)
    h.github.mutation_faults = [Fault(502)] * 3
    await h.deliver("discussion", data)
    [job] = await h.settle()
    assert job.status == "failed" and job.attempts == 3 and "gave up after 3 attempts" in job.last_error
    status, listed = await h.api("GET", "/api/v1/github/jobs?status=failed")
    assert status == 200 and [j["id"] for j in listed["jobs"]] == [job.id]
    assert h.github.bot_comments() == []

    # A maintainer retries it once GitHub is healthy again: it posts, once.
    assert (await h.api("POST", f"/api/v1/github/jobs/{job.id}/retry"))[0] == 200
    [job] = await h.settle()
    assert job.status == "done" and len(h.github.bot_comments()) == 1
    assert (await h.api("POST", f"/api/v1/github/jobs/{job.id}/retry"))[0] == 404  # not failed any more


async def test_a_4xx_from_github_fails_the_job_at_once_with_the_reason(app_harness):
    h = await app_harness()
    data = qa_discussion()
    discussion = h.github.add_discussion_from_payload(data)
    original = h.github.addDiscussionComment

    def lock_then_post(info, input):  # locked between our read and our write
        discussion["locked"] = True
        return original(info, input)

    h.github.addDiscussionComment = lock_then_post
    await h.deliver("discussion", data)
    [job] = await h.settle()
    assert job.status == "failed" and job.attempts == 1 and "Discussion is locked" in job.last_error
    assert (await h.store.reply("D_kwDOQA")).status == "ready"  # the answer is kept for a retry


async def test_a_discussion_deleted_before_its_job_runs_is_skipped_not_failed(app_harness):
    h = await app_harness()
    data = qa_discussion()
    h.github.add_discussion_from_payload(data)
    h.github.delete_discussion("D_kwDOQA")  # GitHub now answers NOT_FOUND "Could not resolve to a Discussion"
    assert (await h.deliver("discussion", data))[0] == 202
    [job] = await h.settle()
    assert job.status == "done" and job.outcome.startswith("skipped: the discussion no longer exists"), job.summary()
    assert "Could not resolve to a Discussion" in job.outcome
    assert (await h.store.reply("D_kwDOQA")).status == "skipped"
    status, failed = await h.api("GET", "/api/v1/github/jobs?status=failed")
    assert status == 200 and failed["jobs"] == [] and h.github.bot_comments() == []


async def test_who_and_what_is_not_answered(app_harness):
    h = await app_harness()
    cases = {
        "D_locked": (qa_discussion("D_locked", 11, locked=True), "skipped: the discussion is locked"),
        "D_bot": (qa_discussion("D_bot", 12, user={"login": "renovate[bot]", "type": "Bot"}), "skipped: the author is a bot"),
    }
    for data, _ in cases.values():
        h.github.add_discussion_from_payload(data)
        await h.deliver("discussion", data)
    outcomes = {j.payload["discussion"]["node_id"]: j.outcome for j in await h.settle()}
    assert outcomes == {node_id: outcome for node_id, (_, outcome) in cases.items()}
    assert h.github.bot_comments() == []


async def test_opt_in_mode_answers_only_those_who_ticked_the_box(app_harness):
    h = await app_harness(github_opt_in=True)
    box = "- [{}] I want an AI-generated answer as a first response"
    unticked = qa_discussion("D_no", 21, body=QUESTION_BODY + "\n\n" + box.format(" "))
    ticked = qa_discussion("D_yes", 22, body=QUESTION_BODY + "\n\n" + box.format("x"))
    for data in (unticked, ticked):
        h.github.add_discussion_from_payload(data)
        await h.deliver("discussion", data)
    outcomes = {j.payload["discussion"]["node_id"]: j.outcome for j in await h.settle()}
    assert outcomes["D_no"] == "skipped: the author did not ask for an AI answer"
    assert outcomes["D_yes"].startswith("posted")
    [comment] = h.github.bot_comments()
    assert comment["discussion"]["id"] == "D_yes"


async def test_low_confidence_posts_nothing_or_a_short_note(app_harness):
    off_topic = dict(title="Sourdough", body="What's a good recipe for rye sourdough bread?")
    silent = await app_harness()
    data = qa_discussion(**off_topic)
    silent.github.add_discussion_from_payload(data)
    await silent.deliver("discussion", data)
    [job] = await silent.settle()
    assert job.outcome == "abstained: low confidence, nothing posted" and silent.github.bot_comments() == []
    assert (await silent.store.reply("D_kwDOQA")).status == "abstained"

    noted = await app_harness(github_abstain="note", github_maintainer_hint="The maintainers read every thread.")
    noted.github.add_discussion_from_payload(data)
    await noted.deliver("discussion", data)
    await noted.settle()
    [comment] = noted.github.bot_comments()
    assert "couldn't find a confident answer" in comment["body"] and "The maintainers read every thread." in comment["body"]


async def test_a_comment_mentioning_the_app_gets_a_threaded_reply_in_the_same_conversation(app_harness):
    h = await app_harness()
    await h.new_discussion()

    question = h.github.add_comment("D_kwDOQA", "Thanks! Can I zoom out too?", author="octocat")
    follow_up = h.github.add_comment("D_kwDOQA", f"@{SLUG} and how do I zoom the camera out?", author="octocat",
                                     reply_to=question["id"])
    hook = payload("discussion_comment", "created.payload.json")
    hook["comment"].update(node_id=follow_up["id"], body=follow_up["body"])
    hook["discussion"].update(node_id="D_kwDOQA", number=7)
    hook["discussion"]["category"].update(slug="q-a", name="Q&A")
    assert (await h.deliver("discussion_comment", hook))[0] == 202
    await h.settle()
    replies = [c for c in h.github.bot_comments() if c["replyTo"] is not None]
    assert len(replies) == 1 and replies[0]["replyTo"]["id"] == question["id"]  # threads are one level deep
    assert sansio.marker(follow_up["id"]) in replies[0]["body"]
    reply = await h.store.reply(follow_up["id"])
    record = await h.engine.store.answer(reply.answer_id)
    assert record.conversation_id == "D_kwDOQA" and "zoom the camera out" in record.question
    history = await h.engine.store.history("D_kwDOQA")
    assert len(history) == 4  # the first question and answer, then the follow-up and its answer


async def test_review_mode_posts_nothing_until_a_maintainer_approves(app_harness):
    h = await app_harness(github_review_categories=["Q&A"])
    [job] = await h.new_discussion()
    assert job.outcome == "drafted for review" and h.github.bot_comments() == []
    status, drafts = await h.api("GET", "/api/v1/github/replies?status=draft")
    [draft] = drafts["replies"]
    assert status == 200 and "scene.zoom(2)" in draft["body"]

    corrected = draft["body"].replace("scene.zoom(2)", "scene.zoom(2.5)")
    status, approved = await h.api("POST", f"/api/v1/github/replies/{draft['id']}/approve",
                                   {"by": "someone-else", "body": corrected})  # the key, not the body, says who
    assert status == 200 and approved["status"] == "approved" and approved["original_body"] == draft["body"]
    await h.settle()
    [comment] = h.github.bot_comments()
    assert "scene.zoom(2.5)" in comment["body"]
    reply = await h.store.reply("D_kwDOQA")
    assert reply.status == "posted" and reply.approved_by == "api:tests"
    status, again = await h.api("POST", f"/api/v1/github/replies/{draft['id']}/approve", {})
    assert status == 409 and again["error"]["message"].endswith("is not a draft: it is posted")
    assert (await h.api("POST", "/api/v1/github/replies/999/approve", {}))[0] == 404


@pytest.mark.parametrize("path", ["http", "cli", "review page"])
async def test_a_corrected_draft_carries_the_marker_so_a_502_after_github_created_it_posts_once(app_harness, path, tmp_path,
                                                                                              monkeypatch):
    """A maintainer's rewrite has no marker of its own: the App adds it, whichever way the draft was approved."""
    h = await app_harness(github_review_categories=["Q&A"])
    await h.new_discussion()
    [draft] = (await h.api("GET", "/api/v1/github/replies?status=draft"))[1]["replies"]
    rewritten = "Use `scene.zoom(2.5)` to zoom in; see the camera guide."  # written from scratch: no marker
    h.github.mutation_faults = [Fault(502, after_commit=True)]  # GitHub creates the comment, then answers 502
    if path == "http":
        assert (await h.api("POST", f"/api/v1/github/replies/{draft['id']}/approve", {"body": rewritten}))[0] == 200
    elif path == "cli":
        from click.testing import CliRunner

        from firstreply.cli import cli

        (tmp_path / "fixed.md").write_text(rewritten)
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("FIRSTREPLY_DATA_DIR", str(tmp_path / "cli-state"))
        monkeypatch.setenv("FIRSTREPLY_DATABASE_URL", h.engine.settings.database_url)
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["github", "approve", str(draft["id"]), "--by", "ada",
                                                                   "--body-file", str(tmp_path / "fixed.md")])
        assert result.exit_code == 0, result.output
    else:  # what the review page's "post" button calls
        assert await h.engine.review_service.post_draft(draft["answer_id"], "ada", rewritten) is not None
    jobs = await h.settle()
    post = next(j for j in jobs if j.kind == "post_reply")
    assert post.status == "done" and post.outcome.startswith("already posted"), post.summary()
    [comment] = h.github.bot_comments()
    assert comment["body"].startswith(rewritten) and sansio.marker("D_kwDOQA") in comment["body"]
    reply = await h.store.reply("D_kwDOQA")
    assert reply.status == "posted" and reply.comment_id == comment["id"]


async def test_concurrent_approvals_of_one_draft_one_wins_the_others_get_a_409_and_it_posts_once(app_harness,
                                                                                              database_overrides):
    h = await app_harness(github_review_categories=["Q&A"], **database_overrides)
    await h.new_discussion()
    [draft] = (await h.api("GET", "/api/v1/github/replies?status=draft"))[1]["replies"]
    results = await asyncio.gather(*(h.api("POST", f"/api/v1/github/replies/{draft['id']}/approve",
                                           {"body": f"Corrected text number {n}."}) for n in range(8)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [409] * 7, results
    [winner] = [body for status, body in results if status == 200]
    assert all("is not a draft" in body["error"]["message"] for status, body in results if status == 409)
    await h.settle()
    [comment] = h.github.bot_comments()
    assert comment["body"].startswith(winner["body"])
    assert await h.count(GitHubJob) == 2  # the discussion's job and one post_reply


async def test_an_accepted_bot_reply_is_recorded_on_its_answer(app_harness):
    h = await app_harness()
    await h.new_discussion()
    [comment] = h.github.bot_comments()
    answered = payload("discussion", "answered.payload.json")
    answered["discussion"]["node_id"] = "D_kwDOQA"
    answered["answer"].update(node_id=comment["id"], user={"login": f"{SLUG}[bot]", "type": "Bot"})
    await h.deliver("discussion", answered)
    jobs = await h.settle()
    assert jobs[0].outcome.startswith("accepted")
    reply = await h.store.reply("D_kwDOQA")
    async with h.engine.store.session() as session:
        record = await session.get(AnswerRecord, reply.answer_id)
    assert reply.accepted and record.accepted_at is not None


async def test_a_switched_off_repository_gets_no_replies(app_harness):
    h = await app_harness()
    added = payload("installation_repositories", "added.payload.json")
    added["installation"]["id"] = 1
    added["repositories_added"] = [{"id": 186853002, "node_id": "R_1", "name": "Hello-World", "full_name": REPO,
                                    "private": False}]
    await h.deliver("installation_repositories", added)
    await h.settle()
    status, repos = await h.api("GET", "/api/v1/github/repositories")
    assert status == 200 and [r["full_name"] for r in repos["repositories"]] == [REPO]
    assert (await h.api("PUT", "/api/v1/github/repositories/186853002", {"enabled": False, "by": "ada"}))[0] == 200

    data = qa_discussion()
    h.github.add_discussion_from_payload(data)
    await h.deliver("discussion", data)
    jobs = await h.settle()
    assert jobs[0].outcome == f"skipped: replies are switched off for {REPO}"
    assert h.github.bot_comments() == [] and h.github.documents == []


async def test_only_installations_and_repositories_the_app_knows_are_answered(app_harness, caplog):
    h = await app_harness()
    # Installation 1 was never recorded here (no installation event): looked up once with the App's JWT.
    for number in (7, 8):
        await h.new_discussion(qa_discussion(f"D_known_{number}", number))
    assert h.github.rest_calls == ["GET /app/installations/1", f"GET /repos/{REPO}/installation"]
    assert (await h.store.installation(1)).account == "Codertocat"
    assert len(h.github.bot_comments()) == 2

    # An installation GitHub doesn't know, and a repository outside the installation: no reply, a log line.
    stranger = qa_discussion("D_stranger", 9)
    stranger["installation"]["id"] = 4242
    other_repo = qa_discussion("D_other_repo", 10)
    other_repo["repository"].update(id=99, full_name="someone/else", name="else")
    for data in (stranger, other_repo):
        h.github.add_discussion_from_payload(data)
        assert (await h.deliver("discussion", data))[0] == 202
    outcomes = {j.payload["discussion"]["node_id"]: j.outcome for j in await h.settle()}
    assert outcomes["D_stranger"] == "skipped: installation 4242 is unknown to the App"
    assert outcomes["D_other_repo"] == "skipped: repository someone/else is not one of installation 1's"
    assert len(h.github.bot_comments()) == 2 and h.github.exchanges == 1  # no token was even asked for
    assert "installation 4242, which the App does not know" in caplog.text
    assert "someone/else under installation 1, which the App has not recorded" in caplog.text


async def test_maintainer_routes_need_an_api_key(app_harness):
    h = await app_harness()
    async with h.session.get(f"{h.url}/api/v1/github/jobs") as response:
        assert response.status == 401


async def test_serve_refuses_to_start_with_a_half_configured_app(make_engine):
    from engine.config import ConfigError

    engine = make_engine(github_app_slug=SLUG)
    with pytest.raises(ConfigError, match="missing setting FIRSTREPLY_GITHUB_APP_ID"):
        build_app(engine)


async def test_many_deliveries_and_workers_never_post_twice_for_one_discussion(app_harness, database_overrides):
    h = await app_harness(github_workers=4, **database_overrides)
    data = qa_discussion()
    h.github.add_discussion_from_payload(data)
    results = await asyncio.gather(*(h.deliver("discussion", copy.deepcopy(data)) for _ in range(6)))
    assert all(status == 202 for status, _ in results)  # six distinct deliveries of one discussion
    jobs = await h.settle()
    assert len(jobs) == 6 and all(j.status == "done" for j in jobs)
    assert len(h.github.bot_comments()) == 1


async def test_a_burst_of_deliveries_is_queued_in_few_transactions_and_each_delivery_once(database_overrides, tmp_path):
    """Group commit: concurrent enqueues share transactions (a burst is acknowledged without one commit each),
    and a delivery id seen before, or twice in one batch, is still refused exactly once."""
    from sqlalchemy import event

    from engine.store.database import create_engine, migrate

    database = create_engine(database_overrides.get("database_url", f"sqlite+aiosqlite:///{tmp_path}/queue.db"))
    await migrate(database)
    commits = []
    event.listen(database.sync_engine, "commit", lambda _connection: commits.append(1))
    store = GitHubStore(database)
    try:
        assert await store.enqueue("early", "discussion", "created", "discussion_created", {"n": -1}) is not None
        commits.clear()
        deliveries = [f"d-{n}" for n in range(60)] + ["d-3", "d-7", "early"]  # redeliveries, in the same burst
        ids = await asyncio.gather(*(store.enqueue(d, "discussion", "created", "discussion_created", {"n": i},
                                                   key=f"discussion:D_{i % 5}") for i, d in enumerate(deliveries)))
        assert len(commits) < 10, len(commits)  # today: one transaction per delivery
        assert all(isinstance(i, int) for i in ids[:60]) and len(set(ids[:60])) == 60
        assert ids[60:] == [None, None, None]
        jobs = await store.jobs(limit=500)
        assert len(jobs) == 61 and sorted(j.delivery_id for j in jobs) == sorted(["early", *deliveries[:60]])
        assert {j.id: j.payload["n"] for j in jobs if j.delivery_id != "early"} == dict(zip(ids[:60], range(60), strict=True))
    finally:
        await database.dispose()


async def test_installation_tokens_are_cached_until_shortly_before_they_expire_and_bad_jwts_refused(rsa_key, tmp_path):
    from datetime import timedelta

    from engine.config import GitHubSettings
    from github_app.api import GitHubClient, PermanentError
    from github_app.config import app_config

    github = FakeGitHub(APP_ID, rsa_key.public_pem, SLUG)
    github.add_installation(1, "org-one")
    github.add_installation(2, "org-two")
    async with serve(github.app()) as url, aiohttp.ClientSession() as session:
        key_file = tmp_path / "app.pem"
        key_file.write_bytes(rsa_key.private_pem)
        settings = dict(app_id=APP_ID, private_key_file=key_file, webhook_secret=SECRET, app_slug=SLUG, _env_file=None)
        client = GitHubClient(app_config(GitHubSettings(api_url=url, **settings)), session)
        first = await client.installation_token(1)
        assert await client.installation_token(1) == first and github.exchanges == 1
        assert await client.installation_token(2) != first and github.exchanges == 2  # one token per installation

        github.token_lifetime = timedelta(minutes=4)  # inside the 5-minute margin: renewed on every use
        client.forget_token(1)
        short = await client.installation_token(1)
        assert await client.installation_token(1) != short and github.exchanges == 4

        # A JWT signed with another key, or naming another App, is refused: a permanent, explained error.
        other = FakeGitHub(APP_ID + 1, rsa_key.public_pem, SLUG)
        async with serve(other.app()) as other_url:
            wrong_app = GitHubClient(app_config(GitHubSettings(api_url=other_url, **settings)), session)
            with pytest.raises(PermanentError, match="token exchange refused: HTTP 401"):
                await wrong_app.installation_token(1)


def push_delivery(ref: str, after: str, **changes) -> dict:
    """A `push` delivery for the fixture's repository (the shape of octokit/webhooks' push examples)."""
    data = {"ref": ref, "before": "0" * 40, "after": after, "created": False, "deleted": False, "forced": False,
            "base_ref": None, "commits": [], "head_commit": None,
            "repository": {"id": 186853002, "name": "Hello-World", "full_name": REPO, "default_branch": "main",
                           "clone_url": f"https://github.com/{REPO}.git"},
            "pusher": {"name": "Codertocat"}, "sender": {"login": "Codertocat", "type": "User"},
            "installation": {"id": 1}}
    data.update(changes)
    return data


async def test_a_push_to_the_default_branch_re_ingests_the_bound_knowledge_base_and_the_server_answers_from_it(
        tmp_path, embedder, rsa_key, sample_project):
    """Issue 20: the App's `push` webhook (signed like every delivery) queues a re-ingest of the knowledge base
    bound to the repository; the running server searches the new index. Other branches and tags change nothing."""
    from tests_support import git_upstream, push_change

    from engine.config import Settings
    from engine.service import Engine

    work, bare = git_upstream(sample_project, tmp_path / "upstream")
    key_file = tmp_path / "app.pem"
    key_file.write_bytes(rsa_key.private_pem)
    github = FakeGitHub(APP_ID, rsa_key.public_pem, SLUG)
    engine = Engine(Settings(
        data_dir=tmp_path / "state", kb="default", user_salt="pepper-pepper-pepper-pepper-pepper", _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite", api_keys=[key_with_every_role(KEY)],
        github_app_id=APP_ID, github_private_key_file=key_file, github_webhook_secret=SECRET, github_app_slug=SLUG,
        github_poll_seconds=0.05, github_retry_base_seconds=0.05,
        github_sources={REPO: {"kb": "hello", "url": f"file://{bare}"}}))
    engine.__dict__["embedder"] = embedder
    async with serve(github.app()) as github.url, serve(build_app(engine)) as url, aiohttp.ClientSession() as session:
        harness = Harness(url, engine, github, session)

        async def search(query: str) -> list[dict]:
            async with session.get(f"{url}/v1/search", params={"q": query, "k": "1", "kb": "hello"},
                                   headers={"Authorization": f"Bearer {KEY}"}) as response:
                assert response.status == 200, await response.text()
                return (await response.json())["hits"]

        status, body = await harness.deliver("push", push_delivery("refs/heads/main", "1" * 40),
                                             signature="sha256=" + "0" * 64)
        assert status == 401 and not await harness.store.jobs()  # a forged push queues nothing

        assert (await harness.deliver("push", push_delivery("refs/heads/main", "1" * 40)))[0] == 202
        [job] = await harness.settle(timeout=300)
        assert (job.kind, job.status) == ("reingest", "done"), job.summary()
        assert job.outcome.startswith("hello at ") and "7 added" in job.outcome

        commit = push_change(work, "docs/guide/lighting.md",
                             "# Lighting\n\nAdd a spotlight with `scene.add_spotlight(color='amber')`; it casts soft shadows.\n")
        for ignored in (push_delivery("refs/heads/feature", commit), push_delivery("refs/tags/v2.0.0", commit)):
            status, body = await harness.deliver("push", ignored)
            assert (status, body["status"]) == (200, "ignored"), body
        [before] = await search("amber spotlight soft shadows")
        assert before["path"] != "docs/guide/lighting.md"

        assert (await harness.deliver("push", push_delivery("refs/heads/main", commit)))[0] == 202
        jobs = await harness.settle(timeout=300)
        assert [j.status for j in jobs] == ["done", "done"] and "1 added" in jobs[0].outcome, [j.summary() for j in jobs]
        [hit] = await search("amber spotlight soft shadows")
        assert hit["path"] == "docs/guide/lighting.md"
