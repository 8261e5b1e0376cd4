"""The pages as a user meets them in chromium: every piece of text meets WCAG AA contrast, every
control has an accessible name, focus is visible, an abstention says what to do next, and on a
phone (390 px) nothing is wider than the screen and the whole navigation is reachable."""

from __future__ import annotations

import pytest
from fakes.server import serve
from pages_support import browser_only, chromium, horizontal_overflow, low_contrast, sign_in, unnamed_controls

from engine.answer.model import Question
from firstreply.serve import build_app  # the app `firstreply serve` runs

pytestmark = browser_only
CAMERA = "How do I zoom the camera in?"
OFF_TOPIC = "What is the capital of Mongolia and its population in 1920?"


@pytest.fixture
async def site(make_engine):
    """A served engine with a maintainer, an answered and an abstained question, and a golden record."""
    engine = make_engine(rate_limit_per_minute=10_000)
    async with serve(build_app(engine)) as url:
        token = await engine.review_service.add_maintainer("ada")
        answered = await engine.answer(Question(CAMERA, channel="discord"))
        abstained = await engine.answer(Question(OFF_TOPIC, channel="web"))
        assert abstained.abstained, "the off-topic question should abstain on the sample project"
        record = await engine.review_service.store.add_golden_record("Line one?\nLine two?", "An answer.", "ada")
        pages = ["/review/answers", f"/review/answers/{answered.id}", f"/review/answers/{abstained.id}", "/review/golden",
                 f"/review/golden/{record.id}", "/review/overview", "/review/tuning"]
        yield url, token, pages


async def _ask(page, url: str, question: str) -> None:
    from playwright.async_api import expect

    await page.goto(url + "/ask")
    await page.fill("#question", question)
    await page.click("#send")
    await expect(page.locator("#votes")).to_be_visible()


async def test_an_abstention_gives_the_next_step_in_readable_text(site):
    from playwright.async_api import expect

    url, _, _ = site
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 900})
        await _ask(page, url, OFF_TOPIC)
        await expect(page.locator("#answer-text")).to_have_class("answer-text abstained")
        await expect(page.locator("#next-step")).to_be_visible()
        await expect(page.locator("#next-step")).to_contain_text("ask a maintainer")
        assert await low_contrast(page) == []
        # A new answered question clears the hint.
        await _ask(page, url, CAMERA)
        await expect(page.locator("#next-step")).to_be_hidden()


async def test_every_page_meets_contrast_and_names_every_control(site):
    url, token, pages = site
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 900})
        for path in ("/ask", "/review/login"):
            await page.goto(url + path)
            assert await low_contrast(page) == [], path
            assert await unnamed_controls(page) == [], path
        await _ask(page, url, CAMERA)
        await page.click("button[data-vote=down]")  # the comment box shows
        assert await low_contrast(page) == [], "/ask with an answer"
        assert await unnamed_controls(page) == [], "/ask with an answer"
        await sign_in(page, url, token)
        for path in pages:
            await page.goto(url + path)
            assert await low_contrast(page) == [], path
            assert await unnamed_controls(page) == [], path


async def test_the_focus_ring_is_visible(site):
    url, _, _ = site
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 900})
        await page.goto(url + "/ask")
        await page.focus("#question")
        await page.keyboard.press("Tab")  # keyboard focus: the Ask button shows :focus-visible
        ring = await page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
            return {id: document.activeElement.id, style: s.outlineStyle, width: parseFloat(s.outlineWidth), color: s.outlineColor}; }""")
        assert ring["id"] == "send"
        assert ring["style"] != "none" and ring["width"] >= 2
        rgb = [int(v) for v in ring["color"][ring["color"].index("(") + 1:].split(")")[0].split(",")[:3]]

        def luminance(c):
            c = [v / 255 for v in c]
            c = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in c]
            return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]

        assert (1.05) / (luminance(rgb) + 0.05) >= 3, f"the focus ring {ring['color']} is not 3:1 against white"


async def test_on_a_phone_nothing_overflows_and_the_nav_is_reachable(site):
    url, token, pages = site
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                            device_scale_factor=3)
        page = await context.new_page()
        long_question = "How do I zoom the camera in? " + "averyveryverylongwordwithoutanyspaces" * 4
        await _ask(page, url, long_question)
        assert await horizontal_overflow(page) == 0, "/ask with an answer"
        text = page.locator("#answer-text")
        assert await text.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the answer text is cut"
        await sign_in(page, url, token)
        for path in pages:
            await page.goto(url + path)
            assert await horizontal_overflow(page) == 0, path
            for name in ("Ask", "Answers", "Golden records", "Overview", "Tuning", "Sign out"):
                control = page.get_by_role("button" if name == "Sign out" else "link", name=name, exact=True)
                box = await control.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390, (path, name, box)
        await page.goto(url + pages[1])
        answer = page.locator(".answer-text").first
        assert await answer.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), "the reviewed answer is cut"
