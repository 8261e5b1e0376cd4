"""Killing the App mid-job loses nothing and posts nothing twice.

``firstreply github-app`` runs in a child process (asking the engine, served by this test,
over HTTP; its queue in a SQLite file); the fake GitHub holds one request forever so the test
knows the App is mid-job, and the child gets SIGKILL: no cleanup, no goodbye. A second child
then starts on the same database and must finish the job.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from fakes.github import FakeGitHub
from fakes.server import serve
from test_github_app import APP_ID, KEY, SECRET, SLUG, qa_discussion, sign
from test_github_app import pytestmark as needs_fixtures
from tests_support import key_with_every_role

from engine.store.database import create_engine
from firstreply.serve import build_app
from github_app.store import GitHubStore

pytestmark = [pytest.mark.subprocess, needs_fixtures]
FIRSTREPLY = Path(sys.executable).with_name("firstreply")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Child:
    def __init__(self, env: dict, port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.process: subprocess.Popen | None = None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([str(FIRSTREPLY), "github-app", "--port", str(self.port)], env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT)
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                if self.process.poll() is not None:
                    raise AssertionError(f"firstreply github-app exited:\n{self.log.read_text()}")
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"firstreply github-app did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
async def world(make_engine, rsa_key, tmp_path, database_overrides):
    github = FakeGitHub(APP_ID, rsa_key.public_pem, SLUG)
    github.add_installation(1, "Codertocat", ["Codertocat/Hello-World"])
    engine = make_engine(api_keys=[key_with_every_role(KEY)], rate_limit_per_minute=10_000)
    async with serve(github.app()) as github_url, serve(build_app(engine)) as engine_url:
        key_file = tmp_path / "app.pem"
        key_file.write_bytes(rsa_key.private_pem)
        database = database_overrides.get("database_url", f"sqlite+aiosqlite:///{tmp_path}/app.db")
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIRSTREPLY_")}
        env.update({
            "FIRSTREPLY_DATA_DIR": str(tmp_path / "app-state"), "FIRSTREPLY_DATABASE_URL": database,
            "FIRSTREPLY_ENGINE_URL": engine_url, "FIRSTREPLY_ENGINE_API_KEY": KEY,
            "FIRSTREPLY_GITHUB_APP_ID": str(APP_ID), "FIRSTREPLY_GITHUB_PRIVATE_KEY_FILE": str(key_file),
            "FIRSTREPLY_GITHUB_WEBHOOK_SECRET": SECRET, "FIRSTREPLY_GITHUB_APP_SLUG": SLUG,
            "FIRSTREPLY_GITHUB_API_URL": github_url, "FIRSTREPLY_GITHUB_LEASE_SECONDS": "1",
            "FIRSTREPLY_GITHUB_POLL_SECONDS": "0.1", "FIRSTREPLY_GITHUB_RETRY_BASE_SECONDS": "0.05",
        })
        child = Child(env, free_port(), tmp_path / "child.log")
        store = GitHubStore(create_engine(database))
        github.env = env
        try:
            yield github, child, store
        finally:
            child.stop()
            for other in getattr(github, "others", []):
                other.stop()
            github.released.set()
            await store.engine.dispose()


async def settle(store: GitHubStore, timeout: float = 30) -> list:
    for _ in range(int(timeout / 0.1)):
        jobs = await store.jobs()
        if jobs and all(j.status in ("done", "failed") for j in jobs):
            return jobs
        await asyncio.sleep(0.1)
    raise AssertionError(f"jobs did not settle: {[j.summary() for j in await store.jobs()]}")


async def deliver(port: int, data: dict, delivery: str = "delivery-1") -> int:
    import json

    body = json.dumps(data).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": "discussion", "X-GitHub-Delivery": delivery,
               "X-Hub-Signature-256": sign(body)}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://127.0.0.1:{port}/github/webhook", data=body, headers=headers) as response:
            return response.status


@pytest.mark.parametrize("killed_while", ["query", "mutation"])
async def test_a_crash_after_the_acknowledgement_loses_nothing_and_posts_once(world, killed_while):
    """``query``: killed before posting; ``mutation``: killed after GitHub created the comment, before the App knew."""
    github, child, store = world
    data = qa_discussion()
    github.add_discussion_from_payload(data)
    github.hold = killed_while
    await child.start()
    assert await deliver(child.port, data) == 202
    await asyncio.wait_for(github.holding.wait(), 30)
    child.kill()
    assert len(github.bot_comments()) == (1 if killed_while == "mutation" else 0)
    [job] = await store.jobs()
    assert job.status == "running"  # acknowledged and in the queue, owned by a dead worker

    github.hold = None
    await child.start()
    assert await deliver(child.port, data) == 200  # GitHub's redelivery after the outage changes nothing
    [job] = await settle(store)
    assert job.status == "done" and job.attempts == 2
    [comment] = github.bot_comments()
    assert (await store.reply("D_kwDOQA")).comment_id == comment["id"]
    if killed_while == "mutation":
        assert job.outcome.startswith("already posted")


async def test_two_app_processes_on_one_database_post_one_reply_for_one_discussion(world, tmp_path):
    """Scale-out: the same discussion delivered to two processes sharing the queue (SQLite file or PostgreSQL)."""
    github, first, store = world
    second = Child(github.env, free_port(), tmp_path / "second.log")
    github.others = [second]
    data = qa_discussion()
    github.add_discussion_from_payload(data)
    await asyncio.gather(first.start(), second.start())
    statuses = await asyncio.gather(deliver(first.port, data, "to-first"), deliver(second.port, data, "to-second"),
                                    deliver(second.port, data, "to-first"))  # and one redelivered to the other process
    assert sorted(statuses) == [200, 202, 202]
    jobs = await settle(store)
    assert len(jobs) == 2 and all(j.status == "done" for j in jobs)
    assert len(github.bot_comments()) == 1
