"""What a new user sees in a real browser (Debian's headless chromium through Playwright): markers that match
the source list, citation links that open, golden records visitors can read, one page for every knowledge base.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fakes.server import serve

from firstreply.serve import build_app  # the app `firstreply serve` runs

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)"),
]


@pytest.fixture
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            await chromium.close()


async def ask(page, url: str, question: str) -> None:
    from playwright.async_api import expect

    await page.goto(url + "/ask")
    await page.fill("#question", question)
    await page.click("#send")
    await expect(page.locator("#sources li").first).to_be_visible()


async def test_inline_markers_match_the_numbered_source_list(make_engine, browser):
    engine = make_engine(rate_limit_per_minute=10_000)
    async with serve(build_app(engine)) as url:
        page = await browser.new_page()
        await ask(page, url, "How do I zoom the camera in?")
        text = await page.locator("#answer-text").inner_text()
        listed = await page.locator("#sources li").count()
        markers = {int(n) for n in re.findall(r"\[(\d+)\]", text)}
        # (the extractive answerer may quote one source; numbered 1 it is, whichever passage it was)
        assert listed >= 1 and markers == set(range(1, listed + 1)), (markers, listed, text)


async def test_every_citation_link_on_the_ask_page_opens(tmp_path, embedder, sample_project, browser):
    """Issue 15 item 1: a plain folder ingested with no --repo-url: every source link opens a page on this site
    (relative, whatever public URL the engine was given), showing the cited lines."""
    from playwright.async_api import expect

    from engine.config import Settings
    from engine.service import Engine

    engine = Engine(Settings(data_dir=tmp_path / "state", kb="plain", user_salt="pepper-pepper-pepper-pepper-pepper", _env_file=None,
                             public_url="https://help.example.org", rate_limit_per_minute=10_000,
                             database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"))
    engine.__dict__["embedder"] = embedder
    engine.ingest(sample_project)
    async with serve(build_app(engine)) as url:
        page = await browser.new_page()
        await ask(page, url, "How do I zoom the camera in?")
        hrefs = [await link.get_attribute("href") for link in await page.locator("#sources a").all()]
        assert hrefs and all(h.startswith("/source/plain/") for h in hrefs), hrefs
        for href in hrefs:
            response = await page.goto(url + href)
            assert response.status == 200, href
        await page.goto(url + "/ask")
        await ask(page, url, "How do I zoom the camera in?")
        async with page.expect_popup() as opened:  # sources open in a new tab
            await page.locator("#sources a").first.click()
        source = await opened.value
        await expect(source).to_have_url(re.compile(r"/source/plain/docs/guide/camera\.rst\?lines=\d+-\d+#L\d+$"))
        await expect(source.locator(".line.hl").first).to_be_visible()
        await expect(source.locator("h1")).to_have_text("docs/guide/camera.rst")


async def test_a_visitor_follows_a_golden_citation_to_the_maintainers_answer(make_engine, browser):
    """Issue 15 item 11: the golden citation opens a public page (not the review sign-in), without stale markers."""
    from playwright.async_api import expect

    from engine.answer.model import Question

    engine = make_engine(rate_limit_per_minute=10_000)
    async with serve(build_app(engine)) as url:
        first = await engine.answer(Question("How do I zoom the camera in?", channel="web"))
        corrected = "Call scene.magnify(3) before render() [1]: it zooms the camera in three times [3]."
        await engine.review_service.review(first.id, "corrected", "ada", text=corrected)
        page = await browser.new_page()
        await ask(page, url, "how can I zoom in the camera?")
        await expect(page.locator("#answer-text")).to_contain_text("scene.magnify(3)")
        golden = page.locator("#sources a").first
        await expect(golden).to_have_attribute("href", re.compile(r"^/golden/\d+$"))
        async with page.expect_popup() as opened:  # sources open in a new tab
            await golden.click()
        page = await opened.value
        await expect(page).to_have_url(re.compile(r"/golden/\d+$"))
        await expect(page.locator("h1.question")).to_have_text("How do I zoom the camera in?")
        await expect(page.locator("article.answer")).to_have_text(re.compile(
            r"^\s*Call scene\.magnify\(3\) before render\(\): it zooms the camera in three times\.\s*$"))


async def test_the_ask_page_offers_every_ingested_knowledge_base(tmp_path, embedder, sample_project, browser):
    """Issue 15 item 2: two knowledge bases ingested, one server: a selector, and the chosen base answers
    (and is logged with the answer)."""
    from playwright.async_api import expect

    from engine.config import Settings
    from engine.service import Engine

    other = tmp_path / "other"
    other.mkdir()
    (other / "teapots.md").write_text("# Brewing\n\nWarm the teapot, then steep the leaves for four minutes.\n")
    settings = Settings(data_dir=tmp_path / "state", kb="tiny", user_salt="pepper-pepper-pepper-pepper-pepper", _env_file=None,
                        rate_limit_per_minute=10_000, database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    engine = Engine(settings)
    engine.__dict__["embedder"] = embedder
    engine.ingest(sample_project, kb="tiny")
    engine.ingest(other, kb="teapots")
    async with serve(build_app(engine)) as url:
        page = await browser.new_page()
        await page.goto(url + "/ask")
        choice = page.get_by_label("Knowledge base")
        await expect(choice.locator("option")).to_have_text(["tiny", "teapots"])
        await choice.select_option("teapots")
        await expect(page.locator("h1 .kb")).to_have_text("teapots")
        await page.fill("#question", "How long do I steep the leaves?")
        await page.click("#send")
        await expect(page.locator("#answer-text")).to_contain_text("four minutes")
        await expect(page.locator("#sources li").first).to_contain_text("Brewing")
        [row], _more = await engine.review_service.answers(__import__("engine.store.review", fromlist=["AnswerFilter"]).AnswerFilter())
        assert row.kb == "teapots"

        pinned = Engine(settings, pinned_kb=True)  # `serve --kb tiny`: no selector
        assert pinned.served_kbs() == ["tiny"] and engine.served_kbs() == ["tiny", "teapots"]
