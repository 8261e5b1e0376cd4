"""The App's HTTP routes: ``POST /github/webhook`` for GitHub, and ``/api/v1/github/…`` for maintainers.

The webhook is authenticated by its signature alone (GitHub sends no API key); the
maintainer routes sit behind the engine's API keys like every other route.
"""

from __future__ import annotations

from aiohttp import web

from engine.protocol import MAX_ANSWER_CHARS
from engine.web import BadRequest, actor, error_response, int_query, open_route, read_body, read_json
from github_app.app import GitHubApp
from github_app.store import ReplyConflict

GITHUB_APP = web.AppKey("github_app", GitHubApp)
WEBHOOK_PATH = "/github/webhook"


async def webhook(request: web.Request) -> web.Response:
    github = request.app[GITHUB_APP]
    try:
        body = await read_body(request, github.config.max_payload_bytes)  # the signature is over these exact bytes
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, f"the payload is larger than {github.config.max_payload_bytes} bytes")
    status, data = await github.receive(request.headers, body)
    if status >= 400:
        return error_response(status, data["error"])
    return web.json_response(data, status=status)


def _reply_view(reply) -> dict:
    return {"id": reply.id, "trigger_id": reply.trigger_id, "kind": reply.kind, "status": reply.status,
            "repository": reply.repository, "discussion_number": reply.discussion_number,
            "discussion_url": reply.discussion_url, "answer_id": reply.answer_id, "body": reply.body,
            "original_body": reply.original_body, "comment_url": reply.comment_url, "accepted": reply.accepted,
            "approved_by": reply.approved_by}


def _repository_view(repo) -> dict:
    return {"id": repo.id, "full_name": repo.full_name, "installation_id": repo.installation_id,
            "enabled": repo.enabled, "removed": repo.removed, "updated_by": repo.updated_by}


def _id(request: web.Request) -> int:
    value = request.match_info["id"]
    if not value.isdigit() or len(value) > 20:
        raise BadRequest("the id must be a number")
    return int(value)


async def jobs_route(request: web.Request) -> web.Response:
    status = request.query.get("status")
    if status is not None and status not in ("queued", "running", "done", "failed"):
        raise BadRequest("'status' must be queued, running, done or failed")
    jobs = await request.app[GITHUB_APP].store.jobs(status, int_query(request, "limit", 50, 1, 500))
    return web.json_response({"jobs": [j.summary() for j in jobs]})


async def retry_job_route(request: web.Request) -> web.Response:
    if not await request.app[GITHUB_APP].retry(_id(request)):
        return error_response(404, "no failed job with that id")
    return web.json_response({"ok": True})


async def replies_route(request: web.Request) -> web.Response:
    replies = await request.app[GITHUB_APP].store.replies(request.query.get("status"), int_query(request, "limit", 50, 1, 500))
    return web.json_response({"replies": [_reply_view(r) for r in replies]})


async def approve_route(request: web.Request) -> web.Response:
    data = await read_json(request)
    body = data.get("body")
    if body is not None and (not isinstance(body, str) or not body.strip() or len(body) > MAX_ANSWER_CHARS):
        raise BadRequest(f"'body' must be the corrected reply text (at most {MAX_ANSWER_CHARS:,} characters)")
    try:
        reply = await request.app[GITHUB_APP].approve(_id(request), actor(request, data), body)
    except ReplyConflict as conflict:
        return error_response(409, str(conflict))
    if reply is None:
        return error_response(404, "no reply with that id")
    return web.json_response(_reply_view(reply))


async def repositories_route(request: web.Request) -> web.Response:
    repos = await request.app[GITHUB_APP].store.repositories()
    return web.json_response({"repositories": [_repository_view(r) for r in repos]})


async def set_repository_route(request: web.Request) -> web.Response:
    data = await read_json(request)
    if not isinstance(data.get("enabled"), bool):
        raise BadRequest("send {\"enabled\": true|false}")
    repo = await request.app[GITHUB_APP].store.set_repository_enabled(_id(request), data["enabled"], actor(request, data))
    if repo is None:
        return error_response(404, "no repository with that id")
    return web.json_response(_repository_view(repo))


def mount(app: web.Application, github: GitHubApp, *, admin: bool = True) -> None:
    """Add the webhook, and (``admin``) the maintainer routes, which need an app that checks API keys."""
    app[GITHUB_APP] = github
    app.router.add_post(WEBHOOK_PATH, webhook)
    open_route(app, WEBHOOK_PATH)  # GitHub sends no API key: the signature authenticates a delivery
    if not admin:
        return
    app.router.add_get("/api/v1/github/jobs", jobs_route)
    app.router.add_post("/api/v1/github/jobs/{id}/retry", retry_job_route)
    app.router.add_get("/api/v1/github/replies", replies_route)
    app.router.add_post("/api/v1/github/replies/{id}/approve", approve_route)
    app.router.add_get("/api/v1/github/repositories", repositories_route)
    app.router.add_put("/api/v1/github/repositories/{id}", set_repository_route)
