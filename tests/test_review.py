"""Maintainer review: the queries and actions directly, the JSON routes, and the pages' access rules
(sessions, CSRF, same origin, GETs that change nothing) over real HTTP."""

from __future__ import annotations

import json
import re

import aiohttp
import pytest
from fakes.server import serve
from sqlalchemy import func, select
from tests_support import Browser, key_with_every_role

from engine.answer.model import Question
from engine.store.models import AnswerRecord, AuditEvent, GoldenRecord
from engine.store.review import AnswerFilter, ReviewError
from firstreply.serve import build_app  # the app `firstreply serve` runs

KEY = "sk-review"
CAMERA = "How do I zoom the camera in?"
OFF_TOPIC = "What's a good recipe for rye sourdough bread?"


async def seed(engine) -> dict[str, str]:
    """A small answer log: answers on every channel, an abstention, votes."""
    ids = {}
    for channel in ("discord", "github", "web", "api"):
        answer = await engine.answer(Question(CAMERA, channel=channel, user_id=f"{channel}:1"))
        ids[channel] = answer.id
    ids["abstained"] = (await engine.answer(Question(OFF_TOPIC, channel="discord"))).id
    await engine.feedback(ids["discord"], "u1", -1, "it zoomed out instead")
    await engine.feedback(ids["discord"], "u2", -1)
    await engine.feedback(ids["web"], "u1", 1)
    return ids


async def test_filters_find_what_a_reviewer_looks_for_and_thumbs_down_come_first(make_engine):
    async with make_engine() as engine:
        ids = await seed(engine)
        review = engine.review_service

        async def found(**kwargs) -> list[str]:
            rows, _ = await review.answers(AnswerFilter(**kwargs))
            return [r.id for r in rows]

        everything = await found()
        assert everything[0] == ids["discord"] and len(everything) == 5  # 👎 first, then newest
        assert await found(order="newest") == [ids["abstained"], ids["api"], ids["web"], ids["github"], ids["discord"]]
        assert await found(channel="github") == [ids["github"]]
        assert await found(votes="down") == [ids["discord"]]
        assert await found(votes="up") == [ids["web"]]
        assert set(await found(votes="none")) == {ids["github"], ids["api"], ids["abstained"]}
        assert await found(abstained=True) == [ids["abstained"]]
        assert await found(text="SOURDOUGH") == [ids["abstained"]]
        assert await found(text="100%_") == []  # LIKE wildcards are matched literally
        rows, more = await review.answers(AnswerFilter(order="newest", per_page=2, page=2))
        assert [r.id for r in rows] == [ids["web"], ids["github"]] and more

        # Changing a vote moves the counters with it; a second vote by the same user never counts twice.
        await engine.feedback(ids["discord"], "u1", 1)
        await engine.feedback(ids["discord"], "u1", 1)
        record = await engine.store.answer(ids["discord"])
        assert (record.up_votes, record.down_votes) == (1, 1)


async def test_approve_correct_and_reject_keep_the_original_and_maintain_golden_records(make_engine):
    async with make_engine() as engine:
        ids = await seed(engine)
        record, golden = await engine.review_service.review(ids["web"], "approved", "ada")
        # The golden record quotes the answer without its [n] markers (they pointed at that answer's sources).
        assert record.verdict == "approved" and golden.source == "review" and "[1]" in record.text
        assert golden.answer == re.sub(r" ?\[\d+\]", "", record.text)

        corrected = "Call `scene.zoom(2.5)` to zoom in; values below 1 zoom out."
        record, golden2 = await engine.review_service.review(ids["web"], "corrected", "grace", text=corrected)
        assert golden2.id == golden.id and golden2.answer == corrected  # one golden record per answer
        assert record.corrected_text == corrected and "scene.zoom(2)" in record.text  # the original is kept

        with pytest.raises(ReviewError, match="say why"):
            await engine.review_service.review(ids["web"], "rejected", "ada", reason="  ")
        with pytest.raises(ReviewError, match="corrected text"):
            await engine.review_service.review(ids["web"], "corrected", "ada", text="")
        with pytest.raises(ReviewError, match="abstention"):
            await engine.review_service.review(ids["abstained"], "approved", "ada")
        with pytest.raises(LookupError):
            await engine.review_service.review("nope", "approved", "ada")

        record, gone = await engine.review_service.review(ids["web"], "rejected", "ada", reason="wrong method")
        assert gone is None and record.review_note == "wrong method"
        assert await engine.review_service.golden_record(golden.id) is None
        actions = [e.action for e in reversed(await engine.review_service.audit_events())]
        assert actions == ["answer.approved", "answer.corrected", "answer.rejected"]


async def test_a_corrected_answer_is_what_the_next_similar_question_retrieves(make_engine):
    async with make_engine() as engine:
        ids = await seed(engine)
        corrected = "Use the magnifier: call scene.magnify(3) before render() to zoom the camera in."
        _record, golden = await engine.review_service.review(ids["discord"], "corrected", "ada", text=corrected)
        [top, *_] = await engine.asearch("how can I zoom in the camera?")
        assert top.chunk.path == f"golden/{golden.id}" and top.chunk.source_type == "golden"
        assert top.chunk.url == f"{engine.public_url}/golden/{golden.id}"  # the public view, no sign-in
        answer = await engine.answer(Question("how can I zoom in the camera?", channel="discord"))
        assert "scene.magnify(3)" in answer.text

        # Deleting the golden record takes it out of the index again (the review service indexes the change).
        assert await engine.review_service.delete_golden_record(golden.id, "ada")
        hits = await engine.asearch("how can I zoom in the camera?")
        assert all(not h.chunk.path.startswith("golden/") for h in hits)


async def test_golden_records_import_from_csv_and_export_as_jsonl_and_csv(make_engine):
    async with make_engine() as engine:
        csv_text = ("Question,Answer\n"
                    "How do I install tinyviz?,pip install tinyviz\n"
                    "\"Multi-line, quoted?\",\"Yes,\nlike this\"\n"
                    "Missing answer,\n"
                    "How do I install tinyviz?,pip install tinyviz\n")
        await engine.start()
        result = await engine.review_service.store.import_golden_csv(csv_text, "ada")
        assert result == {"added": 2, "skipped": [{"line": 4, "reason": "a golden record needs a question and an answer"},
                                                  {"line": 5, "reason": "already a golden record"}]}
        with pytest.raises(ReviewError, match="header row"):
            await engine.review_service.store.import_golden_csv("q,a\nx,y\n", "ada")
        jsonl = [json.loads(line) for line in (await engine.review_service.export_golden("jsonl")).splitlines()]
        assert [r["question"] for r in jsonl] == ["How do I install tinyviz?", "Multi-line, quoted?"]
        assert jsonl[1]["answer"] == "Yes,\nlike this"
        again = await engine.review_service.store.import_golden_csv(await engine.review_service.export_golden("csv"), "ada")
        assert again["added"] == 0 and len(again["skipped"]) == 2  # a round trip adds nothing twice


async def test_maintainer_tokens_are_hashed_at_rest_and_can_be_revoked(make_engine):
    async with make_engine() as engine:
        token = await engine.review_service.add_maintainer("ada")
        assert token.startswith("frm_") and await engine.review_service.maintainer_for(token) == "ada"
        assert await engine.review_service.maintainer_for(token + "x") is None
        [stored] = await engine.review_service.maintainers()
        assert stored.token_hash != token and token not in stored.token_hash and stored.last_seen_at is not None
        with pytest.raises(ReviewError, match="already"):
            await engine.review_service.add_maintainer("ada")
        assert await engine.review_service.remove_maintainer("ada")
        assert await engine.review_service.maintainer_for(token) is None


async def test_the_overview_counts_what_happened(make_engine):
    async with make_engine() as engine:
        await seed(engine)
        await engine.answer(Question(OFF_TOPIC, channel="web"))
        stats = await engine.review_service.overview(30)
    assert stats["questions"] == 6 and len(stats["per_day"]) == 30 and stats["per_day"][-1]["questions"] == 6
    assert stats["abstention_rate"] == pytest.approx(2 / 6)
    assert stats["votes"] == {"up": 1, "down": 2, "up_share": pytest.approx(1 / 3)}
    assert stats["unanswered"] == [{"question": OFF_TOPIC, "times": 2}]
    assert stats["top_sources"][0]["citations"] >= 4 and "camera" in stats["top_sources"][0]["url"]
    assert stats["verdicts"]["unreviewed"] == 6


# -- over HTTP -----------------------------------------------------------------------------------------


@pytest.fixture
async def site(make_engine):
    engine = make_engine(api_keys=[key_with_every_role(KEY)], rate_limit_per_minute=10_000)
    async with serve(build_app(engine)) as url:
        ids = await seed(engine)
        token = await engine.review_service.add_maintainer("ada")
        browser = Browser(url)
        try:
            yield url, engine, ids, token, browser
        finally:
            await browser.session.close()


async def _count(engine, model) -> int:
    async with engine.store.session() as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_review_pages_need_a_signed_in_maintainer(site):
    url, engine, ids, token, browser = site
    for path in ("/review/answers", f"/review/answers/{ids['web']}", "/review/golden", "/review/overview",
                 "/review/golden/export?format=csv"):
        status, location, _ = await browser.get(path)
        assert status == 303 and location.startswith("/review/login?next="), path
    status, _, page = await browser.post("/review/login", {"token": "frm_wrong", "csrf_token": await browser.csrf()})
    assert status == 401 and "not valid" in page
    # A forged cookie is just no session.
    browser.session.cookie_jar.update_cookies({"firstreply_session": "eyJtIjoiYWRhIn0.forged.sig"})
    assert (await browser.get("/review/answers"))[0] == 303
    await browser.sign_in(token)
    status, _, page = await browser.get("/review/answers")
    assert status == 200 and CAMERA in page and "ada" in page


async def test_state_changes_need_the_csrf_token_and_the_same_origin_and_gets_change_nothing(site):
    url, engine, ids, token, browser = site
    target = f"/review/answers/{ids['web']}"
    # Not signed in: a POST is sent to sign in, and changes nothing.
    status, location, _ = await browser.post(target, {"action": "approve", "csrf_token": "x"})
    assert status == 303 and "/review/login" in location
    await browser.sign_in(token)
    csrf = await browser.csrf(target)
    assert (await browser.post(target, {"action": "approve"}))[0] == 403  # no token
    assert (await browser.post(target, {"action": "approve", "csrf_token": "guess"}))[0] == 403
    status, _, page = await browser.post(target, {"action": "approve", "csrf_token": csrf}, origin="https://evil.example")
    assert status == 403 and "cross-site" in page
    assert (await engine.store.answer(ids["web"])).verdict == "unreviewed"

    before = (await _count(engine, AuditEvent), await _count(engine, GoldenRecord), await _count(engine, AnswerRecord))
    for path in ("/ask", "/review/answers?votes=down", target, "/review/golden", "/review/overview",
                 "/review/golden/export?format=jsonl", "/review/answers/does-not-exist"):
        assert (await browser.get(path))[0] in (200, 404), path
    after = (await _count(engine, AuditEvent), await _count(engine, GoldenRecord), await _count(engine, AnswerRecord))
    assert before == after

    status, location, _ = await browser.post(target, {"action": "correct", "text": "Use scene.zoom(3).", "csrf_token": csrf})
    assert status == 303 and location == target + "?done=corrected"  # the page then says what was done
    record = await engine.store.answer(ids["web"])
    assert record.verdict == "corrected" and record.reviewed_by == "ada" and record.corrected_text == "Use scene.zoom(3)."
    status, location, _ = await browser.post(target, {"action": "reject", "reason": "", "csrf_token": csrf})
    assert status == 303 and "error=" in location  # the reason is required; the page says so


async def test_the_json_routes_do_the_same_and_record_who_acted(site):
    url, engine, ids, token, browser = site
    async with aiohttp.ClientSession() as client:
        async def call(method, path, body=None, key=KEY, **kwargs):
            async with client.request(method, url + path, json=body, headers={"Authorization": f"Bearer {key}"},
                                      **kwargs) as r:
                return r.status, (await r.json() if r.content_type == "application/json" else await r.text())

        status, listed = await call("GET", "/api/v1/answers?votes=down")
        assert status == 200 and [a["id"] for a in listed["answers"]] == [ids["discord"]]
        status, one = await call("GET", f"/api/v1/answers/{ids['discord']}")
        assert one["vote_comments"] == [{"vote": -1, "comment": "it zoomed out instead"}] and one["sources"]
        # With a maintainer's own token, the maintainer is who reviewed.
        status, reviewed = await call("POST", f"/api/v1/answers/{ids['discord']}/review",
                                      {"verdict": "corrected", "text": "Use scene.zoom(2) to zoom in."}, key=token)
        assert status == 200 and reviewed["reviewed_by"] == "ada" and reviewed["golden_record"]
        status, error = await call("POST", f"/api/v1/answers/{ids['api']}/review", {"verdict": "maybe"})
        assert status == 400 and "verdict" in error["error"]["message"]
        assert (await call("GET", "/api/v1/answers", key="wrong"))[0] == 401

        # The actor comes from the credential: a key can't claim to be a maintainer.
        status, added = await call("POST", "/api/v1/golden-records", {"question": "Q?", "answer": "A.", "by": "grace"})
        assert status == 201 and added["created_by"] == "api:tests"
        status, edited = await call("PUT", f"/api/v1/golden-records/{added['id']}", {"question": "Q2?", "answer": "A2."})
        assert edited["question"] == "Q2?" and edited["updated_by"].startswith("api:")
        async with client.post(url + "/api/v1/golden-records/import", data="question,answer\nX?,Y.\n",
                               headers={"Authorization": f"Bearer {KEY}", "Content-Type": "text/csv"}) as r:
            assert r.status == 200 and (await r.json())["added"] == 1
        status, exported = await call("GET", "/api/v1/golden-records/export?format=jsonl")
        assert [json.loads(line)["question"] for line in exported.splitlines()] == [
            CAMERA, "Q2?", "X?"]
        assert (await call("DELETE", f"/api/v1/golden-records/{added['id']}"))[0] == 200
        assert (await call("DELETE", f"/api/v1/golden-records/{added['id']}"))[0] == 404
        status, overview = await call("GET", "/api/v1/overview?days=7")
        assert status == 200 and overview["questions"] == 5


async def test_a_private_ask_page_sends_visitors_to_sign_in(make_engine):
    engine = make_engine(ask_public=False)
    async with serve(build_app(engine)) as url:
        browser = Browser(url)
        try:
            status, location, _ = await browser.get("/ask")
            assert status == 303 and location.startswith("/review/login")
            async with browser.session.post(url + "/ask/answer", json={"question": CAMERA},
                                            headers={"Origin": url}) as r:
                assert r.status == 401
        finally:
            await browser.session.close()


async def test_a_github_draft_is_posted_from_its_answer_page(site):
    from github_app.store import GitHubStore

    url, engine, ids, token, browser = site
    github = GitHubStore(engine.store.engine)
    await github.hold_reply("D_9", 1, 30, kind="first", discussion_id="D_9", repository="org/tinyviz",
                            installation_id=1, discussion_number=9, discussion_url="https://github.com/org/tinyviz/discussions/9")
    await github.update_reply("D_9", status="draft", body="Use scene.zoom(2).", answer_id=ids["github"], release=True)
    await browser.sign_in(token)
    target = f"/review/answers/{ids['github']}"
    status, _, page = await browser.get(target)
    assert status == 200 and "Post to GitHub" in page and "org/tinyviz#9" in page
    csrf = await browser.csrf(target)
    status, location, _ = await browser.post(target, {"action": "post", "body": "Use scene.zoom(2) to zoom in.",
                                                      "csrf_token": csrf})
    assert status == 303 and location == target + "?done=posted"
    reply = await github.reply("D_9")
    assert reply.status == "approved" and reply.approved_by == "ada" and reply.body == "Use scene.zoom(2) to zoom in."
    [job] = await github.jobs()
    assert job.kind == "post_reply" and job.status == "queued"  # the App's workers post it
    status, location, _ = await browser.post(target, {"action": "post", "csrf_token": csrf})
    assert "error=" in location  # nothing left to post
