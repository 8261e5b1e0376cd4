"""The routes of the answer protocol, which :class:`engine.client.EngineClient` calls (``POST /v1/answer``
as JSON or server-sent events, ``GET /v1/search``, ``POST /v1/feedback``, ``GET /v1/status``, the channel
settings and the Discord threads), and ``POST /api/{provider}/generate``, the route FURY's bot and tools
already call."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from engine.answer.model import CHANNELS, Answer, Question
from engine.api.answer_html import answer_payload
from engine.api.errors import stream_events
from engine.api.http import BadRequest, checked_text, error_response, int_query, read_json, text_field
from engine.api.keys import ENGINE, METRICS, REQUEST_ID
from engine.protocol import CHANNEL_SETTINGS, MAX_COMMENT_CHARS, MAX_QUESTION_CHARS
from engine.store.repository import UnknownAnswer


def question_from(data: dict[str, Any], request: web.Request) -> Question:
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


def _link(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 500 or not value.startswith(("https://", "http://")):
        raise BadRequest("'link' must be an http(s) URL of at most 500 characters")
    return value


def _kb(value: object) -> str | None:
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

    def render(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if event["type"] == "delta":
            return "delta", {"text": event["text"]}
        metrics.answered(event["answer"], question.channel)
        return "answer", answer_payload(event["answer"])

    return await stream_events(request, engine.answer_stream(question), render)


def streamed(data: dict[str, Any]) -> bool:
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


def parse_vote(value: object) -> int:
    votes = {"up": 1, "down": -1, 1: 1, -1: -1, "+1": 1, "-1": -1}
    if isinstance(value, bool) or value not in votes:
        raise BadRequest("'vote' must be 'up' or 'down' (or 1 / -1)")
    return votes[value]


async def feedback_route(request: web.Request) -> web.Response:
    data = await read_json(request)
    answer_id = text_field(data, "answer_id", required=True, limit=64) or ""
    user_id = text_field(data, "user_id", required=True, limit=200) or ""
    comment = text_field(data, "comment", limit=MAX_COMMENT_CHARS)
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

    def render(event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
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
    changes = {k: v for k, v in data.items() if k in CHANNEL_SETTINGS}
    if set(data) - {*CHANNEL_SETTINGS, "by"} or not changes:
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


def mount_answer_routes(app: web.Application) -> None:
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
