"""Issue 20: the community's answered history, imported from GitHub Discussions as past answers and candidate
golden records (``firstreply history import github OWNER/REPO``), through gidgethub against the loopback fake
GitHub, whose GraphQL validates every document against GitHub's published schema."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from click.testing import CliRunner
from fakes.github import SCHEMA, FakeGitHub, Fault
from fakes.server import serve
from tests_support import Browser, key_with_every_role

from engine.config import Settings
from firstreply.cli import cli
from firstreply.cli.history import import_github
from github_app.api import GitHubAPI, PermanentError, TransientError
from github_app.history import answered_thread, token_caller

pytestmark = pytest.mark.skipif(not SCHEMA.is_file(), reason="../shared/fixtures/github (GitHub's schema) is absent")

REPO = "octo/widgets"
TOKEN = "ghp_" + "t" * 36
KEY = "history-key-0123456789"
#: Logins that appear nowhere in the texts: finding one in the data folder means a name was stored in clear.
ASKER, MAINTAINER, HELPER, OTHER = "asker-zq1", "maint-zq2", "helper-zq3", "someone-zq4"


def populate(hub: FakeGitHub) -> dict[str, str]:
    """Five discussions: three answered (two marked, one by a maintainer's reply), one unanswered, one opted out."""
    d1 = hub.add_discussion(REPO, 1, "D_1", title="How do I zoom the camera?", body="The scene is too small.",
                            author=ASKER)
    c1 = hub.add_comment("D_1", "Call scene.camera.zoom(2) before rendering.", author=MAINTAINER, association="MEMBER")
    hub.mark_answer(c1["id"])
    hub.add_discussion(REPO, 2, "D_2", title="Does it run on Windows?", body="Installing fails on Windows 11.",
                       author=OTHER)
    hub.add_comment("D_2", "Same here!", author=HELPER, association="NONE")
    hub.add_comment("D_2", "Yes: install the wheels from PyPI, not the sdist.", author=MAINTAINER,
                    association="OWNER")
    hub.add_discussion(REPO, 3, "D_3", title="Roadmap for 2.0?", body="What comes next?", author=OTHER)
    hub.add_comment("D_3", "I'd like to know too.", author=HELPER, association="CONTRIBUTOR")
    hub.add_discussion(REPO, 4, "D_4", title="Crash on export", body="It crashes. [no-firstreply]", author=ASKER)
    c4 = hub.add_comment("D_4", "Fixed in 0.4.", author=MAINTAINER, association="MEMBER")
    hub.mark_answer(c4["id"])
    hub.add_discussion(REPO, 5, "D_5", title="How are colours picked?", body="Where is the palette set?",
                       author=OTHER)
    c5 = hub.add_comment("D_5", "Set the palette with tinyviz.palette('viridis').", author=HELPER, association="NONE")
    hub.mark_answer(c5["id"])
    return {"answer_1": c1["id"], "answer_5": c5["id"], "d1": d1["id"]}


@pytest.fixture
async def hub(rsa_key):
    github = FakeGitHub(1, rsa_key.public_pem, "firstreply-test")
    github.add_token(TOKEN)
    async with serve(github.app()) as url:
        github.url = url
        yield github


@pytest.fixture
async def engine(hub, embedder, tmp_path):
    from engine.service import Engine

    settings = Settings(data_dir=tmp_path / "state", kb="hist", user_salt="pepper-pepper-pepper-pepper-pepper",
                        database_url=f"sqlite+aiosqlite:///{tmp_path}/state/fr.db", github_token=TOKEN,
                        github_api_url=hub.url, api_keys=[key_with_every_role(KEY)], _env_file=None)
    made = Engine(settings)
    made.__dict__["embedder"] = embedder
    async with made:
        yield made


@pytest.fixture
async def caller(hub):
    async with aiohttp.ClientSession() as session:
        yield token_caller(GitHubAPI(session, "tests", oauth_token=TOKEN, base_url=hub.url), f"{hub.url}/graphql")


class Sleeps(list):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def queries(hub: FakeGitHub) -> list[dict]:
    return [variables for query, variables in hub.documents if "DiscussionHistory" in query]


async def test_an_import_reads_two_pages_and_stores_the_answered_threads_as_candidates(hub, engine, caller):
    populate(hub)
    totals = await import_github(engine, REPO, caller, page_size=3)
    assert (totals["pages"], totals["new"], totals["unanswered"], totals["opted out"]) == (2, 3, 1, 1)
    sent = queries(hub)
    assert len(sent) == 2 and sent[0]["after"] is None and sent[1]["after"] and sent[1]["first"] == 3

    rows, more = await engine.review_service.past_threads("candidate")
    assert not more
    by_title = {r.title: r for r in rows}
    assert set(by_title) == {"How do I zoom the camera?", "Does it run on Windows?", "How are colours picked?"}
    zoom = by_title["How do I zoom the camera?"]
    assert (zoom.answer, zoom.answer_kind, zoom.url) == ("Call scene.camera.zoom(2) before rendering.", "accepted",
                                                         f"https://github.com/{REPO}/discussions/1")
    windows = by_title["Does it run on Windows?"]  # no answer marked: the maintainer's reply, not the "same here"
    assert (windows.answer, windows.answer_kind) == ("Yes: install the wheels from PyPI, not the sdist.", "maintainers")

    # Searchable as a past answer, cited by the thread's own URL.
    hits = await engine.asearch("zoom the camera before rendering", kb="hist")
    top = hits[0].chunk
    assert (top.source_type, top.url) == ("past_answer", f"https://github.com/{REPO}/discussions/1")
    assert "scene.camera.zoom(2)" in top.text and "too small" in top.text


async def test_names_are_kept_only_as_pseudonyms(hub, engine, caller, tmp_path):
    populate(hub)
    await import_github(engine, REPO, caller, page_size=3)
    rows, _ = await engine.review_service.past_threads("candidate")
    assert all(r.author_hash and len(r.author_hash) == 32 for r in rows)
    by_title = {r.title: r.author_hash for r in rows}  # OTHER asked two of them: one pseudonym for both
    assert by_title["Does it run on Windows?"] == by_title["How are colours picked?"] != by_title["How do I zoom the camera?"]
    await engine.store.engine.dispose()  # flush SQLite's WAL into the file before reading it
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for login in (ASKER, MAINTAINER, HELPER, OTHER):
                assert login.encode() not in data, (login, path)


async def test_a_second_run_imports_nothing_new_and_an_updated_thread_is_read_again(hub, engine, caller):
    ids = populate(hub)
    await import_github(engine, REPO, caller, page_size=3)
    hub.documents.clear()
    again = await import_github(engine, REPO, caller, page_size=3)
    assert (again["new"], again["updated"], again["unchanged"]) == (0, 0, 0)
    assert len(queries(hub)) == 1  # one request, from the cursor: nothing after it

    hub.comments[ids["answer_1"]]["body"] = "Use scene.camera.zoom(2); zoom() was renamed in 0.4."
    hub.touch(ids["d1"])  # an edit moves the discussion's updatedAt on GitHub
    late = hub.add_comment("D_3", "2.0 brings 3D plots.", author=MAINTAINER, association="OWNER")  # now answered
    third = await import_github(engine, REPO, caller, page_size=3)
    assert (third["new"], third["updated"]) == (1, 1)
    rows, _ = await engine.review_service.past_threads("candidate")
    assert {r.title: r.answer for r in rows}["How do I zoom the camera?"].endswith("renamed in 0.4.")
    assert any(r.answer == late["body"] for r in rows)
    hits = await engine.asearch("zoom was renamed", kb="hist")
    assert "renamed in 0.4" in hits[0].chunk.text  # the index holds the new text, not both


async def test_an_interrupted_import_resumes_after_the_last_page_it_stored(hub, engine, caller):
    populate(hub)
    sleeps = Sleeps()
    served = {"n": 0}

    async def call(query, variables):  # the first request answers; the next five fail (then the reader gives up)
        served["n"] += 1
        if 1 < served["n"] <= 6:
            hub.query_faults.append(Fault(502))
        return await caller(query, variables)

    with pytest.raises(TransientError):
        await import_github(engine, REPO, call, page_size=3, sleep=sleeps)
    assert sleeps == [2.0, 4.0, 8.0, 16.0]  # backed off between the tries
    stored, _ = await engine.review_service.past_threads("candidate")
    assert len(stored) == 2  # page one: D_1 and D_2 (D_3 unanswered)
    cursor = await engine.review_service.history_cursor(f"github:{REPO}")
    assert cursor

    hub.documents.clear()
    resumed = await import_github(engine, REPO, caller, page_size=3)
    assert queries(hub)[0]["after"] == cursor
    assert (resumed["new"], resumed["unchanged"], resumed["opted out"]) == (1, 0, 1)


async def test_rate_limits_are_waited_out(hub, engine, caller):
    populate(hub)
    sleeps = Sleeps()
    hub.query_faults.append(Fault(403, {"Retry-After": "7", "X-RateLimit-Remaining": "0"}, message="rate limited"))
    hub.rate_limit.update(remaining=102, reset_in=120)  # after page one, too little left for another page
    totals = await import_github(engine, REPO, caller, page_size=3, sleep=sleeps)
    assert totals["new"] == 3
    assert sleeps[0] == 7.0  # GitHub's Retry-After
    assert 115 < sleeps[1] <= 121  # until the reset GitHub announced in rateLimit.resetAt


async def test_a_refused_token_and_an_unknown_repository_are_clear_errors(hub, engine):
    async with aiohttp.ClientSession() as session:
        wrong = token_caller(GitHubAPI(session, "tests", oauth_token="ghp_wrong", base_url=hub.url), f"{hub.url}/graphql")
        with pytest.raises(PermanentError, match="token was refused"):
            await import_github(engine, REPO, wrong)
        right = token_caller(GitHubAPI(session, "tests", oauth_token=TOKEN, base_url=hub.url), f"{hub.url}/graphql")
        with pytest.raises(PermanentError, match="Could not resolve to a Repository with the name 'octo/nothing-here'"):
            await import_github(engine, "octo/nothing-here", right)


async def test_a_candidate_is_listed_by_the_review_api_accepted_as_a_golden_record_or_rejected(hub, engine, caller):
    from engine.api.app import build_app

    populate(hub)
    await import_github(engine, REPO, caller, page_size=3)
    async with serve(build_app(engine)) as url, aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {KEY}"}) as client:
        async with client.get(f"{url}/api/v1/history") as r:
            assert r.status == 200
            threads = (await r.json())["threads"]
        assert len(threads) == 3 and all(t["status"] == "candidate" for t in threads)
        assert not any(login in json.dumps(threads) for login in (ASKER, MAINTAINER, HELPER, OTHER))
        zoom = next(t for t in threads if t["title"] == "How do I zoom the camera?")
        windows = next(t for t in threads if t["title"] == "Does it run on Windows?")

        async with client.post(f"{url}/api/v1/history/{zoom['id']}/accept") as r:
            assert r.status == 200
            accepted = await r.json()
        assert accepted["status"] == "accepted" and accepted["golden_record"] and accepted["reviewed_by"] == "api:tests"
        async with client.post(f"{url}/api/v1/history/{zoom['id']}/accept") as r:
            assert r.status == 400  # reviewed already
        async with client.post(f"{url}/api/v1/history/{windows['id']}/reject") as r:
            assert r.status == 200 and (await r.json())["status"] == "rejected"
        async with client.post(f"{url}/api/v1/history/9999/reject") as r:
            assert r.status == 404
        async with client.get(f"{url}/api/v1/history?status=maybe") as r:
            assert r.status == 400
        async with client.get(f"{url}/api/v1/history") as r:
            assert [t["title"] for t in (await r.json())["threads"]] == ["How are colours picked?"]
        async with client.get(f"{url}/api/v1/golden-records") as r:
            golden = (await r.json())["golden_records"]
        assert [(g["id"], g["source"], g["answer"]) for g in golden] == [
            (accepted["golden_record"], "history", "Call scene.camera.zoom(2) before rendering.")]

    # Searched as a golden record now, no longer as a past answer; the rejected thread is not searched at all.
    hits = await engine.asearch("zoom the camera before rendering", k=10, kb="hist")
    kinds = {(h.chunk.source_type, h.chunk.title) for h in hits}
    assert ("golden", "How do I zoom the camera?\n\nThe scene is too small.".strip()[:300]) in kinds
    assert not any(t == "How do I zoom the camera?" and kind == "past_answer" for kind, t in kinds)
    assert not any("Windows" in h.chunk.title for h in await engine.asearch("Windows wheels sdist", k=10, kb="hist"))


async def test_the_review_page_lists_the_candidates_and_accepts_or_rejects_them(hub, engine, caller):
    from engine.api.app import build_app

    populate(hub)
    await import_github(engine, REPO, caller, page_size=3)
    token = await engine.review_service.add_maintainer("ada")
    async with serve(build_app(engine)) as url:
        browser = Browser(url)
        try:
            await browser.sign_in(token)
            status, _, page = await browser.get("/review/history")
            assert status == 200 and "How do I zoom the camera?" in page and "Does it run on Windows?" in page
            assert f'href="https://github.com/{REPO}/discussions/1"' in page
            rows, _ = await engine.review_service.past_threads("candidate")
            ids = {r.title: r.id for r in rows}
            csrf = await browser.csrf("/review/history")
            status, location, _ = await browser.post(f"/review/history/{ids['How do I zoom the camera?']}",
                                                     {"action": "accept", "csrf_token": csrf})
            assert (status, location) == (303, "/review/history?message=accepted")
            status, location, _ = await browser.post(f"/review/history/{ids['Does it run on Windows?']}",
                                                     {"action": "reject", "csrf_token": csrf})
            assert (status, location) == (303, "/review/history?message=rejected")
            status, _, page = await browser.get("/review/history?message=rejected")
            assert "Rejected: it is hidden." in page and "How are colours picked?" in page
            assert "How do I zoom the camera?" not in page and "Does it run on Windows?" not in page
            status, _, _ = await browser.post("/review/history/9999", {"action": "accept", "csrf_token": csrf})
            assert status == 404
            golden = await engine.review_service.all_golden_records()
            assert [(g.source, g.created_by) for g in golden] == [("history", "ada")]
        finally:
            await browser.session.close()


def test_which_threads_count_as_answered():
    maintainer = {"authorAssociation": "MEMBER", "author": {"__typename": "User", "login": "m"}, "body": "Do X."}
    bot = {"authorAssociation": "MEMBER", "author": {"__typename": "Bot", "login": "firstreply"}, "body": "Try Y."}
    own = {"authorAssociation": "OWNER", "author": {"__typename": "User", "login": "a"}, "body": "bump"}
    base = {"id": "D", "url": "u", "title": "T", "body": "Q?", "updatedAt": "2026-01-01T00:00:00Z",
            "author": {"login": "a"}, "answer": None}

    def thread(*comments, **changes):
        return {**base, "comments": {"nodes": list(comments)}, **changes}

    assert answered_thread(thread(bot, own), "[no-firstreply]") == "unanswered"  # a bot, or the asker, is no maintainer
    found = answered_thread(thread(bot, maintainer), "[no-firstreply]")
    assert (found.answer, found.answer_kind, found.author, found.answerer) == ("Do X.", "maintainers", "github:a", "github:m")
    reply = {**maintainer, "body": "Also Z."}
    nested = answered_thread(thread({**own, "replies": {"nodes": [reply]}}), "[no-firstreply]")
    assert nested.answer == "Also Z."
    opted = {**own, "body": "Please don't use this thread [No-FirstReply]"}
    assert answered_thread(thread(maintainer, opted), "[no-firstreply]") == "opted out"  # the asker's own comment
    someone_else = {**maintainer, "body": "[no-firstreply] is how you opt out"}
    assert answered_thread(thread(someone_else), "[no-firstreply]") != "opted out"  # only the asker can opt out
    marked = answered_thread(thread(maintainer, answer={"body": "The marked one.", "author": {"login": "h"}}), "[x]")
    assert (marked.answer, marked.answer_kind, marked.answerer) == ("The marked one.", "accepted", "github:h")


async def test_the_fake_refuses_connections_paginated_as_github_refuses_them(hub, caller):
    populate(hub)
    query = "query($o: String!, $n: String!, $f: Int) { repository(owner: $o, name: $n) { discussions(first: $f) { nodes { id } } } }"
    with pytest.raises(PermanentError, match="exceeds the `first` limit of 100"):
        await caller(query, {"o": "octo", "n": "widgets", "f": 101})
    with pytest.raises(PermanentError, match="must provide a `first` or `last`"):
        await caller(query, {"o": "octo", "n": "widgets", "f": None})
    with pytest.raises(PermanentError, match="Cannot query field"):
        await caller("query { repository(owner: \"o\", name: \"n\") { discussions(first: 1) { nodes { nope } } } }", {})


def test_the_command_refuses_a_bad_repository_and_a_missing_token(tmp_path, monkeypatch):
    monkeypatch.setenv("FIRSTREPLY_DATA_DIR", str(tmp_path / "state"))
    for name in ("FIRSTREPLY_GITHUB_TOKEN", "FIRSTREPLY_GITHUB_APP_ID", "FIRSTREPLY_GITHUB_PRIVATE_KEY",
                 "FIRSTREPLY_GITHUB_PRIVATE_KEY_FILE", "FIRSTREPLY_GITHUB_WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    bad = CliRunner().invoke(cli, ["history", "import", "github", "not a repo"])
    assert bad.exit_code == 1 and "is not OWNER/REPO" in bad.output
    missing = CliRunner().invoke(cli, ["history", "import", "github", REPO])
    assert missing.exit_code == 1 and "FIRSTREPLY_GITHUB_TOKEN" in missing.output


async def test_the_command_imports_and_reports_its_counts(hub, embedder, tmp_path, monkeypatch):
    from firstreply.cli import context

    populate(hub)
    monkeypatch.chdir(tmp_path)  # no .env from the working tree
    for name, value in {"DATA_DIR": str(tmp_path / "state"), "KB": "hist", "GITHUB_TOKEN": TOKEN,
                        "GITHUB_API_URL": hub.url, "USER_SALT": "pepper-pepper-pepper-pepper-pepper"}.items():
        monkeypatch.setenv(f"FIRSTREPLY_{name}", value)
    build = context._engine

    def with_the_loaded_model(settings):
        made = build(settings)
        made.__dict__["embedder"] = embedder
        return made

    monkeypatch.setattr(context, "_engine", with_the_loaded_model)
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["history", "import", "github", REPO, "--page-size", "2"])
    assert result.exit_code == 0, result.output
    assert f"github:{REPO}: 3 new, 0 updated, 0 unchanged; skipped 1 unanswered, 1 opted out" in result.output
    listed = await asyncio.to_thread(CliRunner().invoke, cli, ["history", "list"])
    assert listed.output.count(f"https://github.com/{REPO}/discussions/") == 3
