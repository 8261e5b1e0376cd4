"""What a new user sees in a real browser (Debian's headless chromium through Playwright): markers that match
the source list, citation links that open, golden records visitors can read, one page for every knowledge base.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.api.app import build_app
from fakes.server import serve

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
        assert listed >= 2 and markers == set(range(1, listed + 1)), (markers, listed, text)
