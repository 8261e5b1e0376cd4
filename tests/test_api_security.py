"""The HTTP API and pages as an attacker meets them: hostile text, cross-site forms, other people's
conversations, stale sessions, redirects, leaked secrets, roles, lengths, odd bytes and streamed pings."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from engine.api.app import build_app
from fakes.server import serve
from tests_support import Browser

KEY = "sk-security-1"
CAMERA = "How do I zoom the camera in?"
LONE_SURROGATE = "How do I zoom \ud800 the camera?"


@pytest.fixture
async def site(make_engine):
    engine = make_engine(api_keys=[KEY], rate_limit_per_minute=100_000)
    async with serve(build_app(engine)) as url:
        browser = Browser(url)
        try:
            yield url, engine, browser
        finally:
            await browser.session.close()


def bearer(key: str = KEY) -> dict:
    return {"Authorization": f"Bearer {key}"}


# -- 2: one bad question must not fail anybody else's ------------------------------------------------


async def test_a_lone_surrogate_is_a_400_and_costs_nobody_else_their_answer(site):
    url, _, browser = site
    good = json.dumps({"question": CAMERA}).encode()
    async with aiohttp.ClientSession(headers={**bearer(), "Content-Type": "application/json"}) as http:

        async def innocent() -> int:
            async with http.post(f"{url}/v1/answer", data=good) as response:
                return response.status

        results = await asyncio.gather(*[innocent() for _ in range(12)], browser.ask(LONE_SURROGATE))
        # The same text as a JSON escape to the keyed route (json.dumps writes "\ud800" as an escape).
        async with http.post(f"{url}/v1/answer", data=json.dumps({"question": LONE_SURROGATE}).encode()) as response:
            keyed = response.status, (await response.json())["error"]["message"]
        async with http.get(f"{url}/v1/search", params={"q": "zoom\x00camera"}) as response:
            searched = response.status
    assert results[:12] == [200] * 12
    status, events = results[12]
    assert status == 400 and "unicode" in json.dumps(events).lower()
    assert keyed[0] == 400 and "question" in keyed[1]
    assert searched == 400


async def test_a_batch_that_fails_is_retried_one_by_one_so_only_the_bad_question_fails(make_engine):
    async with make_engine() as engine:
        await engine.asearch("warm up")  # load the retriever first, so the batch below really is shared
        results = await asyncio.gather(*[engine.asearch(CAMERA) for _ in range(6)], engine.asearch(LONE_SURROGATE),
                                       return_exceptions=True)
    assert all(isinstance(r, list) and r for r in results[:6]), results[:6]
    assert isinstance(results[6], Exception)
