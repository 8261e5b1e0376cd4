"""The HTTP API, and the answer protocol both ways: in process (Engine) and over HTTP (EngineClient)."""

import asyncio
import json

import aiohttp
import pytest
from fakes import gemini
from fakes.server import serve

from engine.answer.model import Question
from engine.api.ratelimit import TokenBuckets
from engine.client import EngineClient, EngineUnavailable
from engine.protocol import Answerer, UnknownAnswer
from firstreply.serve import build_app  # the app `firstreply serve` runs

KEY = "sk-test-123"
CAMERA = "How do I zoom the camera in?"


@pytest.fixture
async def api(make_engine):
    """A running engine API with one API key; yields (base_url, engine)."""
    engine = make_engine(api_keys=[KEY], rate_limit_per_minute=1000)
    async with serve(build_app(engine)) as url:
        yield url, engine


@pytest.fixture(params=["in-process", "http"])
async def answerer(request, make_engine):
    if request.param == "in-process":
        async with make_engine() as engine:
            yield engine
        return
    engine = make_engine(api_keys=[KEY])
    async with serve(build_app(engine)) as url, EngineClient(url, KEY) as client:
        yield client


async def test_the_protocol_behaves_the_same_both_ways(answerer):
    assert isinstance(answerer, Answerer)
    answer = await answerer.answer(Question(CAMERA, channel="discord", conversation_id="thread-9", user_id="u1",
                                            link="https://discord.com/channels/1/2/3"))
    assert not answer.abstained and answer.id and answer.conversation_id == "thread-9"
    assert "scene.zoom(2)" in answer.text and answer.citations[0].path == "docs/guide/camera.rst"
    assert answer.citations[0].title == "Camera basics"

    events = [e async for e in answerer.answer_stream(Question(CAMERA))]
    assert events[-1]["type"] == "answer" and events[-1]["answer"].text == answer.text
    assert "".join(e["text"] for e in events if e["type"] == "delta").strip() == answer.text.strip()

    assert await answerer.feedback(answer.id, "u1", 1) is True
    assert await answerer.feedback(answer.id, "u1", -1) is False
    with pytest.raises(UnknownAnswer):
        await answerer.feedback("not-an-answer", "u1", 1)
    with pytest.raises(ValueError):
        await answerer.feedback(answer.id, "u1", 0)

    off_topic = await answerer.answer(Question("best sourdough recipe with rye?", channel="github"))
    assert off_topic.abstained and off_topic.escalation == "A maintainer will follow up here."


async def test_both_answerers_have_the_protocols_lifecycle(make_engine):
    """Issue 19: start, close, ``async with`` and ``metrics`` are on the protocol, the same for both, so a
    frontend calls them instead of probing with hasattr/getattr."""
    for member in ("start", "close", "__aenter__", "__aexit__", "metrics"):
        assert member in vars(Answerer), member
    engine = make_engine()
    async with engine as started:
        assert started is engine and engine.store is not None and engine.metrics is not None
    assert engine.store is None  # closed
    assert await engine.start() is engine
    await engine.close()

    client = EngineClient("http://127.0.0.1:9")
    assert isinstance(client, Answerer) and client.metrics is None  # a remote engine counts its own
    async with client as started:
        assert started is client
        with pytest.raises(EngineUnavailable):
            await client.status()
    assert client._session is None or client._session.closed
    assert client.aclose == client.close  # the older name stays


async def test_answer_json_and_search(api):
    url, _ = api
    headers = {"Authorization": f"Bearer {KEY}", "X-Request-Id": "trace-1"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{url}/v1/answer", json={"question": CAMERA, "channel": "web"}) as response:
            assert response.status == 200 and response.headers["X-Request-Id"] == "trace-1"
            body = await response.json()
        assert set(body) >= {"id", "text", "abstained", "confidence", "model", "citations", "latency_ms"}
        async with http.get(f"{url}/v1/search", params={"q": "zoom the camera", "k": "2"}) as response:
            hits = (await response.json())["hits"]
        assert len(hits) == 2 and hits[0]["path"] == "docs/guide/camera.rst" and hits[0]["dense"] > 0


async def test_sse_stream_format(api):
    url, _ = api
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as http:
        async with http.post(f"{url}/v1/answer", json={"question": CAMERA, "stream": True}) as response:
            assert response.headers["Content-Type"] == "text/event-stream"
            raw = (await response.read()).decode()
    blocks = [b for b in raw.split("\n\n") if b.strip()]
    assert blocks[0].startswith("event: delta\ndata: {")
    assert blocks[-1].startswith("event: answer\ndata: ")
    assert json.loads(blocks[-1].split("data: ", 1)[1])["citations"]


async def test_fury_compatible_route(api):
    url, _ = api
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as http:
        async with http.post(f"{url}/api/groq/generate", json={"query": CAMERA, "llm": "llama3-70b-8192", "knn": 3, "stream": False}) as response:
            body = await response.json()
        assert set(body) == {"response", "references"}
        assert "scene.zoom(2)" in body["response"] and body["references"][0].startswith("https://github.com/org/tinyviz/blob/")
        async with http.post(f"{url}/api/ollama/generate", json={"query": CAMERA, "knn": 3, "stream": True}) as response:
            raw = (await response.read()).decode()
        assert "event: delta" in raw and "event: done" in raw


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "Authorization: Bearer"),
    ({"Authorization": "Bearer wrong"}, "unknown API key"),
    ({"Authorization": f"Basic {KEY}"}, "Authorization: Bearer"),
])
async def test_unauthenticated_requests_are_refused_and_change_nothing(api, headers, message):
    url, engine = api
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{url}/v1/answer", json={"question": CAMERA}) as response:
            body = await response.json()
    assert response.status == 401 and body["error"]["code"] == "unauthorized" and message in body["error"]["message"]
    assert await engine.store.count_answers() == 0


async def test_health_is_open_and_readiness_checks_everything(api):
    url, _ = api
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/healthz") as response:
            assert response.status == 200
        async with http.get(f"{url}/readyz") as response:
            body = await response.json()
        assert response.status == 200 and body["checks"] == {"database": "ok", "vectors": "ok", "model": "ok"}


async def test_readiness_fails_when_the_database_is_down(make_engine):
    from engine.store.database import create_engine
    from engine.store.repository import Store

    engine = make_engine()
    async with serve(build_app(engine)) as url:
        healthy = engine.store
        engine.store = Store(create_engine("postgresql://firstreply@127.0.0.1:9/gone"))  # a server that went away
        try:
            async with aiohttp.ClientSession() as http, http.get(f"{url}/readyz") as response:
                body = await response.json()
        finally:
            await engine.store.close()
            engine.store = healthy
    assert response.status == 503 and body["status"] == "not ready"
    assert body["checks"]["database"].startswith("failing") and body["checks"]["vectors"] == "ok"


@pytest.mark.parametrize(("body", "status", "message"), [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (json.dumps({}).encode(), 400, "'question' is required"),
    (json.dumps({"question": "   "}).encode(), 400, "non-empty string"),
    (json.dumps({"question": "x", "channel": "irc"}).encode(), 400, "'channel' must be one of"),
    (json.dumps({"question": "x" * 9000}).encode(), 400, "longer than 8000"),
    (json.dumps({"question": "x", "kb": "../etc"}).encode(), 400, "knowledge base name"),
    (json.dumps({"question": "x", "link": "javascript:alert(1)"}).encode(), 400, "'link' must be an http(s) URL"),
    (json.dumps({"question": "x" * 70_000}).encode(), 413, "larger than"),
])
async def test_bad_input_gets_a_clear_error_and_stores_nothing(api, body, status, message):
    url, engine = api
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}) as http:
        async with http.post(f"{url}/v1/answer", data=body) as response:
            error = (await response.json())["error"]
    assert response.status == status and message in error["message"] and error["status"] == status
    assert await engine.store.count_answers() == 0


async def test_a_body_that_does_not_say_its_length_is_refused_past_the_limit(api):
    url, engine = api

    async def chunks():  # sent chunked: no Content-Length to refuse it by, so the count while reading does
        for _ in range(40):
            yield b" " * 4096

    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}) as http:
        async with http.post(f"{url}/v1/feedback", data=chunks()) as response:
            error = (await response.json())["error"]
    assert response.status == 413 and f"larger than {engine.settings.max_body_bytes} bytes" in error["message"]


async def test_feedback_errors(api):
    url, _ = api
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as http:
        async with http.post(f"{url}/v1/feedback", json={"answer_id": "nope", "user_id": "u", "vote": "up"}) as response:
            assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"
        async with http.post(f"{url}/v1/feedback", json={"answer_id": "nope", "user_id": "u", "vote": "sideways"}) as response:
            assert response.status == 400
        async with http.get(f"{url}/v1/nothing-here") as response:
            assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"


async def test_rate_limit_per_key_with_retry_after(make_engine):
    engine = make_engine(api_keys=[KEY, "other-key"], rate_limit_per_minute=2)
    async with serve(build_app(engine)) as url, aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(3):
            async with http.get(f"{url}/v1/search", params={"q": "zoom"}, headers={"Authorization": f"Bearer {KEY}"}) as response:
                statuses.append(response.status)
                retry_after = response.headers.get("Retry-After")
        async with http.get(f"{url}/v1/search", params={"q": "zoom"}, headers={"Authorization": "Bearer other-key"}) as other:
            assert other.status == 200  # limits are per key
    assert statuses == [200, 200, 429] and int(retry_after) >= 1


def test_token_buckets_refill_over_time():
    now = [0.0]
    buckets = TokenBuckets(per_minute=60, clock=lambda: now[0])
    assert [buckets.take("k") for _ in range(60)] == [None] * 60
    assert buckets.take("k") == pytest.approx(1.0)
    now[0] += 1.0
    assert buckets.take("k") is None


async def test_without_api_keys_only_loopback_is_served(make_engine):
    engine = make_engine()
    async with serve(build_app(engine)) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/v1/search", params={"q": "zoom"}) as response:
            assert response.status == 200


async def test_metrics_count_requests_answers_and_provider_errors(make_engine):
    fake = gemini.FakeGemini(default=gemini.Reply(status=500))
    async with serve(fake.app()) as gemini_url:
        engine = make_engine(providers=["gemini:gemini-2.5-flash"], gemini_api_key=gemini.API_KEY,
                             gemini_base_url=gemini_url, llm_retries=1)
        async with serve(build_app(engine)) as url, aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v1/answer", json={"question": CAMERA, "channel": "discord"}) as response:
                assert (await response.json())["model"] == "extractive"
            async with http.post(f"{url}/v1/answer", json={"question": "rye sourdough recipe?"}):
                pass
            async with http.get(f"{url}/metrics") as response:
                text = await response.text()
    assert 'firstreply_http_requests_total{route="/v1/answer",status="200"} 2.0' in text
    assert 'firstreply_answers_total{abstained="false",channel="discord",model="extractive"} 1.0' in text
    assert 'firstreply_abstentions_total{channel="api"} 1.0' in text
    assert 'firstreply_provider_errors_total{provider="gemini:gemini-2.5-flash"} 1.0' in text
    assert "firstreply_answer_seconds_bucket" in text
    assert "firstreply_retrieval_seconds_count 2.0" in text  # every stage is timed
    assert 'firstreply_provider_seconds_count{provider="extractive"} 1.0' in text  # the abstention asked no model
    assert 'firstreply_tuning_jobs{status="running"} 0.0' in text


async def test_client_says_unavailable_when_the_engine_is_down():
    async with EngineClient("http://127.0.0.1:9", KEY, timeout=2) as client:
        with pytest.raises(EngineUnavailable, match="can't reach the engine"):
            await client.answer(Question(CAMERA))


async def test_status_and_channel_settings_behave_the_same_both_ways(answerer):
    status = await answerer.status()
    assert status["kb"] == "sample" and status["index_chunks"] > 7 and status["model"] == "extractive"
    assert await answerer.channel_settings("discord") == {}
    assert await answerer.set_channel_settings("discord", "123", {"help_channel": True}, by="discord:1") == \
        {"help_channel": True, "thread_mode": None}
    assert await answerer.set_channel_settings("discord", "123", {"thread_mode": False}) == \
        {"help_channel": True, "thread_mode": False}
    assert await answerer.channel_settings("discord") == {"123": {"help_channel": True, "thread_mode": False}}
    assert await answerer.channel_settings("github") == {}
    with pytest.raises(ValueError):
        await answerer.set_channel_settings("discord", "123", {"volume": True})


@pytest.mark.parametrize(("path", "body", "message"), [
    ("/v1/channels/irc/1", {"help_channel": True}, "platform must be"),
    ("/v1/channels/discord/1", {"help_channel": "yes"}, "true, false or null"),
    ("/v1/channels/discord/1", {"volume": 11}, "send 'help_channel'"),
    ("/v1/channels/discord/general", {"help_channel": True}, "must be a number"),
])
async def test_bad_channel_settings_are_refused_and_store_nothing(api, path, body, message):
    url, engine = api
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as http:
        async with http.put(url + path, json=body) as response:
            error = (await response.json())["error"]
    assert response.status == 400 and message in error["message"]
    assert await engine.channel_settings("discord") == {}


async def test_discord_thread_state_behaves_the_same_both_ways(answerer):
    assert await answerer.discord_thread("1234") == {"answered": False, "escalated": False}
    await answerer.mark_discord_thread_answered("1234")
    await answerer.mark_discord_thread_answered("1234")  # twice is the same as once
    assert await answerer.discord_thread("1234") == {"answered": True, "escalated": False}
    assert [await answerer.escalate_discord_thread("1234") for _ in range(3)] == [True, False, False]
    assert await answerer.discord_thread("1234") == {"answered": True, "escalated": True}
    assert await answerer.discord_thread("5678") == {"answered": False, "escalated": False}
    for bad in ("general", "1" * 31, "../1"):
        with pytest.raises(ValueError):
            await answerer.escalate_discord_thread(bad)


async def test_only_one_of_many_concurrent_escalations_is_first(database_overrides, make_engine):
    """Several bot processes, each with its own engine connection, press "Ask a maintainer" in one thread at once."""
    engines = [make_engine(**database_overrides) for _ in range(1 if not database_overrides else 3)]
    if not database_overrides:  # SQLite: one file, several engines on it
        engines += [make_engine(database_url=engines[0].settings.database_url) for _ in range(2)]
    for engine in engines:
        await engine.start()
    try:
        results = await asyncio.gather(*(engine.escalate_discord_thread("42") for engine in engines for _ in range(4)))
    finally:
        for engine in engines:
            await engine.close()
    assert sorted(results) == [False] * 11 + [True]


@pytest.mark.parametrize(("method", "path"), [("GET", "/v1/discord/threads/general"),
                                              ("PUT", "/v1/discord/threads/1.5"),
                                              ("POST", "/v1/discord/threads/" + "9" * 31 + "/escalation")])
async def test_bad_discord_thread_ids_are_refused(api, method, path):
    url, engine = api
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {KEY}"}) as http:
        async with http.request(method, url + path) as response:
            error = (await response.json())["error"]
        async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{url}/v1/discord/threads/1") as response:
            assert response.status == 401  # key-protected like every other route
    assert error["status"] == 400 and "thread id" in error["message"]
