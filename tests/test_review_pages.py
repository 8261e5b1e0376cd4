"""The pages in a real browser: Debian's headless chromium driven by Playwright.

A visitor asks on the Ask page and votes; a maintainer signs in, filters the answers, corrects
one, and the next visitor asking the same question gets the maintainers' answer. Screenshots
of every page go to ``$FIRSTREPLY_SCREENSHOTS`` (or the test's temporary folder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from fakes.server import serve

from engine.answer.model import Question
from firstreply.serve import build_app  # the app `firstreply serve` runs

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed (make test installs it)"),
]
CAMERA = "How do I zoom the camera in?"


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


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("FIRSTREPLY_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def test_ask_vote_sign_in_filter_correct_and_the_correction_is_retrieved(make_engine, browser, shots):
    from playwright.async_api import expect

    engine = make_engine(rate_limit_per_minute=10_000)
    async with serve(build_app(engine)) as url:
        token = await engine.review_service.add_maintainer("ada")
        for channel in ("discord", "github", "api"):  # some history to filter
            await engine.answer(Question(CAMERA if channel != "api" else "How do I export a PNG?", channel=channel))

        visitor = await browser.new_page(viewport={"width": 1200, "height": 800})
        await visitor.goto(url + "/")
        await expect(visitor).to_have_url(url + "/ask")
        await visitor.fill("#question", CAMERA)
        await visitor.click("#send")
        await expect(visitor.locator("#sources li").first).to_be_visible()
        await expect(visitor.locator("#answer-text")).to_contain_text("scene.zoom(2)")
        await visitor.click("button[data-vote=up]")
        await expect(visitor.locator("#vote-status")).to_have_text("Thanks!")
        await visitor.screenshot(path=shots / "1-ask.png", full_page=True)

        maintainer = await browser.new_page(viewport={"width": 1280, "height": 900})
        await maintainer.goto(url + "/review/answers")
        await expect(maintainer).to_have_url(re.compile(r"/review/login\?next="))
        await maintainer.fill("input[name=token]", "frm_not-a-token")
        await maintainer.click("button.primary")
        await expect(maintainer.locator(".alert")).to_contain_text("not valid")
        await maintainer.fill("input[name=token]", token)
        await maintainer.click("button.primary")
        await expect(maintainer).to_have_url(url + "/review/answers")
        # four answers, three of them to the same question: grouped into one row that says so
        await expect(maintainer.locator("table.list tbody tr")).to_have_count(2)
        await expect(maintainer.locator("table.list tbody")).to_contain_text("asked 3 times")
        await maintainer.screenshot(path=shots / "2-answers.png", full_page=True)

        await maintainer.select_option("select[name=channel]", "web")
        await maintainer.click("#filters button.primary")
        await expect(maintainer.locator("table.list tbody tr")).to_have_count(1)
        await expect(maintainer.locator("table.list tbody")).to_contain_text("👍 1")
        await maintainer.click("table.list a.q")
        await expect(maintainer.locator("h1.question")).to_have_text(CAMERA)
        await maintainer.screenshot(path=shots / "3-answer.png", full_page=True)

        corrected = "Call scene.magnify(3) before render(): it zooms the camera in three times."
        await maintainer.fill("#correct textarea[name=text]", corrected)
        await maintainer.click("#correct button")
        await expect(maintainer.locator(".answer-text.corrected")).to_have_text(corrected)
        await expect(maintainer.locator(".verdict").first).to_have_text("corrected")
        await maintainer.screenshot(path=shots / "4-corrected.png", full_page=True)

        # The next visitor asking the same thing gets the maintainers' answer, citing the golden record.
        fresh = await browser.new_page(viewport={"width": 1200, "height": 800})
        await fresh.goto(url + "/ask")
        await fresh.fill("#question", "how can I zoom in the camera?")
        await fresh.click("#send")
        await expect(fresh.locator("#answer-text")).to_contain_text("scene.magnify(3)")
        await expect(fresh.locator("#sources a").first).to_have_attribute("href", re.compile(r"^/golden/\d+$"))
        await fresh.screenshot(path=shots / "5-ask-after-correction.png", full_page=True)

        await maintainer.goto(url + "/review/golden")
        await expect(maintainer.locator("table.list tbody")).to_contain_text("scene.magnify(3)")
        await maintainer.screenshot(path=shots / "6-golden.png", full_page=True)
        await maintainer.goto(url + "/review/overview")
        await expect(maintainer.locator(".kpi").first).to_contain_text("questions")
        await expect(maintainer.locator("svg.chart").first).to_be_visible()
        await maintainer.screenshot(path=shots / "7-overview.png", full_page=True)

        # Signing out ends the session: the review pages send you to sign in again.
        await maintainer.click("text=Sign out")
        await maintainer.goto(url + "/review/answers")
        await expect(maintainer).to_have_url(re.compile(r"/review/login"))
