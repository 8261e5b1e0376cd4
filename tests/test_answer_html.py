"""Answers read well: Markdown rendered as sanitised HTML (markdown-it-py, then nh3), MDX components
reduced to their text, links only to http(s) or this site and opening in a new tab; the API and the
Ask page carry it, and chromium shows code in monospace with no raw Markdown left."""

from __future__ import annotations

import re

import aiohttp
import pytest
from fakes.server import serve
from pages_support import chromium, needs_chromium

from engine.api.answer_html import allowed_href, render, strip_components
from firstreply.serve import build_app  # the app `firstreply serve` runs


def test_markdown_becomes_html_lists_code_and_emphasis():
    html = render("**Note** the steps:\n\n1. install\n1. run `tinyviz`\n1. done\n\n```bash\npip install tinyviz\n```")
    assert "<strong>Note</strong>" in html
    assert html.count("<li>") == 3 and "<ol>" in html  # "1. 1. 1." is one numbered list
    assert "<code>tinyviz</code>" in html
    assert "<pre><code>pip install tinyviz\n</code></pre>" in html
    assert "**" not in html and "```" not in html


def test_mdx_components_are_reduced_to_their_text_but_code_keeps_them():
    text = ("import { Banner } from '../components'\n\nIntro.\n\n<Banner type=\"warning\">\n  Needs a **C compiler**.\n"
            "</Banner>\n\nInline <Badge label=\"new\" /> here; write `<Banner>` to show one:\n\n"
            "```jsx\n<Banner type=\"info\">Hi</Banner>\n```")
    html = render(text)
    assert "Banner type" not in html.split("<pre>")[0] and "Badge" not in html and "import" not in html
    assert "Needs a <strong>C compiler</strong>." in html
    assert "<code>&lt;Banner&gt;</code>" in html  # inline code is code
    assert "&lt;Banner type=\"info\"&gt;Hi&lt;/Banner&gt;" in html  # so is a fenced block
    assert strip_components("a <Tabs.Item label=\"x > y\">b</Tabs.Item> c") == "a b c"


@pytest.mark.parametrize("markdown", [
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "[x](javascript:alert(1))",
    "[x](JAVASCRIPT:alert(1))", "[x](data:text/html,<script>alert(1)</script>)", "<a href=\"javascript:alert(1)\">x</a>",
    "[x](//evil.example/path)", "<iframe src=\"https://evil.example\"></iframe>", "<Banner onClick={alert(1)}>x</Banner>",
])
def test_nothing_executable_survives(markdown):
    html = render(markdown)
    assert "<script" not in html and "<img" not in html and "<iframe" not in html
    assert not re.search(r'<a[^>]*href="(?i:javascript|data|//)', html)  # as text it is harmless; as a link, never
    assert not re.search(r"<[^>]*\son\w+=", html)  # an event handler is only ever text, never an attribute


def test_links_open_in_a_new_tab_and_only_where_they_can_work():
    html = render("See [the guide](https://example.org/guide), [a page here](/ask), [up](#top) "
                  "and [the repo's file](../docs/x.md).")
    assert '<a href="https://example.org/guide" target="_blank" rel="noopener noreferrer">the guide</a>' in html
    assert '<a href="/ask" target="_blank" rel="noopener noreferrer">' in html
    assert "the repo's file" in html and "../docs/x.md" not in html  # a link that would 404 here is only text
    assert allowed_href("http://x.test") and allowed_href("/review") and not allowed_href("/\\evil.example")
    assert not allowed_href("mailto:a@b.c") and not allowed_href("ftp://x")


def test_empty_and_plain_text():
    assert render("") == ""
    assert render("a < b and c > d") == "<p>a &lt; b and c &gt; d</p>\n"


async def test_the_api_answer_carries_html(make_engine):
    engine = make_engine()
    async with serve(build_app(engine)) as url, aiohttp.ClientSession() as http:
        async with http.post(url + "/v1/answer", json={"question": "How do I install tinyviz from source?"}) as response:
            body = await response.json()
    assert response.status == 200
    assert body["html"] == render(body["text"])
    assert not body["abstained"] and "<pre><code>" in body["html"] and "```" not in body["html"]


@pytest.mark.browser
@needs_chromium
async def test_the_ask_page_shows_rendered_answers(make_engine):
    from playwright.async_api import expect

    engine = make_engine(rate_limit_per_minute=10_000)
    async with serve(build_app(engine)) as url, chromium() as browser:
        page = await browser.new_page(viewport={"width": 1200, "height": 900})
        await page.goto(url + "/ask")
        await page.fill("#question", "How do I install tinyviz from source?")
        await page.click("#send")
        await expect(page.locator("#sources li").first).to_be_visible()
        answer = page.locator("#answer-text")
        await expect(answer.locator("pre code").first).to_be_visible()
        shown = await answer.inner_text()
        assert "```" not in shown and "<Banner" not in shown and "**" not in shown
        family = await answer.locator("pre code").first.evaluate("e => getComputedStyle(e).fontFamily")
        assert "monospace" in family
        for link in await page.locator("#answer-text a, #sources a").all():
            assert await link.get_attribute("target") == "_blank"
            assert "noopener" in (await link.get_attribute("rel") or "")
