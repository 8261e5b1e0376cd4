"""The engine's HTTP API.

Routes: ``POST /v1/answer`` (JSON, or server-sent events with ``"stream": true``),
``GET /v1/search``, ``POST /v1/feedback``, ``GET /healthz``, ``GET /readyz``, ``GET /metrics``,
and ``POST /api/{provider}/generate`` for the existing FURY bot clients.

Who may call what is :mod:`engine.api.auth`'s (keys with roles; loopback clients when no key is
configured); what a failure becomes is :mod:`engine.api.errors`'s (one error shape,
``{"error": {"status", "code", "message"}}``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re

from aiohttp import web

from engine.answer.model import CHANNELS, Answer, Question
from engine.api.answer_html import answer_payload
from engine.api.auth import auth_middleware, known_keys
from engine.api.errors import dependency_down, errors_middleware, stream_events
from engine.api.http import (ENGINE, KEY_DIGESTS, LIMITS, METRICS, REQUEST_ID, BadRequest, checked_text,
                             error_response, int_query, read_json, text_field)
from engine.api.openapi import document
from engine.api.pages import mount_pages, session_middleware
from engine.api.ratelimit import TokenBuckets
from engine.api.review_api import mount_review_api
from engine.api.golden_view import mount_golden_view
from engine.api.source_view import mount_source_view
from engine.api.tuning_api import TUNING_RUNNER, mount_tuning_api
from engine.store.repository import UnknownAnswer

log = logging.getLogger(__name__)

DISCORD_BOT = web.AppKey("discord_bot", tuple)
TUNING_TASK = web.AppKey("tuning_task", tuple)
GOLDEN_REPAIR = web.AppKey("golden_repair", asyncio.Task)
MAX_QUESTION_CHARS = 8000
MAX_REQUEST_LINE = 16 * 1024 + 12 * MAX_QUESTION_CHARS  # GET /v1/search?q=<8,000 characters, percent-encoded>&…


def question_from(data: dict, request: web.Request) -> Question:
    channel = data.get("channel", "api")
    if channel not in CHANNELS:
        raise BadRequest(f"'channel' must be one of {', '.join(CHANNELS)}")
    return Question(
        text=text_field(data, "question", required=True, limit=MAX_QUESTION_CHARS) or "",
        channel=channel,
        conversation_id=text_field(data, "conversation_id", limit=200),
        user_id=text_field(data, "user_id", limit=200),
        title=text_field(data, "title", limit=500),
        kb=_kb(data.get("kb")),
        request_id=request[REQUEST_ID],
        link=_link(data.get("link")),
    )


def _link(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 500 or not value.startswith(("https://", "http://")):
        raise BadRequest("'link' must be an http(s) URL of at most 500 characters")
    return value


def _kb(value) -> str | None:
    from engine.config import KB_NAME

    if value is None:
        return None
    if not isinstance(value, str) or not KB_NAME.fullmatch(value):  # fullmatch: "$" alone lets "name\n" through
        raise BadRequest("'kb' must be a knowledge base name")
    return value


async def answer_route(request: web.Request) -> web.StreamResponse:
    data = await read_json(request)
    question = question_from(data, request)
    engine = request.app[ENGINE]
    metrics = request.app[METRICS]
    if not streamed(data):
        answer = await engine.answer(question)
        metrics.answered(answer, question.channel)
        return web.json_response(answer_payload(answer))

    def render(event: dict) -> tuple[str, dict]:
        if event["type"] == "delta":
            return "delta", {"text": event["text"]}
        metrics.answered(event["answer"], question.channel)
        return "answer", answer_payload(event["answer"])

    return await stream_events(request, engine.answer_stream(question), render)


def streamed(data: dict) -> bool:
    """The body's ``stream``: true or false (absent: false); anything else is a 400, not a guess."""
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be true or false")
    return stream


async def search_route(request: web.Request) -> web.Response:
    query = request.query.get("q", "")
    if len(query) > MAX_QUESTION_CHARS:
        raise BadRequest(f"'q' is longer than {MAX_QUESTION_CHARS} characters")
    query = checked_text("q", query).strip()
    if not query:
        raise BadRequest("'q' is required")
    k = int_query(request, "k", 5, 1, 50)
    hits = await request.app[ENGINE].asearch(query, k=k, kb=_kb(request.query.get("kb")))
    return web.json_response({"query": query, "hits": [h.as_dict() for h in hits]})


def parse_vote(value) -> int:
    votes = {"up": 1, "down": -1, 1: 1, -1: -1, "+1": 1, "-1": -1}
    if isinstance(value, bool) or value not in votes:
        raise BadRequest("'vote' must be 'up' or 'down' (or 1 / -1)")
    return votes[value]


async def feedback_route(request: web.Request) -> web.Response:
    data = await read_json(request)
    answer_id = text_field(data, "answer_id", required=True, limit=64) or ""
    user_id = text_field(data, "user_id", required=True, limit=200) or ""
    comment = text_field(data, "comment", limit=2000)
    try:
        created = await request.app[ENGINE].feedback(answer_id, user_id, parse_vote(data.get("vote")), comment)
    except UnknownAnswer:
        return error_response(404, f"no answer with id {answer_id!r}")
    return web.json_response({"ok": True, "created": created})


async def fury_generate_route(request: web.Request) -> web.StreamResponse:
    """The route FURY's Discord bot and tools already call: {query, llm, knn, stream} -> {response, references}."""
    if not PROVIDER_NAME.fullmatch(request.match_info["provider"]):
        raise BadRequest("the provider in the path must be a name of 1-64 letters, digits, '.', '_' or '-'")
    data = await read_json(request)
    query = text_field(data, "query", required=True, limit=MAX_QUESTION_CHARS) or ""
    text_field(data, "llm", limit=200)  # FURY's model choice: checked, then the engine's own chain answers
    knn = data.get("knn", 5)
    if isinstance(knn, float) and knn.is_integer():  # JSON's 5.0 is the integer 5
        knn = int(knn)
    if isinstance(knn, bool) or not isinstance(knn, int) or not 1 <= knn <= 50:
        raise BadRequest("'knn' must be an integer between 1 and 50")
    stream = streamed(data)
    question = Question(query, channel="api", request_id=request[REQUEST_ID])
    engine = request.app[ENGINE]

    def references(answer: Answer) -> list[str]:
        return [c.url for c in answer.citations] or [h.chunk.url for h in answer.hits[:knn]]

    if not stream:
        answer = await engine.answer(question)
        request.app[METRICS].answered(answer, "api")
        return web.json_response({"response": answer.text, "references": references(answer)})

    def render(event: dict) -> tuple[str, dict]:
        if event["type"] == "delta":
            return "delta", {"response": event["text"]}
        request.app[METRICS].answered(event["answer"], "api")
        return "done", {"response": event["answer"].text, "references": references(event["answer"])}

    return await stream_events(request, engine.answer_stream(question), render)


PLATFORMS = {"discord", "github"}
PROVIDER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
NUMERIC_ID = re.compile(r"[0-9]{1,30}")  # a Discord or GitHub id (str.isdigit would take "²" and "٣")


def _platform(request: web.Request) -> str:
    platform = request.match_info["platform"]
    if platform not in PLATFORMS:
        raise BadRequest(f"platform must be one of {', '.join(sorted(PLATFORMS))}")
    return platform


async def status_route(request: web.Request) -> web.Response:
    return web.json_response(await request.app[ENGINE].status())


async def channels_route(request: web.Request) -> web.Response:
    return web.json_response(await request.app[ENGINE].channel_settings(_platform(request)))


async def set_channel_route(request: web.Request) -> web.Response:
    platform = _platform(request)
    data = await read_json(request)
    changes = {k: v for k, v in data.items() if k in ("help_channel", "thread_mode")}
    if set(data) - {"help_channel", "thread_mode", "by"} or not changes:
        raise BadRequest("send 'help_channel' and/or 'thread_mode' (true, false or null), and optionally 'by'")
    if any(v is not None and not isinstance(v, bool) for v in changes.values()):
        raise BadRequest("'help_channel' and 'thread_mode' must be true, false or null")
    channel_id = request.match_info["channel"]
    if not NUMERIC_ID.fullmatch(channel_id):
        raise BadRequest("the channel id must be a number")
    result = await request.app[ENGINE].set_channel_settings(platform, channel_id, changes, text_field(data, "by", limit=64))
    return web.json_response(result)


def _thread(request: web.Request) -> str:
    thread_id = request.match_info["thread"]
    if not NUMERIC_ID.fullmatch(thread_id):
        raise BadRequest("the thread id must be a number")
    return thread_id


async def discord_thread_route(request: web.Request) -> web.Response:
    thread_id = _thread(request)
    return web.json_response({"thread_id": thread_id, **await request.app[ENGINE].discord_thread(thread_id)})


async def mark_discord_thread_route(request: web.Request) -> web.Response:
    thread_id = _thread(request)
    await request.app[ENGINE].mark_discord_thread_answered(thread_id)
    return web.json_response({"thread_id": thread_id, **await request.app[ENGINE].discord_thread(thread_id)})


async def escalate_discord_thread_route(request: web.Request) -> web.Response:
    first = await request.app[ENGINE].escalate_discord_thread(_thread(request))
    return web.json_response({"first": first})


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


READY_SECONDS = 5.0  # the longest /readyz waits for its checks, which run together


async def readyz(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    checks: dict[str, str] = {}

    async def check(name: str, probe) -> None:
        try:
            await asyncio.wait_for(probe(), READY_SECONDS)
            checks[name] = "ok"
        except Exception as error:  # readiness reports every failure, whatever it is
            checks[name] = f"failing: {type(error).__name__}"

    # All at once: a hung database and a hung store cost one deadline (READY_SECONDS), not one each.
    await asyncio.gather(check("database", lambda: engine.store.ping()),
                         check("vectors", lambda: asyncio.to_thread(engine.vectors().count)),
                         check("model", lambda: asyncio.to_thread(lambda: engine.embedder.model)))
    checks = {name: checks[name] for name in ("database", "vectors", "model")}  # in the same order every time
    ready = all(v == "ok" for v in checks.values())
    return web.json_response({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)


async def metrics_route(request: web.Request) -> web.Response:
    """Counters as they are, and the queue gauges read from the database at scrape time."""
    metrics, engine = request.app[METRICS], request.app[ENGINE]
    await engine.start()
    for status, count in (await engine.tuning.count_by_status()).items():
        metrics.tuning_jobs.labels(status).set(count)
    await metrics.refresh()  # gauges frontends read at scrape time (the GitHub App's queue)
    return web.Response(body=metrics.render(), content_type="text/plain", charset="utf-8")


async def restore_golden_records(engine) -> None:
    try:
        added, removed = await engine.sync_golden()
    except Exception as error:
        if not dependency_down(error):
            log.exception("could not check the golden records in the index")
            return
        log.warning("could not check the golden records in the index: %s", (str(error) or type(error).__name__).splitlines()[0])
        return
    if added or removed:
        log.info("golden records brought back into the index: %d added, %d removed", added, removed)


def _github_app(app: web.Application, engine):
    """Mount the GitHub App when it is configured (a missing or bad App setting raises ConfigError here)."""
    from github_app.config import configured

    if not configured(engine.settings):
        return None
    from github_app.app import GitHubApp
    from github_app.config import app_config
    from github_app.routes import mount

    github = GitHubApp(app_config(engine.settings), engine)
    mount(app, github)
    return github


def build_app(engine) -> web.Application:
    settings = engine.settings
    # A search's q may hold 8,000 characters, up to 12 bytes each once percent-encoded: the request line must fit
    # (aiohttp's default, 8,190 bytes, would refuse it with a bare text/plain 400).
    app = web.Application(middlewares=[errors_middleware, auth_middleware, session_middleware],
                          client_max_size=settings.max_body_bytes, handler_args={"max_line_size": MAX_REQUEST_LINE})
    app[ENGINE] = engine
    app[METRICS] = engine.metrics
    app[LIMITS] = TokenBuckets(settings.rate_limit_per_minute)
    app[KEY_DIGESTS] = known_keys(settings)
    app.router.add_post("/v1/answer", answer_route)
    app.router.add_get("/v1/search", search_route)
    app.router.add_post("/v1/feedback", feedback_route)
    app.router.add_post("/api/{provider}/generate", fury_generate_route)
    app.router.add_get("/v1/status", status_route)
    app.router.add_get("/v1/channels/{platform}", channels_route)
    app.router.add_put("/v1/channels/{platform}/{channel}", set_channel_route)
    app.router.add_get("/v1/discord/threads/{thread}", discord_thread_route)
    app.router.add_put("/v1/discord/threads/{thread}", mark_discord_thread_route)
    app.router.add_post("/v1/discord/threads/{thread}/escalation", escalate_discord_thread_route)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_route)
    mount_review_api(app)
    mount_tuning_api(app)
    mount_source_view(app)
    mount_golden_view(app)
    mount_pages(app, engine.session_secret, settings.cookie_secure)  # the key is known once the engine has started
    github = _github_app(app, engine)
    spec = document(with_github=github is not None)

    async def openapi_route(_request: web.Request) -> web.Response:
        return web.json_response(spec)

    app.router.add_get("/openapi.json", openapi_route)

    async def start(_app: web.Application) -> None:
        await engine.start()
        await asyncio.to_thread(engine.prepare_queries)  # load the model before the first question
        # torch, transformers and Chroma leave ~500,000 long-lived objects; a full collection that
        # walks them stalls every request for ~270 ms (measured on a 2-core machine). Freeze them.
        gc.collect()
        gc.freeze()
        # Golden records the index lacks (its store lost them, or a replacement) are indexed again, in the
        # background: a store that is down must not keep the replica from starting.
        app[GOLDEN_REPAIR] = asyncio.create_task(restore_golden_records(engine), name="golden-records")

        import aiohttp

        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        runner = engine.tuning_runner(session)  # tuning jobs move on in the background
        app[TUNING_RUNNER] = runner
        app[TUNING_TASK] = (asyncio.create_task(runner.run_forever(), name="tuning-runner"), session)

        from github_app.review import GitHubReview
        from github_app.store import GitHubStore

        assert engine.store is not None
        github_store = GitHubStore(engine.store.engine)  # the GitHub App's tables are in the engine's database
        if github is not None:  # and its workers run in this process when it is configured
            await github.start(github_store)
        # Its drafts and figures on the review pages, even when its workers run elsewhere (`firstreply github-app`).
        engine.register_review_extension(github.review_extension() if github is not None else GitHubReview(github_store))

        if settings.discord_token is not None:  # the Discord bot runs in this process too
            from bot.run import start_bot

            bot = await start_bot(settings, engine)
            app[DISCORD_BOT] = (bot, asyncio.create_task(bot.connect(), name="discord-bot"))

    async def stop(_app: web.Application) -> None:
        if GOLDEN_REPAIR in app:
            app[GOLDEN_REPAIR].cancel()
            await asyncio.gather(app[GOLDEN_REPAIR], return_exceptions=True)
        if DISCORD_BOT in app:
            bot, task = app[DISCORD_BOT]
            await bot.close()
            task.cancel()
        if github is not None:
            await github.close()
        if TUNING_TASK in app:
            task, session = app[TUNING_TASK]
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await session.close()
        await engine.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app
