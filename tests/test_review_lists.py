"""The review pages as a maintainer works through them (issue 15, items 9, 10 and 11's page part):
a confirmation after each verdict, errors beside their field, a delete that asks first, golden
questions that keep their lines, filters by knowledge base, repeated questions grouped, sources
counted by page, activity that links, a labelled chart, tuning started from its page, and a 👎
that asks what was wrong."""

from __future__ import annotations

import re
from html import unescape

import pytest
from fakes import openai
from fakes.server import serve
from pages_support import chromium, needs_chromium
from sqlalchemy import update
from tests_support import Browser

from engine.answer.model import Question
from engine.api.charts import daily_bars
from engine.api.review_lists import audit_link, group_repeats, question_key
from engine.store.models import AnswerRecord
from engine.store.review import AnswerFilter
from firstreply.serve import build_app  # the app `firstreply serve` runs

CAMERA = "How do I zoom the camera in?"
OFF_TOPIC = "What is the capital of Mongolia and its population in 1920?"


@pytest.fixture
async def fake_openai():
    fake = openai.FakeOpenAI()
    async with serve(fake.app()) as url:
        fake.url = url
        yield fake


@pytest.fixture
async def site(make_engine, fake_openai):
    """A served engine (tuning talks to the loopback OpenAI fake), a signed-in maintainer's client."""
    engine = make_engine(rate_limit_per_minute=10_000, openai_base_url=f"{fake_openai.url}/v1",
                         openai_api_key=openai.API_KEY, tuning_poll_seconds=0.05)
    async with serve(build_app(engine)) as url:
        token = await engine.review_service.add_maintainer("ada")
        client = Browser(url)
        await client.sign_in(token)
        try:
            yield engine, client, url, token
        finally:
            await client.session.close()


def _section(page: str, element_id: str) -> str:
    """The HTML of the form (or other element) with ``id``, up to its closing tag."""
    start = page.index(f'id="{element_id}"')
    return page[start:page.index("</form>", start)]


# -- item 9 ------------------------------------------------------------------------------------------


async def test_a_verdict_is_confirmed_and_a_missing_reason_is_shown_at_its_field(site):
    engine, client, _, _ = site
    answer = await engine.answer(Question(CAMERA, channel="discord"))
    csrf = await client.csrf(f"/review/answers/{answer.id}")
    status, location, _ = await client.post(f"/review/answers/{answer.id}", {"csrf_token": csrf, "action": "approve"})
    assert (status, location) == (303, f"/review/answers/{answer.id}?done=approved")
    _, _, page = await client.get(location)
    assert '<p class="notice" role="status">Approved: the answer is now a golden record.</p>' in page
    _, _, page = await client.get(f"/review/answers/{answer.id}?done=<script>")  # only fixed sentences, never the query
    assert 'class="notice"' not in page and "<script>" not in page

    status, location, _ = await client.post(f"/review/answers/{answer.id}", {"csrf_token": csrf, "action": "reject", "reason": " "})
    assert status == 303 and "for=reject" in location
    _, _, page = await client.get(location)
    reject = _section(page, "reject")
    assert 'aria-describedby="reject-error"' in reject and 'id="reject-error"' in reject
    assert "Say why the answer is rejected." in reject
    assert page.count('class="alert"') == 1  # beside the field, not (also) at the top of the page


async def test_an_abstention_is_not_the_start_of_a_correction_and_quoted_answers_use_no_tokens(site):
    engine, client, _, _ = site
    abstained = await engine.answer(Question(OFF_TOPIC, channel="web"))
    assert abstained.abstained
    _, _, page = await client.get(f"/review/answers/{abstained.id}")
    box = re.search(r'<textarea name="text"[^>]*>(.*?)</textarea>', page, re.S)
    assert box and box.group(1) == ""
    assert abstained.text[:30] not in unescape(_section(page, "correct"))
    assert not re.search(r"\d+ in · ", page) and "it abstained before asking a model" in page
    quoted = await engine.answer(Question(CAMERA, channel="discord"))
    assert quoted.model == "extractive" and not quoted.abstained
    _, _, page = await client.get(f"/review/answers/{quoted.id}")
    assert not re.search(r"\d+ in · ", page)  # the extractive answerer read no prompt
    assert "quoted from the docs" in page


async def test_deleting_a_golden_record_asks_first(site):
    engine, client, _, _ = site
    record = await engine.review_service.store.add_golden_record("Q?", "A.", "ada")  # seeded in the store: not indexed
    path = f"/review/golden/{record.id}"
    csrf = await client.csrf(path)
    status, location, _ = await client.post(path, {"csrf_token": csrf, "action": "delete"})
    assert (status, location) == (303, f"{path}?confirm=delete")
    assert await engine.review_service.golden_record(record.id) is not None
    _, _, page = await client.get(location)
    confirm = _section(page, "confirm-delete")
    assert 'name="confirmed" value="yes"' in confirm and "Yes, delete it" in confirm
    status, location, _ = await client.post(path, {"csrf_token": csrf, "action": "delete", "confirmed": "yes"})
    assert status == 303 and location.startswith("/review/golden?")
    assert await engine.review_service.golden_record(record.id) is None


async def test_a_golden_question_keeps_its_lines(site):
    engine, client, _, _ = site
    csrf = await client.csrf("/review/golden")
    status, _, _ = await client.post("/review/golden", {"csrf_token": csrf, "question": "It cannot?\r\nDo I need X?",
                                                        "answer": "Yes.\r\nAlways."})
    assert status == 303
    [record] = await engine.review_service.all_golden_records()
    assert (record.question, record.answer) == ("It cannot?\nDo I need X?", "Yes.\nAlways.")
    _, _, page = await client.get(f"/review/golden/{record.id}")
    assert re.search(r'<textarea name="question"[^>]*>It cannot\?\nDo I need X\?</textarea>', page)
    status, _, _ = await client.post(f"/review/golden/{record.id}", {"csrf_token": csrf, "action": "save",
                                                                     "question": "A?\r\nB?", "answer": "C."})
    assert status == 303 and (await engine.review_service.golden_record(record.id)).question == "A?\nB?"


# -- item 10 -----------------------------------------------------------------------------------------


def test_repeated_questions_are_one_group():
    class Row:
        def __init__(self, question):
            self.question = question

    rows = [Row("How do I zoom?"), Row("Install?"), Row("  how do I   ZOOM "), Row("how do i zoom?")]
    groups = group_repeats(rows)
    assert [(g.row.question, g.times) for g in groups] == [("How do I zoom?", 3), ("Install?", 1)]
    assert question_key("A  b?") == question_key("a b")


async def test_answers_and_overview_filter_by_knowledge_base_and_group_repeats(site):
    engine, client, _, _ = site
    await engine.answer(Question(CAMERA, channel="discord"))
    await engine.answer(Question(CAMERA.lower(), channel="github"))
    other = await engine.answer(Question(OFF_TOPIC, channel="api"))
    async with engine.store.session.begin() as session:
        # (answers are logged with their knowledge base; these say so whatever this engine logs)
        await session.execute(update(AnswerRecord).values(kb="sample"))
        await session.execute(update(AnswerRecord).where(AnswerRecord.id == other.id).values(kb="payload"))
    _, _, page = await client.get("/review/answers")
    assert page.count("<tr>") - 1 == 2  # header row + two questions (the camera one asked twice)
    assert "asked 2 times" in page
    assert re.search(r'<select name="kb" aria-label="knowledge base">', page)
    _, _, page = await client.get("/review/answers?kb=payload")
    assert OFF_TOPIC[:40] in page and "zoom the camera" not in page
    _, _, page = await client.get("/review/answers?kb=sample")
    assert OFF_TOPIC[:40] not in page, page[page.find(OFF_TOPIC[:40]) - 300:page.find(OFF_TOPIC[:40]) + 100]
    assert "asked 2 times" in page  # the camera question, grouped
    _, _, page = await client.get("/review/answers?kb=javascript:alert(1)")  # not a name: no filter
    assert page.count("<tr>") - 1 == 2 and "payload" in page  # all knowledge bases
    assert (await engine.review_service.overview(30, "payload"))["questions"] == 1
    assert (await engine.review_service.overview(30, "sample"))["questions"] == 2
    _, _, page = await client.get("/review/overview?kb=payload")
    assert re.search(r'<div class="kpi"><b>1</b><span>questions</span>', page)
    assert OFF_TOPIC[:40] in page  # unanswered in this knowledge base


async def test_most_cited_sources_count_pages_not_anchors(site):
    engine, _, _, _ = site
    a = await engine.answer(Question(CAMERA, channel="discord"))
    b = await engine.answer(Question("How do I install tinyviz from source?", channel="discord"))
    page = "https://github.com/org/tinyviz/blob/v0.3.0/docs/guide/camera.rst"
    citations = [{"number": 1, "title": "Camera", "heading": "Zooming", "url": page + "#L14-L20", "path": "docs/guide/camera.rst"},
                 {"number": 2, "title": "Camera", "heading": "Moving", "url": page + "#L30-L40", "path": "docs/guide/camera.rst"}]
    async with engine.store.session.begin() as session:
        await session.execute(update(AnswerRecord).where(AnswerRecord.id.in_([a.id, b.id])).values(citations=citations))
    top = (await engine.review_service.overview(30))["top_sources"]
    assert top == [{"url": page, "title": "Camera", "citations": 2}]


async def test_recent_activity_links_and_the_chart_labels_its_axes(site):
    engine, client, _, _ = site
    answer = await engine.answer(Question(CAMERA, channel="discord"))
    csrf = await client.csrf(f"/review/answers/{answer.id}")
    await client.post(f"/review/answers/{answer.id}", {"csrf_token": csrf, "action": "approve"})
    _, _, page = await client.get("/review/overview")
    assert f'<a class="mono" href="/review/answers/{answer.id}">{answer.id}</a>' in page
    assert audit_link("golden.edit", "12") == "/review/golden/12" and audit_link("signin", None) is None
    assert audit_link("golden.import", None) is None and audit_link("model.activate", "job-1") == "/review/tuning"

    days = [{"day": f"2026-11-{i:02d}", "questions": i % 7, "abstained": i % 2} for i in range(1, 31)]
    labels = re.findall(r'class="axis">([^<]+)<', str(daily_bars(days)))
    assert labels[:5] == ["0", "2", "4", "6", "day (month-day)"] or {"0", "2", "4", "6"} <= set(labels)
    assert sum(bool(re.fullmatch(r"\d\d-\d\d", label)) for label in labels) >= 4  # a date at least weekly
    assert "questions" in str(daily_bars(days))


async def test_a_tuning_job_starts_from_the_tuning_page(site):
    engine, client, _, _ = site
    csrf = await client.csrf("/review/tuning")
    form = {"csrf_token": csrf, "alias": "docs-1", "provider": "openai", "model": "gpt-4o-mini", "epochs": "2"}
    status, location, _ = await client.post("/review/tuning", form)  # too few golden records: said on the page
    assert status == 303 and "error=" in location
    _, _, page = await client.get(location)
    assert "Too few golden records to tune a model yet" in page
    for i in range(10):
        await engine.review_service.store.add_golden_record(f"How do I do thing {i}?", f"Like this: step {i}.", "ada")
    status, location, _ = await client.post("/review/tuning", {**form, "csrf_token": "forged"})
    assert status == 403 and await engine.tuning_service.jobs() == []
    status, location, _ = await client.post("/review/tuning", {**form, "epochs": "two"})
    assert (status, location) == (303, "/review/tuning?error=tuning-form")  # a fixed sentence, never query text
    _, _, page = await client.get(location)
    assert "epochs, batch size and learning rate are numbers" in page
    status, location, _ = await client.post("/review/tuning", form)
    assert (status, location) == (303, "/review/tuning?started=yes")
    [job] = await engine.tuning_service.jobs()
    assert (job.alias, job.base_llm["model_name"], job.base_llm["model_parameters"]) == ("docs-1", "gpt-4o-mini", {"n_epochs": 2})
    _, _, page = await client.get(location)
    assert "Tuning job queued" in page and "docs-1" in page


@pytest.mark.parametrize("comment", [5, "x" * 2001])
async def test_a_bad_thumbs_down_comment_is_a_400(site, comment):
    engine, client, url, _ = site
    status, events = await client.ask(CAMERA)
    answer_id = events[-1][1]["id"]
    _, _, page = await client.get("/ask")
    token = re.search(r'data-csrf="([^"]+)"', page).group(1)
    async with client.session.post(url + "/ask/feedback", json={"answer_id": answer_id, "vote": "down", "comment": comment},
                                   headers={"X-CSRF-Token": token, "Origin": url}) as response:
        assert response.status == 400
    assert (await engine.review_service.detail(answer_id))["votes"] == []


# -- item 11, the page part ----------------------------------------------------------------------------


async def test_sources_the_model_saw_are_titled_links(site):
    engine, client, _, _ = site
    answer = await engine.answer(Question(CAMERA, channel="discord"))
    _, _, page = await client.get(f"/review/answers/{answer.id}")
    card = page[page.index("Sources the model saw"):page.index("</ol>", page.index("Sources the model saw"))]
    links = re.findall(r'<a href="([^"]+)" target="_blank" rel="noopener noreferrer">([^<]+)</a>', card)
    assert links, card
    for href, label in links:
        assert href.startswith("https://github.com/org/tinyviz/")
        assert "/" not in unescape(label).split(" › ")[0] or " " in label  # a title, not a bare path
    assert any(" › " in unescape(label) for _, label in links)  # with the section it came from


# -- the 👎 comment box, in chromium ---------------------------------------------------------------------


@pytest.mark.browser
@needs_chromium
async def test_thumbs_down_asks_what_was_wrong_and_the_reviewer_reads_it(site):
    from playwright.async_api import expect

    engine, _, url, _ = site
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 900})
        await page.goto(url + "/ask")
        await page.fill("#question", CAMERA)
        await page.click("#send")
        await expect(page.locator("#votes")).to_be_visible()
        await expect(page.locator("#comment")).to_be_hidden()
        await page.click("button[data-vote=down]")
        await expect(page.locator("#comment-text")).to_be_focused()
        await page.get_by_label("What was wrong or missing?").fill("It should mention scene.magnify too.")
        await page.click("#send-comment")
        await expect(page.locator("#vote-status")).to_have_text("Thanks, the maintainers will read it.")
        await expect(page.locator("#comment")).to_be_hidden()
        [asked], _ = await engine.review_service.answers(AnswerFilter(channel="web"))
        answer_id = asked.id
        votes = (await engine.review_service.detail(answer_id))["votes"]
        assert [(v.vote, v.comment) for v in votes] == [(-1, "It should mention scene.magnify too.")]
